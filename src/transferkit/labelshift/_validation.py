"""Input checks shared by the label-shift estimators, tests and the command line."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from . import _kernels

# Rows of a probability matrix must sum to one within this tolerance (float32 softmax
# outputs written to CSV with 6 digits sum to one within ~1e-5).
SUM_TOL = 1e-3


def as_numpy(a: Any, name: str) -> np.ndarray:
    """``a`` as a numpy array (torch tensors are detached and moved to the CPU)."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):
        a = a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be array-like; got {type(a).__name__}") from exc


def check_labels(y: Any, n_classes: int | None, name: str = "labels") -> NDArray[np.int64]:
    """Integer class indices in ``[0, n_classes)`` as int64."""
    arr = as_numpy(y, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-d class indices; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(
            arr == np.round(arr)
        ):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must be integer class indices; got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or (n_classes is not None and hi >= n_classes):
        expected = f"[0, {n_classes})" if n_classes is not None else ">= 0"
        raise ValueError(f"{name} must lie in {expected}; got values in [{lo}, {hi}]")
    return arr


def check_proba(p: Any, n_classes: int | None, name: str = "probabilities") -> np.ndarray:
    """A float matrix of shape (n, n_classes) with finite, non-negative rows summing to one.

    float32 and float64 are kept as they are (no copy); other dtypes become float64.
    """
    return check_proba_stats(p, n_classes, name)[0]


class ProbaStats(NamedTuple):
    """What validating a probability matrix computed on the way (None: not asked for)."""

    col: np.ndarray | None  # column sums (float64)
    sq: np.ndarray | None  # X^T X
    counts: np.ndarray | None  # how often each class is the row's argmax


def check_proba_stats(
    p: Any, n_classes: int | None, name: str = "probabilities", second: bool = False,
    hard: bool = False,
) -> tuple[np.ndarray, ProbaStats]:
    """:func:`check_proba` that also returns what :func:`scan_proba` computes."""
    arr = as_numpy(p, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (n, n_classes); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if n_classes is not None and arr.shape[1] != n_classes:
        raise ValueError(
            f"{name} has {arr.shape[1]} columns but the estimator was fitted on "
            f"{n_classes} classes"
        )
    if arr.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 class columns; got {arr.shape[1]}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr, scan_proba(arr, name, second, hard)


CHUNK = 16384  # rows per block: a block stays in cache while it is checked and summed


def _bad_row(arr: np.ndarray, bad: int, name: str) -> ValueError:
    """The error for row ``bad``, which failed the checks."""
    row = arr[bad]
    if not np.all(np.isfinite(row)):
        return ValueError(f"{name} has NaN or infinite values (first in row {bad})")
    if abs(float(row.sum()) - 1.0) > SUM_TOL:
        return ValueError(
            f"{name} rows must sum to one; row {bad} sums to {float(row.sum()):.6g}"
        )
    return ValueError(f"{name} must be non-negative; row {bad} has a negative entry")


def scan_proba(
    arr: np.ndarray, name: str = "probabilities", second: bool = False, hard: bool = False
) -> ProbaStats:
    """Validate a probability matrix and summarise it in one pass over memory.

    Checks finiteness, non-negativity and rows summing to one block by block, and returns
    the column sums (float64) and, with ``second``, the sum of outer products ``X^T X``;
    with ``hard`` instead the counts of each row's argmax (no column sums). Without
    ``second``, the compiled kernels of :mod:`._kernels` do it where they apply.
    """
    if not second:
        fast = (_kernels.hard_scan if hard else _kernels.column_scan)(arr, SUM_TOL)
        if fast is not None:
            if fast[1] >= 0:
                raise _bad_row(arr, fast[1], name)
            return ProbaStats(None, None, fast[0]) if hard else ProbaStats(fast[0], None, None)
    n, k = arr.shape
    ones = np.ones(k, dtype=arr.dtype)
    col = np.zeros(k)
    sq = np.zeros((k, k)) if second else None
    counts = np.zeros(k, dtype=np.int64) if hard else None
    for start in range(0, n, CHUNK):
        block = arr[start : start + CHUNK]
        sums = block @ ones
        off = ~(np.abs(sums - 1.0) <= SUM_TOL)  # NaN compares False -> flagged
        if off.any():
            raise _bad_row(arr, start + int(np.flatnonzero(off)[0]), name)
        if block.min() < 0:
            raise _bad_row(arr, start + int(np.flatnonzero((block < 0).any(axis=1))[0]), name)
        if counts is not None:
            counts += np.bincount(block.argmax(axis=1), minlength=k)
        else:
            col += np.ones(len(block), dtype=arr.dtype) @ block
        if sq is not None:
            sq += block.T @ block
    return ProbaStats(None if hard else col, sq, counts)


def check_predictions(
    pred: Any, n_classes: int | None, name: str = "predictions"
) -> tuple[np.ndarray, bool]:
    """Hard labels (1-d) or probabilities (2-d); returns (array, is_probability)."""
    arr = as_numpy(pred, name)
    if arr.ndim == 1:
        return check_labels(arr, n_classes, name), False
    if arr.ndim == 2:
        return check_proba(arr, n_classes, name), True
    raise ValueError(
        f"{name} must be 1-d hard labels or 2-d probabilities (n, n_classes); "
        f"got shape {arr.shape}"
    )
