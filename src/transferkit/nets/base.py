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
    """Class or factory decorator adding a backbone to the registry."""
    return BACKBONES.decorator(name)


def create_backbone(name: str, **kwargs: object) -> SplitNet:
    """Build a registered backbone by name, e.g. ``create_backbone("mlp", in_shape=(1, 8, 8))``."""
    return BACKBONES.get(name)(**kwargs)


def list_backbones() -> list[str]:
    return BACKBONES.names()
