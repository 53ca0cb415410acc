"""Statistics over seeds: the verdict of one comparison.

Three kinds of comparison, all one-sided tests on per-seed differences ``d_s`` oriented so
that ``d > 0`` always means "better":

- **superiority** (``paired_comparison``): ``d_s = method_s - baseline_s`` (or
  ``baseline_s - method_s`` when lower is better). It holds when the test of
  H0: mean(d) <= required_delta against H1: mean(d) > required_delta gives p < 0.05: the
  improvement is shown to *exceed the margin*, not merely to exceed zero.
- **non-inferiority** (``paired_comparison`` with ``required_delta = -margin``): the
  method is shown to be worse than the baseline by less than ``margin``.
- **bound** (``one_sample_comparison``): one arm against a constant, in a stated
  direction (``d_s = value_s - bound`` for "above", ``bound - value_s`` for "below").

The test is the one-sided t-test on ``d - required_delta``; ``p_zero`` reports the same test
against zero beside it. The 95% interval is the t interval of ``mean(d)``. The Wilcoxon
signed-rank test of ``d - required_delta`` is reported beside it when there are at least 5
non-zero shifted differences (fewer cannot reach p < 0.05 one-sided).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

ALPHA = 0.05


def _one_sided(d: np.ndarray, shift: float) -> tuple[float, float, list[float]]:
    """(mean, p-value of H1: mean(d) > shift, 95% t interval of mean(d))."""
    from scipy import stats

    n = len(d)
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, [math.nan, math.nan]
    std = float(d.std(ddof=1))
    if std == 0.0:
        return mean, (0.0 if mean > shift else 1.0), [mean, mean]
    se = std / math.sqrt(n)
    half = float(stats.t.ppf(0.975, n - 1)) * se
    return mean, float(stats.t.sf((mean - shift) / se, n - 1)), [mean - half, mean + half]


def _test(d: np.ndarray, required_delta: float) -> dict[str, Any]:
    from scipy import stats

    n = len(d)
    mean, p, ci = _one_sided(d, required_delta)
    p_zero = _one_sided(d, 0.0)[1]
    shifted = d - required_delta
    p_w = None
    if int(np.count_nonzero(shifted)) >= 5:
        p_w = float(stats.wilcoxon(shifted, alternative="greater").pvalue)
    return {
        "n": n,
        "delta_mean": mean,
        "delta_std": float(d.std(ddof=1)) if n > 1 else math.nan,
        "ci95": ci,
        "p_value": p,
        "p_zero": p_zero,
        "p_wilcoxon": p_w,
        "required_delta": required_delta,
        "holds": bool(n >= 2 and p < ALPHA),
    }


def _values(x: Sequence[float], name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-d list of per-seed values; got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contain non-finite values: {a.tolist()}")
    return a


def paired_comparison(
    method: Sequence[float],
    baseline: Sequence[float],
    higher_is_better: bool = True,
    required_delta: float = 0.0,
) -> dict[str, Any]:
    """Paired one-sided test that ``method`` beats ``baseline`` by more than ``required_delta``.

    A negative ``required_delta`` makes it a non-inferiority test (the method is worse by
    less than ``-required_delta``).

    Returns
    -------
    dict
        ``n``, ``delta_mean``, ``delta_std``, ``ci95`` (list of two floats), ``p_value``
        (one-sided paired t-test of H0: mean(d) <= required_delta), ``p_zero`` (the same
        against 0), ``p_wilcoxon`` (shifted likewise, or None), ``required_delta``,
        ``holds``.

    Examples
    --------
    >>> r = paired_comparison([0.9, 0.8, 0.85], [0.8, 0.75, 0.8], required_delta=0.01)
    >>> round(r["delta_mean"], 4), r["holds"]
    (0.0667, True)

    Barely over the margin is not shown to exceed it:

    >>> m = [0.5073, 0.5033, 0.5063, 0.5043, 0.5078, 0.5028, 0.5053, 0.5053]
    >>> r = paired_comparison(m, [0.5] * 8, required_delta=0.005)
    >>> round(r["delta_mean"], 4), r["p_zero"] < 1e-4, round(r["p_value"], 2), r["holds"]
    (0.0053, True, 0.33, False)
    """
    a, b = _values(method, "method values"), _values(baseline, "baseline values")
    if a.shape != b.shape:
        raise ValueError(
            f"paired values must be two equal-length lists; got {a.shape} and {b.shape}"
        )
    return _test(a - b if higher_is_better else b - a, float(required_delta))


def one_sample_comparison(
    values: Sequence[float], bound: float, above: bool = True, required_delta: float = 0.0
) -> dict[str, Any]:
    """One-sided test that an arm lies ``above`` (or below) a constant ``bound``.

    Examples
    --------
    >>> r = one_sample_comparison([0.04, 0.05, 0.045, 0.055], bound=0.08, above=False)
    >>> r["holds"], round(r["delta_mean"], 4)
    (True, 0.0325)
    """
    x = _values(values, "values")
    return _test(x - bound if above else bound - x, float(required_delta))


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Mean, standard deviation (ddof=1) and 95% t interval of one arm over seeds."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    else:
        half = math.nan
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half]}
