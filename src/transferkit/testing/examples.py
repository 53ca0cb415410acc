"""Small, seeded inputs for the examples of the documentation and for testing one's own
methods (a toy claim is :func:`transferkit.claims.demo.demo_claim`)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["synthetic_transfer_pair"]


def synthetic_transfer_pair(shift: float = 0.5, n_features: int = 4, seed: int = 0) -> Any:
    """A two-class :class:`~transferkit.l2t.TransferPair`: 60 labelled source rows, a
    target moved by ``shift`` with 4 labelled rows and 36 others (their labels kept as
    the test set).

    Examples
    --------
    >>> pair = synthetic_transfer_pair(shift=1.0)
    >>> pair.Xs.shape, pair.Xt_labelled.shape, pair.test_set()[0].shape
    ((60, 4), (4, 4), (36, 4))
    """
    from ..l2t import TransferPair

    rng = np.random.default_rng(seed)
    ys, yt = np.repeat([0, 1], 30), np.repeat([0, 1], 20)
    Xs = rng.normal(size=(60, n_features)) + 2 * ys[:, None]
    Xt = rng.normal(size=(40, n_features)) + 2 * yt[:, None] + shift
    labelled = [0, 1, 38, 39]
    return TransferPair(Xs, ys, Xt[4:], Xt[labelled], yt[labelled], Xt[4:], yt[4:])
