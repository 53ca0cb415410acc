"""The user's images as map-style datasets: a folder of class folders, a CSV, or arrays.

- :class:`ImageFolder`: ``root/<class>/<image>`` (the common layout), or a flat folder of
  images with ``labelled=False`` (unlabelled target data);
- :class:`ImageCSV`: a CSV with a header and columns ``path,label`` (paths relative to the
  CSV's folder unless absolute); an empty label marks an unlabelled image;
- :class:`ImageArrays`: ``.npy`` (images only: unlabelled) or ``.npz`` (arrays ``images``
  or ``x``, and optionally ``labels`` or ``y``), images ``(N, H, W)``, ``(N, H, W, C)`` or
  ``(N, C, H, W)``, uint8 in 0..255 or floats in [0, 1]; ``.npy`` files are memory-mapped.

:func:`open_images` picks one by what the path is. Files decode lazily, one per item (PNG,
JPEG, BMP, TIFF, WebP, GIF through Pillow), so 100k images cost a few hundred MB of paths
and labels, and train through :class:`transferkit.train.DatasetStream` with worker
processes. Items are ``(image, label)`` with ``label = -1`` for an unlabelled image.

A file that cannot be read is a ``ValueError`` naming it. :meth:`ImageFiles.scan` decodes
every file once before training (so no epoch stops half-way on a bad file) and either
raises on the first bad one or, with ``skip_bad=True``, drops and counts them.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["IMAGE_EXTENSIONS", "ImageArrays", "ImageCSV", "ImageFiles", "ImageFolder",
           "open_images"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
UNLABELLED = -1


_DEEP_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _deep_grey(img: Any) -> Any:
    """A 16- or 32-bit grey image as Pillow's float mode ``F`` in [0, 1]: 16-bit values over
    65,535; 32-bit integers over 65,535 when they fit in 16 bits (as 16-bit PNGs open),
    else over their own maximum; floats as they are (expected in [0, 1])."""
    from PIL import Image

    arr = np.asarray(img, dtype=np.float64)
    if img.mode != "F":
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) <= 65535 else \
            float(arr.max())
        arr = arr / max(top, 1.0)
    return Image.fromarray(arr.astype(np.float32), mode="F")


class _Images(torch.utils.data.Dataset[tuple[Tensor, int]]):
    """What the three datasets share: classes, labels, transforms, subsets."""

    classes: list[str]
    _labels: np.ndarray
    transform: Callable[[Tensor], Tensor] | None
    source: str
    skipped: list[str] = []  # names of the files a scan skipped (set by the workflows)

    def __len__(self) -> int:
        return len(self._labels)

    @property
    def targets(self) -> Tensor:
        """The labels of all items (-1 where unlabelled), without loading any image."""
        return torch.from_numpy(self._labels.astype(np.int64))

    @property
    def labelled(self) -> bool:
        """True when every item has a label."""
        return bool(len(self._labels)) and bool((self._labels >= 0).all())

    def _item(self, index: int) -> Tensor:
        raise NotImplementedError

    def name(self, index: int) -> str:
        """A name for item ``index`` (its file path, or its row in the array)."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        x = self._item(index)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self._labels[index])

    def subset(self, indices: Iterable[int] | Tensor) -> _Images:
        """The same dataset restricted to ``indices`` (classes and label numbering kept)."""
        idx = (indices.numpy() if isinstance(indices, Tensor)
               else np.asarray(list(indices), dtype=np.int64)).astype(np.int64)
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out._labels = self._labels[idx]
        out._keep(idx)
        return out

    def _keep(self, idx: np.ndarray) -> None:
        raise NotImplementedError

    def with_transform(self, transform: Callable[[Tensor], Tensor] | None) -> _Images:
        """The same items with another transform."""
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.transform = transform
        return out

    def scan(self, skip_bad: bool = False, progress: bool = False) -> list[str]:
        """Decode every item once; return the names of the bad ones (dropped when skipping).

        Raises ``ValueError`` naming the first unreadable file unless ``skip_bad``.
        """
        from tqdm.auto import tqdm

        bad, good = [], []
        for i in tqdm(range(len(self)), desc=f"checking {self.source}", disable=not progress,
                      leave=False):
            try:
                self._item(i)
            except ValueError:
                if not skip_bad:
                    raise
                bad.append(self.name(i))
            else:
                good.append(i)
        if bad:
            kept = self.subset(good)
            self.__dict__.update(kept.__dict__)
        if not len(self):
            raise ValueError(f"{self.source}: no readable image is left")
        return bad


