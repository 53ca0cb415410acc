"""Small image backbones: an MLP and a LeNet-style CNN."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from .base import SplitNet, register_backbone

__all__ = ["MLP", "LeNet"]


def _check_shape(in_shape: Sequence[int]) -> tuple[int, int, int]:
    if len(in_shape) != 3 or min(in_shape) < 1:
        raise ValueError(f"in_shape must be (channels, height, width); got {tuple(in_shape)}")
    c, h, w = (int(v) for v in in_shape)
    return c, h, w


@register_backbone("mlp")
class MLP(SplitNet):
    """Multi-layer perceptron: flatten, then one block (Linear, ReLU[, Dropout]) per hidden size.

    Parameters
    ----------
    in_shape : int or sequence of int
        The shape of one input: ``16`` or ``(16,)`` for tabular rows of 16 features,
        ``(channels, height, width)`` for images; any shape is flattened.
    n_classes : int
    hidden : sequence of int
        Widths of the hidden blocks, e.g. (256, 256); ``features[0]`` is the flatten step,
        ``features[i]`` for i >= 1 the i-th block.
    dropout : float
        Dropout after every hidden block (0 disables it).

    Examples
    --------
    >>> import torch
    >>> net = MLP((1, 8, 8), n_classes=10, hidden=(32, 32))
    >>> net(torch.zeros(4, 1, 8, 8)).shape
    torch.Size([4, 10])
    >>> MLP(16, n_classes=3, hidden=(8,))(torch.zeros(5, 16)).shape
    torch.Size([5, 3])
    """

    def __init__(
        self,
        in_shape: int | Sequence[int],
        n_classes: int,
        hidden: Sequence[int] = (256, 256),
        dropout: float = 0.0,
    ) -> None:
        dims = (in_shape,) if isinstance(in_shape, int) else tuple(in_shape)
        if not dims or not all(isinstance(d, int) and d >= 1 for d in dims):
            raise ValueError(
                f"in_shape must be a positive int or a shape of positive ints; got {in_shape!r}"
            )
        if not hidden:
            raise ValueError("hidden must name at least one block width")
        blocks: list[nn.Module] = [nn.Flatten()]
        width = math.prod(dims)
        for size in hidden:
            layers: list[nn.Module] = [nn.Linear(width, size), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*layers))
            width = size
        super().__init__(nn.Sequential(*blocks), nn.Linear(width, n_classes), width)


@register_backbone("lenet")
class LeNet(SplitNet):
    """LeNet-style CNN: two conv blocks (conv 3x3, ReLU, 2x2 max-pool), then a dense block.

    Parameters
    ----------
    in_shape : (channels, height, width)
        Height and width must be at least 4 (two poolings); 8x8 and 16x16 both work.
    n_classes : int
    channels : (int, int)
        Output channels of the two conv blocks.
    hidden : int
        Width of the dense block, which is the feature dimension.
    dropout : float
        Dropout in the dense block.

    Examples
    --------
    >>> import torch
    >>> LeNet((1, 16, 16), n_classes=10)(torch.zeros(2, 1, 16, 16)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        n_classes: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 256,
        dropout: float = 0.0,
    ) -> None:
        c, h, w = _check_shape(in_shape)
        if h < 4 or w < 4:
            raise ValueError(f"LeNet needs images of at least 4x4; got {h}x{w}")
        c1, c2 = (int(v) for v in channels)
        dense: list[nn.Module] = [
            nn.Flatten(),
            nn.Linear(c2 * (h // 4) * (w // 4), hidden),
            nn.ReLU(),
        ]
        if dropout > 0:
            dense.append(nn.Dropout(dropout))
        features = nn.Sequential(
            nn.Sequential(nn.Conv2d(c, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(*dense),
        )
        super().__init__(features, nn.Linear(hidden, n_classes), hidden)
