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

Each comparison has one of three **verdicts**, from two one-sided t-tests on
``d - required_delta``:

- ``holds``: the test of H0 "mean(d) <= required_delta" rejects at 0.05 (``p_value``): the
  improvement is shown to exceed its margin;
- ``does not hold``: the test of H0 "mean(d) >= required_delta" rejects at 0.05
  (``p_short``): the one-sided 95% upper confidence bound of mean(d) lies below the
  margin, so the improvement is shown to fall short of it;
- ``inconclusive``: neither. ``seeds_for_power`` then says how many seeds a paired test
  would need for 80% power at the observed mean and spread (towards whichever side the
  observed mean lies on).

``p_zero`` reports the first test against zero beside it. The 95% interval is the
two-sided t interval of ``mean(d)``. The Wilcoxon signed-rank test of ``d - required_delta``
is reported beside it when there are at least 5 non-zero shifted differences (fewer cannot
reach p < 0.05 one-sided).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ALPHA", "MAX_SEEDS_FOR_POWER", "POWER", "VERDICTS", "one_sample_comparison",
           "paired_comparison", "seeds_for_power", "summarize", "verdict_of"]

ALPHA = 0.05
POWER = 0.8
HOLDS, DOES_NOT_HOLD, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
VERDICTS = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE)
MAX_SEEDS_FOR_POWER = 100_000
"""Above this, ``seeds_for_power`` is None: the observed effect is too small to chase."""


def _one_sided(d: np.ndarray, shift: float) -> tuple[float, float, float, list[float]]:
    """(mean, p of H1: mean(d) > shift, p of H1: mean(d) < shift, 95% t interval)."""
    from scipy import stats

    n = len(d)
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan, [math.nan, math.nan]
    std = float(d.std(ddof=1))
    if std == 0.0:
        return mean, (0.0 if mean > shift else 1.0), (0.0 if mean < shift else 1.0), [mean, mean]
    se = std / math.sqrt(n)
    half = float(stats.t.ppf(0.975, n - 1)) * se
    t = (mean - shift) / se
    return mean, float(stats.t.sf(t, n - 1)), float(stats.t.cdf(t, n - 1)), [mean - half,
                                                                             mean + half]


def verdict_of(p_value: float, p_short: float, alpha: float = ALPHA) -> str:
    """The three-outcome verdict of one comparison from its two one-sided p-values.

    Examples
    --------
    >>> verdict_of(0.01, 0.99), verdict_of(0.97, 0.03), verdict_of(0.3, 0.7)
    ('holds', 'does not hold', 'inconclusive')
    """
    if p_value < alpha:  # NaN compares False: too few seeds is inconclusive
        return HOLDS
    if p_short < alpha:
        return DOES_NOT_HOLD
    return INCONCLUSIVE


def seeds_for_power(effect: float, std: float, alpha: float = ALPHA,
                    power: float = POWER) -> int | None:
    """Seeds a one-sided paired t-test at level ``alpha`` needs to reach ``power`` when the
    true mean difference from the margin is ``effect`` and the per-seed spread ``std``.

    Exact, from the noncentral t distribution (the smallest ``n >= 2`` whose power reaches
    ``power``). None when the effect is zero or not finite, or when more than
    :data:`MAX_SEEDS_FOR_POWER` seeds would be needed.

    Examples
    --------
    >>> seeds_for_power(1.0, 1.0)  # an effect of one standard deviation
    8
    >>> seeds_for_power(0.0, 1.0) is None
    True
    """
    from scipy import stats

    if not (math.isfinite(effect) and math.isfinite(std)) or effect == 0.0:
        return None
    if std == 0.0:
        return 2
    size = abs(effect) / std

    def reaches(n: int) -> bool:
        crit = stats.t.ppf(1 - alpha, n - 1)
        return bool(stats.nct.sf(crit, n - 1, size * math.sqrt(n)) >= power)

    # power grows with n: double to bracket, then bisect
    lo, hi = 1, 2
    while not reaches(hi):
        lo, hi = hi, hi * 2
        if hi > 2 * MAX_SEEDS_FOR_POWER:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if not reaches(mid) else (lo, mid)
    return hi if hi <= MAX_SEEDS_FOR_POWER else None


def _test(d: np.ndarray, required_delta: float) -> dict[str, Any]:
    from scipy import stats

    n = len(d)
    mean, p, p_short, ci = _one_sided(d, required_delta)
    p_zero = _one_sided(d, 0.0)[1]
    shifted = d - required_delta
    p_w = None
    if int(np.count_nonzero(shifted)) >= 5:
        p_w = float(stats.wilcoxon(shifted, alternative="greater").pvalue)
    std = float(d.std(ddof=1)) if n > 1 else math.nan
    verdict = verdict_of(p, p_short)
    return {
        "n": n,
        "delta_mean": mean,
        "delta_std": std,
        "ci95": ci,
        "p_value": p,
        "p_short": p_short,
        "p_zero": p_zero,
        "p_wilcoxon": p_w,
        "required_delta": required_delta,
        "verdict": verdict,
        "holds": verdict == HOLDS,
        "seeds_for_power": (seeds_for_power(mean - required_delta, std)
                            if verdict == INCONCLUSIVE else None),
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
        (one-sided paired t-test of H0: mean(d) <= required_delta), ``p_short`` (of H0:
        mean(d) >= required_delta), ``p_zero`` (the first against 0), ``p_wilcoxon``
        (shifted likewise, or None), ``required_delta``, ``verdict`` (``"holds"``, ``"does
        not hold"`` or ``"inconclusive"``), ``holds`` (the verdict is ``"holds"``) and
        ``seeds_for_power`` (for an inconclusive verdict, else None).

    Examples
    --------
    >>> r = paired_comparison([0.9, 0.8, 0.85], [0.8, 0.75, 0.8], required_delta=0.01)
    >>> round(r["delta_mean"], 4), r["verdict"]
    (0.0667, 'holds')

    Barely over the margin is not shown to exceed it, nor to fall short of it:

    >>> m = [0.5073, 0.5033, 0.5063, 0.5043, 0.5078, 0.5028, 0.5053, 0.5053]
    >>> r = paired_comparison(m, [0.5] * 8, required_delta=0.005)
    >>> round(r["delta_mean"], 4), r["p_zero"] < 1e-4, round(r["p_value"], 2), r["verdict"]
    (0.0053, True, 0.33, 'inconclusive')
    >>> r["seeds_for_power"]
    223
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
    >>> r["verdict"], round(r["delta_mean"], 4)
    ('holds', 0.0325)
    """
    x = _values(values, "values")
    return _test(x - bound if above else bound - x, float(required_delta))


def summarize(values: Sequence[float],
              bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    """Mean, standard deviation (ddof=1) and 95% t interval of one arm over seeds; the
    interval is clipped to ``bounds``, the range the metric cannot leave (a rate's mean
    lies in [0, 1] whatever the t interval says).

    Examples
    --------
    >>> s = summarize([0.80, 0.82, 0.78, 0.81, 0.79])
    >>> round(s["mean"], 3), round(s["std"], 4), [round(v, 3) for v in s["ci95"]]
    (0.8, 0.0158, [0.78, 0.82])
    >>> [round(v, 3) for v in summarize([1.0, 1.0, 0.9, 1.0, 1.0], bounds=(0, 1))["ci95"]]
    [0.924, 1.0]
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    else:
        half = math.nan
    lo, hi = mean - half, mean + half
    if bounds is not None and n > 1:
        lo, hi = max(lo, float(bounds[0])), min(hi, float(bounds[1]))
    return {"n": n, "mean": mean, "std": std, "ci95": [lo, hi]}