class ImageFiles(_Images):
    """Images in files, one ``(path, label)`` per item; see :class:`ImageFolder`,
    :class:`ImageCSV`.

    Parameters
    ----------
    paths : sequence of path
    labels : sequence of int
        ``-1`` for an unlabelled image.
    classes : sequence of str
        Class names in label order.
    size : int or (height, width), optional
        Resize every image to this (bilinear, antialiased); without it all images must
        share one size for batching.
    mode : {"RGB", "L"}
        3 channels or grey.
    transform : callable(Tensor) -> Tensor, optional
        Applied to each image tensor (float, (C, H, W) in [0, 1]) after loading.
    source : str
        What the items came from, for messages.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> with tempfile.TemporaryDirectory() as d:
    ...     paths = [Path(d) / f"{i}.png" for i in range(3)]
    ...     for p in paths:
    ...         Image.new("L", (8, 8), 128).save(p)
    ...     ds = ImageFiles(paths, [0, 1, -1], ["a", "b"], mode="L")   # -1: unlabelled
    ...     tuple(ds[0][0].shape), ds[2][1]
    ((1, 8, 8), -1)
    """

    def __init__(
        self, paths: Sequence[str | os.PathLike[str]], labels: Sequence[int],
        classes: Sequence[str], size: int | tuple[int, int] | None = None, mode: str = "RGB",
        transform: Callable[[Tensor], Tensor] | None = None, source: str = "images",
    ) -> None:
        if mode not in ("RGB", "L"):
            raise ValueError(f"mode must be 'RGB' or 'L'; got {mode!r}")
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        self._paths = np.asarray([str(p) for p in paths], dtype=object)
        self._labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self.classes = list(classes)
        self.size = (size, size) if isinstance(size, int) else size
        self.mode = mode
        self.transform = transform
        self.source = source

    @property
    def samples(self) -> list[tuple[Path, int]]:
        """Every item's (path, label)."""
        return [(Path(p), int(y)) for p, y in zip(self._paths, self._labels, strict=True)]

    def name(self, index: int) -> str:
        return str(self._paths[index])

    def _keep(self, idx: np.ndarray) -> None:
        self._paths = self._paths[idx]

    def load(self, path: str | os.PathLike[str]) -> Tensor:
        """One image file as a float tensor (channels, height, width) in [0, 1]."""
        from PIL import Image

        try:
            with Image.open(path) as opened:
                if opened.mode in _DEEP_MODES:  # 16/32-bit integer or float grey
                    grey = _deep_grey(opened)
                    if self.size is not None:
                        grey = grey.resize((self.size[1], self.size[0]),
                                           Image.Resampling.BILINEAR)
                    deep = torch.from_numpy(np.asarray(grey, dtype=np.float32).copy())
                    return deep.clamp_(0.0, 1.0)[None].repeat(1 if self.mode == "L" else 3, 1, 1)
                img = opened.convert(self.mode)  # palette, CMYK, LA, RGBA, 1-bit: Pillow's
            if self.size is not None:
                img = img.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
        except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ...
            raise ValueError(f"cannot read image {str(path)!r}: {exc}") from None
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)

    def _item(self, index: int) -> Tensor:
        return self.load(self._paths[index])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r}, {len(self)} images, " \
               f"{len(self.classes)} classes)"


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


