"""A folder of images, one sub-folder per class, as a map-style ``Dataset``.

The layout is the common one (``root/<class>/<image>``); images load lazily, one file per
item, so a folder larger than memory trains through :class:`transferkit.train.DatasetStream`
with worker processes. Pillow reads the files (PNG, JPEG, BMP, TIFF, WebP, GIF).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")


class ImageFolder(torch.utils.data.Dataset[tuple[Tensor, int]]):
    """Images under ``root/<class>/``, as ``(image, label)`` with labels by sorted class name.

    Parameters
    ----------
    root : path
        A folder holding one sub-folder per class.
    size : int or (height, width), optional
        Resize every image to this (bilinear, antialiased); without it all images must
        already share one size for batching.
    mode : str
        Pillow mode: ``"RGB"`` (3 channels) or ``"L"`` (grey, 1 channel).
    transform : callable(Tensor) -> Tensor, optional
        Applied to each image tensor after loading (normalisation, augmentation).
    classes : sequence of str, optional
        The class folders to use, in label order (default: every sub-folder, sorted), so a
        validation folder gets the training folder's label numbering.

    Attributes
    ----------
    classes : list of str
    samples : list of (path, label)

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for cls in ("cat", "dog"):
    ...     (root / cls).mkdir()
    ...     Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(root / cls / "a.png")
    >>> ds = ImageFolder(root, size=4)
    >>> x, y = ds[1]
    >>> ds.classes, tuple(x.shape), y
    (['cat', 'dog'], (3, 4, 4), 1)
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        size: int | tuple[int, int] | None = None,
        mode: str = "RGB",
        transform: Callable[[Tensor], Tensor] | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {str(self.root)!r} does not exist or is "
                                    "not a folder")
        if mode not in ("RGB", "L"):
            raise ValueError(f"mode must be 'RGB' or 'L'; got {mode!r}")
        found = sorted(p.name for p in self.root.iterdir() if p.is_dir()
                       and not p.name.startswith("."))
        self.classes = list(classes) if classes is not None else found
        missing = [c for c in self.classes if c not in found]
        if missing:
            raise ValueError(f"class folder(s) {missing} not found under {str(self.root)!r}")
        if not self.classes:
            raise ValueError(
                f"{str(self.root)!r} has no class sub-folders; expected root/<class>/<image>"
            )
        self.samples: list[tuple[Path, int]] = []
        empty = []
        for label, cls in enumerate(self.classes):
            files = sorted(p for p in (self.root / cls).rglob("*")
                           if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not files:
                empty.append(cls)
            self.samples.extend((p, label) for p in files)
        if empty:
            raise ValueError(
                f"class folder(s) {empty} under {str(self.root)!r} hold no images "
                f"(looked for {', '.join(IMAGE_EXTENSIONS)})"
            )
        self.size = (size, size) if isinstance(size, int) else size
        self.mode = mode
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def targets(self) -> Tensor:
        """The labels of all items, without loading any image."""
        return torch.tensor([label for _, label in self.samples], dtype=torch.int64)

    def load(self, path: Path) -> Tensor:
        """One image file as a float tensor (channels, height, width) in [0, 1]."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as opened:
                img = opened.convert(self.mode)
            if self.size is not None:
                img = img.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"cannot read image {str(path)!r}: {exc}") from exc
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        x = self.load(path)
        if self.transform is not None:
            x = self.transform(x)
        return x, label

    def __repr__(self) -> str:
        return (f"ImageFolder({str(self.root)!r}, {len(self)} images, "
                f"{len(self.classes)} classes)")
