"""One-pass compiled kernels for large label-shift inputs (numba, optional).

numpy cannot take a row-wise ``argmax`` over a few columns at memory speed (it loops per
row), and an EM pass over many classes makes two BLAS calls and a temporary per block.
These kernels read every row once. They are used when numba is installed (the ``fast``
extra: ``pip install "transferkit[fast]"``), the input has at least ``MIN_ELEMENTS``
entries, and the environment variable ``TRANSFERKIT_NUMBA`` is not ``0``; otherwise the
callers' numpy code runs. Both give the same numbers (sums in another order: equal to
~1e-15 relative).

The first use in a process imports numba (~0.3 s) and, the first time on a machine,
compiles the kernels (~1 s; cached on disk afterwards). That is why small inputs, where
numpy is as fast, never trigger it.

Measured (``benchmarks/bench_labelshift.py``, 1,000,000 rows, one thread): the hard-label
scan 6.5 ms against 28 ms for numpy's ``argmax`` + ``bincount`` at K = 10; the EM pass
44-63 ms against 92 ms at K = 100 (at K = 10 numpy's blocked pass is faster, because the
kernel's per-row logarithm is scalar, so it is not used below ``EM_MIN_CLASSES``).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

MIN_ELEMENTS = 1 << 22
"""Inputs with fewer entries (4M: e.g. 400,000 rows x 10) use numpy."""

EM_MIN_CLASSES = 32
"""The EM kernel beats numpy's blocked pass from about this many classes."""

# reassociation and contraction only: no "nnan"/"ninf", so NaN rows still fail the checks
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


@functools.cache
def _compiled() -> dict[str, Any] | None:
    """The jitted kernels, or None without numba (or with ``TRANSFERKIT_NUMBA=0``)."""
    if os.environ.get("TRANSFERKIT_NUMBA", "1") == "0":
        return None
    try:
        import numba
    except ImportError:
        return None

    def jit(**options: Any) -> Any:
        def wrap(fn: Any) -> Any:
            try:
                return numba.njit(cache=True, nogil=True, **options)(fn)
            except RuntimeError:  # no writable place for numba's cache: compile per process
                return numba.njit(nogil=True, **options)(fn)

        return wrap

    @jit()
    def hard_scan(P: Any, tol: float) -> Any:  # pragma: no cover - compiled
        n, k = P.shape
        counts = np.zeros(k, np.int64)
        for i in range(n):
            best = P[i, 0]
            arg = 0
            total = 0.0 + best
            smallest = best
            for j in range(1, k):
                v = P[i, j]
                total += v
                smallest = min(smallest, v)
                later = v > best  # strictly: the first maximum, as numpy's argmax
                arg = j if later else arg  # selects, not branches
                best = v if later else best
            if smallest < 0 or not abs(total - 1.0) <= tol:  # NaN compares False: flagged
                return counts, i
            counts[arg] += 1
        return counts, -1

    @jit(fastmath=_FASTMATH)
    def em_pass(P: Any, r: Any, tiny: float) -> Any:  # pragma: no cover - compiled
        n, k = P.shape
        t = np.zeros(k)
        loglik = 0.0
        for i in range(n):
            s = 0.0
            for j in range(k):
                s += P[i, j] * r[j]
            s = max(s, tiny)
            loglik += np.log(s)
            inv = 1.0 / s
            for j in range(k):
                t[j] += P[i, j] * inv
        return t, loglik

    return {"hard_scan": hard_scan, "em_pass": em_pass}


def _kernel(name: str, P: np.ndarray) -> Any:
    if P.size < MIN_ELEMENTS or not P.flags.c_contiguous:
        return None
    kernels = _compiled()
    return None if kernels is None else kernels[name]


def hard_scan(P: np.ndarray, tol: float) -> tuple[np.ndarray, int] | None:
    """Predicted-class counts of a probability matrix, checking it on the way.

    Returns ``(counts, first_bad_row)`` with ``first_bad_row == -1`` when every row is
    finite, non-negative and sums to one within ``tol`` (counts are then complete), or None
    when the kernel does not apply (the caller's numpy code runs).
    """
    fn = _kernel("hard_scan", P)
    if fn is None:
        return None
    counts, bad = fn(P, float(tol))
    return np.asarray(counts), int(bad)


def em_pass(P: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Sums over rows of ``P[i] / (P[i] . r)`` and of ``log(P[i] . r)`` (dot products
    floored at the dtype's tiny), or None when the kernel does not apply."""
    if P.shape[1] < EM_MIN_CLASSES:
        return None
    fn = _kernel("em_pass", P)
    if fn is None:
        return None
    t, loglik = fn(P, r.astype(P.dtype), float(np.finfo(P.dtype).tiny))
    return np.asarray(t), float(loglik)
