"""The common interface of every image domain: images, labels and a name."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Domain"]


@dataclass(frozen=True)
class Domain:
    """A labelled image set from one domain.

    Parameters
    ----------
    images : Tensor, shape (n, channels, height, width), float32 in [0, 1]
    labels : Tensor, shape (n,), int64 class indices
    name : str
        Where the images come from, e.g. ``"digits"`` or ``"mnist5k@8x8"``.

    Examples
    --------
    >>> d = Domain(torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2]), "toy")
    >>> d.n_classes, len(d.subset(d.labels == 0)), tuple(d.flat().shape)
    (3, 2, (6, 64))
    """

    images: Tensor
    labels: Tensor
    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.images, Tensor) or self.images.ndim != 4:
            shape = tuple(getattr(self.images, "shape", ()))
            raise ValueError(f"images must be a 4-d tensor (n, c, h, w); got shape {shape}")
        if not isinstance(self.labels, Tensor) or self.labels.ndim != 1:
            shape = tuple(getattr(self.labels, "shape", ()))
            raise ValueError(f"labels must be a 1-d tensor (n,); got shape {shape}")
        if len(self.images) != len(self.labels):
            raise ValueError(
                f"images and labels differ in length: {len(self.images)} vs {len(self.labels)}"
            )
        if self.labels.dtype != torch.int64:
            raise ValueError(f"labels must be int64 class indices; got {self.labels.dtype}")
        if len(self.labels) and int(self.labels.min()) < 0:
            bad = int(torch.nonzero(self.labels < 0)[0])
            raise ValueError(
                f"labels must be class indices >= 0; label {int(self.labels[bad])} at row "
                f"{bad} (unlabelled data has no Domain: use the images alone, e.g. a Stream)"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def classes(self) -> list[int]:
        """The sorted class indices present."""
        return [int(c) for c in torch.unique(self.labels)]

    @property
    def n_classes(self) -> int:
        """Number of distinct classes present."""
        return len(self.classes)

    def subset(self, index: Tensor, name: str | None = None) -> Domain:
        """The domain restricted to ``index`` (a long index or a boolean mask)."""
        return Domain(self.images[index], self.labels[index], name or self.name)

    def flat(self) -> Tensor:
        """The images as rows, shape (n, channels * height * width)."""
        return self.images.reshape(len(self), -1)

    def counts(self) -> Tensor:
        """Images per class index, shape (max label + 1,)."""
        return torch.bincount(self.labels)