class ImageFolder(ImageFiles):
    """Images under ``root/<class>/``, as ``(image, label)`` with labels by sorted class name.

    Parameters
    ----------
    root : path
        A folder holding one sub-folder per class, or (``labelled=False``) images at any
        depth, every one unlabelled.
    size, mode, transform
        As for :class:`ImageFiles`.
    classes : sequence of str, optional
        The class folders to use, in label order (default: every sub-folder, sorted), so a
        validation folder gets the training folder's label numbering. With
        ``labelled=False`` they are only the names to report.
    labelled : bool
        False for a folder of unlabelled images.

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
        labelled: bool = True,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {str(self.root)!r} does not exist or is "
                                    "not a folder")
        if not labelled:
            files = _image_files(self.root)
            if not files:
                raise ValueError(f"{str(self.root)!r} holds no images (looked for "
                                 f"{', '.join(IMAGE_EXTENSIONS)})")
            super().__init__(files, [UNLABELLED] * len(files), classes or [], size, mode,
                             transform, str(self.root))
            return
        found = sorted(p.name for p in self.root.iterdir() if p.is_dir()
                       and not p.name.startswith("."))
        chosen = list(classes) if classes is not None else found
        missing = [c for c in chosen if c not in found]
        if missing:
            raise ValueError(f"class folder(s) {missing} not found under {str(self.root)!r} "
                             f"(it has {found})")
        if not chosen:
            raise ValueError(
                f"{str(self.root)!r} has no class sub-folders; expected root/<class>/<image>"
            )
        paths: list[Path] = []
        labels: list[int] = []
        empty = []
        for label, cls in enumerate(chosen):
            files = _image_files(self.root / cls)
            if not files:
                empty.append(cls)
            paths += files
            labels += [label] * len(files)
        if empty:
            raise ValueError(
                f"class folder(s) {empty} under {str(self.root)!r} hold no images "
                f"(looked for {', '.join(IMAGE_EXTENSIONS)})"
            )
        super().__init__(paths, labels, chosen, size, mode, transform, str(self.root))


class ImageCSV(ImageFiles):
    """Images listed in a CSV with a header and the columns ``path`` and ``label``.

    Relative paths are relative to the CSV's folder. An empty ``label`` (or no ``label``
    column) marks an unlabelled image. Class names are the labels seen, sorted (numbers
    numerically), unless ``classes`` gives them (then an unknown label is an error).
    Other columns are ignored.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for i in range(3):
    ...         Image.new("RGB", (8, 8)).save(Path(d) / f"{i}.png")
    ...     rows = ["path,label", "0.png,ok", "1.png,bad", "2.png,"]   # 2.png: unlabelled
    ...     _ = (Path(d) / "list.csv").write_text(chr(10).join(rows))
    ...     ds = ImageCSV(Path(d) / "list.csv")
    ...     list(ds.classes), [ds[i][1] for i in range(3)]
    (['bad', 'ok'], [1, 0, -1])
    """

    def __init__(
        self, csv_path: str | os.PathLike[str], size: int | tuple[int, int] | None = None,
        mode: str = "RGB", transform: Callable[[Tensor], Tensor] | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        self.csv_path = Path(csv_path)
        if not self.csv_path.is_file():
            raise FileNotFoundError(f"CSV {str(self.csv_path)!r} does not exist")
        with open(self.csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            if "path" not in fields:
                raise ValueError(f"{str(self.csv_path)!r}: expected a header with the columns "
                                 f"'path' and (optionally) 'label'; found {fields}")
            rows = []
            for r in reader:
                extra = r.pop(None, None)  # fields beyond the header's
                short = [k for k, v in r.items() if v is None]  # fields the row lacks
                if extra or short:
                    got = len(fields) + len(extra or []) - len(short)
                    raise ValueError(f"{str(self.csv_path)!r} line {reader.line_num}: {got} "
                                     f"fields where the header has {len(fields)} "
                                     f"({','.join(fields)})")
                rows.append((r["path"] or "", (r.get("label") or "").strip()))
        if not rows:
            raise ValueError(f"{str(self.csv_path)!r} lists no images")
        base = self.csv_path.parent
        paths = []
        for i, (p, _) in enumerate(rows):
            if not p.strip():
                raise ValueError(f"{str(self.csv_path)!r} row {i + 2}: empty path")
            path = Path(p.strip())
            paths.append(path if path.is_absolute() else base / path)
        names, labels = index_labels([lab for _, lab in rows], classes, str(self.csv_path))
        super().__init__(paths, labels, names, size, mode, transform, str(self.csv_path))

    def load(self, path: str | os.PathLike[str]) -> Tensor:
        """As :meth:`ImageFiles.load`; a missing file's error names both readings of a
        relative path (from the CSV's folder, as used, and from the current folder)."""
        try:
            return super().load(path)
        except ValueError as exc:
            p, base = Path(path), self.csv_path.parent
            if p.exists() or not p.is_relative_to(base) or base == Path("."):
                raise
            as_written = p.relative_to(base)
            other = (f"{str(as_written)!r} from the current folder exists: write the paths "
                     "relative to the CSV's folder, or absolute" if as_written.exists()
                     else f"nor does {str(as_written)!r} from the current folder")
            raise ValueError(f"{exc} (the CSV's relative paths are read from its folder, "
                             f"{str(base)!r}; {other})") from None


def index_labels(raw: Sequence[str], classes: Sequence[str] | None, source: str,
                 column: str | None = None) -> tuple[list[str], list[int]]:
    """The class names (``classes``, or the labels seen, numbers in numeric order) and each
    row's class index (``UNLABELLED`` for an empty label); a label outside ``classes`` is
    an error naming ``source`` (and ``column``)."""
    seen = sorted({lab for lab in raw if lab},
                  key=lambda s: (0, float(s), s) if _is_number(s) else (1, 0.0, s))
    names = list(classes) if classes is not None else seen
    index = {c: i for i, c in enumerate(names)}
    unknown = sorted(set(seen) - set(index))
    if unknown:
        where = f" in {column!r}" if column is not None else ""
        raise ValueError(f"{source!r}: label(s) {unknown[:5]}{where} are not among the "
                         f"classes {names}")
    return names, [index[lab] if lab else UNLABELLED for lab in raw]


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


class ImageArrays(_Images):
    """Images in a ``.npy`` (unlabelled) or ``.npz`` (``images``/``x`` [+ ``labels``/``y``]).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     images = np.zeros((5, 1, 8, 8), np.uint8)
    ...     np.savez(Path(d) / "set.npz", images=images, labels=[0, 1, 0, 1, 1])
    ...     ds = ImageArrays(Path(d) / "set.npz")
    ...     len(ds), list(ds.classes), float(ds[0][0].max())
    (5, ['0', '1'], 0.0)
    """

    def __init__(
        self, path: str | os.PathLike[str], size: int | tuple[int, int] | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.source = str(self.path)
        if not self.path.is_file():
            raise FileNotFoundError(f"array file {self.source!r} does not exist")
        labels: np.ndarray | None = None
        try:
            if self.path.suffix == ".npy":
                images = np.load(self.path, mmap_mode="r", allow_pickle=False)
            else:
                with np.load(self.path, allow_pickle=False) as z:
                    key = next((k for k in ("images", "x", "X") if k in z.files), None)
                    if key is None:
                        raise ValueError(f"expected an array 'images' (or 'x'); found "
                                         f"{z.files}")
                    images = z[key]
                    lkey = next((k for k in ("labels", "y") if k in z.files), None)
                    labels = z[lkey] if lkey is not None else None
        except ValueError as exc:
            raise ValueError(f"cannot read {self.source!r}: {exc}") from None
        except OSError as exc:
            raise ValueError(f"cannot read {self.source!r}: {exc}") from None
        if images.ndim not in (3, 4) or images.dtype.kind not in "uif":
            raise ValueError(f"{self.source!r}: expected images (N, H, W), (N, H, W, C) or "
                             f"(N, C, H, W) of numbers; got shape {images.shape}, dtype "
                             f"{images.dtype}")
        self._channels_last = images.ndim == 4 and images.shape[-1] in (1, 3, 4) \
            and images.shape[1] not in (1, 3)
        self._images = images
        self._rows = np.arange(len(images))
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
            if len(labels) != len(images):
                raise ValueError(f"{self.source!r}: {len(images)} images but {len(labels)} "
                                 "labels")
            if labels.dtype.kind not in "iu":
                raise ValueError(f"{self.source!r}: labels must be whole numbers; got dtype "
                                 f"{labels.dtype}")
            k = int(labels.max()) + 1 if len(labels) else 0
            self.classes = list(classes) if classes is not None else [str(c) for c in range(k)]
            if k > len(self.classes) or labels.min() < UNLABELLED:
                raise ValueError(f"{self.source!r}: labels range over {labels.min()}.."
                                 f"{labels.max()}, outside the {len(self.classes)} classes")
            self._labels = labels.astype(np.int64)
        else:
            self.classes = list(classes or [])
            self._labels = np.full(len(images), UNLABELLED, dtype=np.int64)
        self.size = (size, size) if isinstance(size, int) else size
        self.transform = transform

    def name(self, index: int) -> str:
        return f"{self.source}[{int(self._rows[index])}]"

    def _keep(self, idx: np.ndarray) -> None:
        self._rows = self._rows[idx]

    def _item(self, index: int) -> Tensor:
        arr = np.asarray(self._images[int(self._rows[index])])
        x = torch.from_numpy(arr.astype(np.float32))
        if arr.dtype.kind in "iu":
            x = x / 255.0
        if x.dim() == 2:
            x = x.unsqueeze(0)
        elif self._channels_last:
            x = x.permute(2, 0, 1)
        if x.shape[0] == 4:
            x = x[:3]
        if not torch.isfinite(x).all():
            raise ValueError(f"{self.name(index)} holds NaN or infinite values")
        if self.size is not None and tuple(x.shape[-2:]) != tuple(self.size):
            x = torch.nn.functional.interpolate(x[None], size=self.size, mode="bilinear",
                                                align_corners=False, antialias=True)[0]
        return x


def open_images(
    path: str | os.PathLike[str], *, labelled: bool | None = None,
    classes: Sequence[str] | None = None, **kwargs: Any,
) -> _Images:
    """The dataset for ``path``: a folder, a ``.csv``, a ``.npy`` or a ``.npz``.

    A folder with class sub-folders is labelled; a folder of images without sub-folders,
    or any folder with ``labelled=False``, is unlabelled. ``classes`` fixes the class
    names and their order (the training set's, for validation and test sets).

    Examples
    --------
    A folder of class folders (your own images), read at one size:

    >>> import tempfile
    >>> from PIL import Image
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for cls in ("cat", "dog"):
    ...         (Path(d) / cls).mkdir()
    ...         for i in range(2):
    ...             Image.new("RGB", (20, 16), (40 * i, 90, 200)).save(Path(d) / cls / f"{i}.png")
    ...     ds = open_images(d, size=12)
    ...     image, label = ds[3]
    ...     len(ds), list(ds.classes), tuple(image.shape), label
    (4, ['cat', 'dog'], (3, 12, 12), 1)
    """
    p = Path(path)
    if p.is_dir():
        has_classes = any(c.is_dir() and not c.name.startswith(".") for c in p.iterdir())
        use_labels = has_classes if labelled is None else labelled
        return ImageFolder(p, classes=classes, labelled=use_labels, **kwargs)
    if not p.exists():
        raise FileNotFoundError(f"{str(p)!r} does not exist (expected a folder of images, a "
                                ".csv of path,label, or a .npy/.npz array file)")
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return ImageCSV(p, classes=classes, **kwargs)
    if suffix in (".npy", ".npz"):
        kwargs.pop("mode", None)
        return ImageArrays(p, classes=classes, **kwargs)
    raise ValueError(f"{str(p)!r}: expected a folder of images, a .csv of path,label, or a "
                     f".npy/.npz array file; got a {suffix or 'file without extension'}")
