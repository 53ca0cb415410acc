"""Backbones split into ``features`` and ``head``, and the helpers every recipe shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from .._registry import Registry

__all__ = ["BACKBONES", "SplitNet", "create_backbone", "list_backbones", "register_backbone",
           "replace_head"]


class SplitNet(nn.Module):
    """A network ``head(features(x))`` whose feature extractor is a sequence of blocks.

    ``features`` is an ``nn.Sequential`` of blocks (freeze "the first k blocks" with
    :func:`transferkit.finetune.freeze`); ``head`` maps ``feature_dim`` features to class
    scores. Any user model with these two attributes works with the rest of transferkit.

    Examples
    --------
    Any network with a ``features`` sequence and a ``head`` fits (here by hand):

    >>> import torch
    >>> features = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(16, 8), nn.ReLU()))
    >>> net = SplitNet(features, nn.Linear(8, 3), feature_dim=8)
    >>> net(torch.randn(2, 1, 4, 4)).shape, len(net.features)
    (torch.Size([2, 3]), 2)
    """

    features: nn.Sequential
    head: nn.Module
    input_spec: Any  # an InputSpec for the image backbones (transferkit.nets.pretrained)

    def __init__(self, features: nn.Sequential, head: nn.Module, feature_dim: int) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.feature_dim = feature_dim
        self.input_spec = None

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def replace_head(model: nn.Module, n_classes: int) -> nn.Module:
    """Give ``model`` a new, freshly initialised linear head for ``n_classes`` classes.

    The head is created on the device and dtype of the old one. Returns ``model``.

    Examples
    --------
    >>> from transferkit.nets import create_backbone
    >>> net = replace_head(create_backbone("mobilenet-v2", image_size=32), 5)   # 1000 -> 5
    >>> net.head.out_features
    5
    """
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1; got {n_classes}")
    old = getattr(model, "head", None)
    if not isinstance(old, nn.Linear):
        raise TypeError(
            f"replace_head needs a model with a linear `head`; got {type(old).__name__}"
        )
    model.head = nn.Linear(
        old.in_features, n_classes, device=old.weight.device, dtype=old.weight.dtype
    )
    return model


BACKBONES: Registry[Callable[..., SplitNet]] = Registry("backbone")


def register_backbone(name: str) -> Callable[[Callable[..., SplitNet]], Callable[..., SplitNet]]:
    """Class or factory decorator adding a backbone to the registry.

    Examples
    --------
    >>> @register_backbone("tiny-demo")
    ... def tiny(n_classes=2):
    ...     return SplitNet(nn.Sequential(nn.Flatten(), nn.Linear(4, 8)),
    ...                     nn.Linear(8, n_classes), feature_dim=8)
    >>> create_backbone("tiny-demo", n_classes=3).head.out_features
    3
    >>> BACKBONES.unregister("tiny-demo")
    """
    return BACKBONES.decorator(name)


def create_backbone(name: str, **kwargs: object) -> SplitNet:
    """Build a registered backbone by name, e.g. ``create_backbone("mlp", in_shape=(1, 8, 8))``.

    Examples
    --------
    >>> net = create_backbone("lenet", in_shape=(1, 28, 28), n_classes=10)
    >>> type(net).__name__, net.head.out_features
    ('LeNet', 10)
    """
    return BACKBONES.get(name)(**kwargs)


def list_backbones() -> list[str]:
    """Names of the registered backbones.

    Examples
    --------
    >>> list_backbones()
    ['efficientnet-lite0', 'hf-encoder', 'lenet', 'minilm-l6', 'mlp', 'mobilenet-v2']
    """
    return BACKBONES.names()
