"""One-pass compiled kernels for label-shift inputs (numba, optional).

numpy cannot take a row-wise ``argmax`` over a few columns at memory speed (it loops per
row), validating and summing a probability matrix takes it several passes, and an EM pass
makes two BLAS calls and an n-long temporary per block. These kernels read every row once
and keep no n-long temporaries (the EM pass sums the logarithms of its dot products as the
logarithm of a running product: one ``log`` per many rows). Both paths give the same
numbers (sums in another order: equal to ~1e-15 relative).

When they run (numba installed, the ``fast`` extra: ``pip install "transferkit[fast]"``;
C-contiguous input):

- ``TRANSFERKIT_NUMBA=0``: never; ``TRANSFERKIT_NUMBA=1``: from ``USE_ELEMENTS`` entries
  (numba is loaded by the first such input: for long-running processes);
- unset (the default): numba is loaded by the first input of at least ``LOAD_ELEMENTS``
  entries; once it is loaded, every input of at least ``USE_ELEMENTS`` entries uses it.

Why these thresholds (measured on this project's CI-class CPU, one thread, ns per entry;
kernel / numpy; ``benchmarks/bench_labelshift.py --scaling`` prints the same):

=========================  ===========  ===========  ===========  ===========
K = 10, entries            1e3          1e4          1e6          1e7
hard-label scan            1.8 / 7.4    0.63 / 1.6   0.52 / 2.8   0.52 / 3.0
column sums (soft BBSE)    1.6 / 7.7    0.44 / 1.2   0.31 / 0.53  0.33 / 0.76
EM pass (MLLS)             2.7 / 5.6    0.66 / 1.0   0.44 / 0.57  0.44 / 0.78
K = 100: hard-label scan   1.9 / 6.6    0.79 / 0.91  0.69 / 0.50  0.68 / 0.79
column sums / EM pass      1.3 / 7.3    0.24 / 0.95  0.14 / 0.24  0.34 / 0.71
                           2.4 / 5.3    0.40 / 0.69  0.20 / 0.17  0.27 / 0.44
=========================  ===========  ===========  ===========  ===========

(a numpy ``sum`` runs at 0.3-0.45 ns per entry). The kernels are as fast or faster from
1e3 entries, so once loaded they are used from ``USE_ELEMENTS``. The one exception, the
hard-label scan at 100 columns on inputs that fit in the cache (its compare-and-select
chain runs one column at a time), costs at most 0.2 ns per entry more than numpy there,
and saves more on the inputs the kernels are for: hard BBSE on 1e6 rows x 100 takes
70 ms with it and 85 ms with numpy (0.70 / 0.85 ns per entry). Loading costs about
0.4 s once per process (0.13 s to import numba, 0.25 s to load the compiled kernels
from numba's disk cache; about a second of compiling the first time on a machine), so a
process only pays it for inputs where a few calls earn it back: from 4M entries a hard
scan saves about 10 ms per call and an MLLS estimate (about 13 passes) about 20 ms.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

LOAD_ELEMENTS = 1 << 22
"""An input with this many entries (4M: e.g. 400,000 rows x 10) loads numba (default mode)."""
USE_ELEMENTS = 1 << 10
"""Once numba is loaded, inputs with at least this many entries use the kernels."""

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
    def column_scan(P: Any, tol: float) -> Any:  # pragma: no cover - compiled
        n, k = P.shape
        col = np.zeros(k)
        for i in range(n):
            row = P[i]
            total = 0.0
            negative = False
            for j in range(k):  # the checks: reductions the compiler vectorises
                v = row[j]
                total += v
                negative |= v < 0
            for j in range(k):  # the column sums in their own loop (vectorised too)
                col[j] += row[j]
            if negative or not abs(total - 1.0) <= tol:  # NaN compares False: flagged
                return col, i
        return col, -1

    @jit(fastmath=_FASTMATH)
    def em_pass(P: Any, r: Any, tiny: float) -> Any:  # pragma: no cover - compiled
        n, k = P.shape
        t = np.zeros(k)
        loglik = 0.0
        prod = 1.0  # the product of the rows' dot products since the last logarithm
        for i in range(n):
            s = 0.0
            for j in range(k):
                s += P[i, j] * r[j]
            s = max(s, tiny)
            inv = 1.0 / s
            for j in range(k):
                t[j] += P[i, j] * inv
            # sum of logs as the log of a running product: one logarithm per many rows
            # (no n-long array of dots); extreme dots are logged alone, and the product is
            # logged before it could leave [1e-300, 1e300]
            if s < 1e-50 or s > 1e50:
                loglik += np.log(s)
            else:
                prod *= s
                if prod < 1e-250 or prod > 1e250:
                    loglik += np.log(prod)
                    prod = 1.0
        return t, loglik + np.log(prod)

    return {"hard_scan": hard_scan, "column_scan": column_scan, "em_pass": em_pass}


def _kernel(name: str, P: np.ndarray) -> Any:
    """The kernel ``name`` for ``P``, or None (the caller's numpy code runs)."""
    mode = os.environ.get("TRANSFERKIT_NUMBA", "")
    if mode == "0" or P.size < USE_ELEMENTS or not P.flags.c_contiguous:
        return None
    loaded = _compiled.cache_info().currsize > 0
    if not loaded and mode != "1" and P.size < LOAD_ELEMENTS:
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


def column_scan(P: np.ndarray, tol: float) -> tuple[np.ndarray, int] | None:
    """Column sums (float64) of a probability matrix, checking it on the way, as
    :func:`hard_scan` (``first_bad_row`` -1: all rows good), or None."""
    fn = _kernel("column_scan", P)
    if fn is None:
        return None
    col, bad = fn(P, float(tol))
    return np.asarray(col), int(bad)


def em_pass(P: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Sums over rows of ``P[i] / (P[i] . r)`` and of ``log(P[i] . r)`` (dot products
    floored at the dtype's tiny), or None when the kernel does not apply."""
    fn = _kernel("em_pass", P)
    if fn is None:
        return None
    t, loglik = fn(P, r.astype(P.dtype), float(np.finfo(P.dtype).tiny))
    return np.asarray(t), float(loglik)
