"""Paired statistics over seeds: the verdict of one comparison.

For a method and a baseline measured on the same seeds, the per-seed improvement is
``d_s = method_s - baseline_s`` when higher is better, and ``baseline_s - method_s`` when
lower is better, so a positive ``delta_mean`` always means "the method is better". The
comparison holds when ``mean(d) >= required_delta`` and the one-sided paired t-test of
``mean(d) > 0`` gives p < 0.05. The 95% interval is the t interval of ``mean(d)``. The
Wilcoxon signed-rank test is reported beside it when there are at least 5 non-zero
differences (fewer cannot reach p < 0.05 one-sided).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

ALPHA = 0.05


def paired_comparison(
    method: Sequence[float],
    baseline: Sequence[float],
    higher_is_better: bool = True,
    required_delta: float = 0.0,
) -> dict[str, Any]:
    """Paired statistics of ``method`` against ``baseline`` (same seeds, same order).

    Returns
    -------
    dict
        ``n``, ``delta_mean``, ``delta_std``, ``ci95`` (list of two floats), ``p_value``
        (one-sided paired t-test), ``p_wilcoxon`` (or None), ``required_delta``, ``holds``.

    Examples
    --------
    >>> r = paired_comparison([0.9, 0.8, 0.85], [0.8, 0.75, 0.8], required_delta=0.02)
    >>> round(r["delta_mean"], 4), r["holds"]
    (0.0667, True)
    """
    a = np.asarray(method, dtype=float)
    b = np.asarray(baseline, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"paired values must be two equal-length lists; got {a.shape} and {b.shape}"
        )
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("paired values contain NaN")
    d = a - b if higher_is_better else b - a
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    std = float(d.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        ci = [math.nan, math.nan]
        p = math.nan
    elif std == 0.0:
        ci = [mean, mean]
        p = 0.0 if mean > 0 else 1.0
    else:
        se = std / math.sqrt(n)
        half = float(stats.t.ppf(0.975, n - 1)) * se
        ci = [mean - half, mean + half]
        p = float(stats.t.sf(mean / se, n - 1))
    p_w = None
    if int(np.count_nonzero(d)) >= 5:
        p_w = float(stats.wilcoxon(d, alternative="greater").pvalue)
    holds = bool(n >= 2 and mean >= required_delta and p < ALPHA)
    return {
        "n": n,
        "delta_mean": mean,
        "delta_std": std,
        "ci95": ci,
        "p_value": p,
        "p_wilcoxon": p_w,
        "required_delta": required_delta,
        "holds": holds,
    }


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Mean, standard deviation (ddof=1) and 95% t interval of one arm over seeds."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    else:
        half = math.nan
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half]}
