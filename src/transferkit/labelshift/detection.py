"""Label-shift detection on a black box's predictions (BBSD).

Lipton, Wang, Smola (ICML 2018, https://proceedings.mlr.press/v80/lipton18a.html): under
label shift the distribution of predicted labels moves iff ``C (q - p) != 0``, so a
two-sample test on predicted labels of the source holdout and of the target detects it
with a test on k categories instead of on high-dimensional inputs.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from ._validation import check_predictions, check_proba

__all__ = ["ShiftTestResult", "chi2_shift_test", "ks_shift_test", "mmd_shift_test"]

_POWER = 0.8


class ShiftTestResult(NamedTuple):
    """Outcome of a two-sample shift test.

    Attributes
    ----------
    statistic : float
    p_value : float
    reject : bool
        ``p_value < alpha``: a shift is detected.
    alpha : float
    min_detectable_shift : float
        The smallest effect the test detects with power 0.8 at this ``alpha`` and these
        sample sizes. For the chi-squared test it is Cohen's w of the predicted-label
        distributions, ``sqrt(sum_i (pi_t[i] - pi_s[i])**2 / pi[i])`` (pi: pooled); for the
        KS test it is the largest gap between the two CDFs of one class's probability.
    method : str

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> res = chi2_shift_test(rng.integers(0, 3, 500), rng.choice(3, 400, p=[0.6, 0.2, 0.2]))
    >>> res.reject, round(res.p_value, 6) < 0.05, res.alpha
    (True, True, 0.05)
    """

    statistic: float
    p_value: float
    reject: bool
    alpha: float
    min_detectable_shift: float
    method: str


def _labels(pred: Any, name: str, n_classes: int | None) -> tuple[np.ndarray, int]:
    arr, is_proba = check_predictions(pred, n_classes, name)
    if is_proba:
        return arr.argmax(axis=1), arr.shape[1]
    return arr, int(arr.max()) + 1


def chi2_shift_test(
    holdout_pred: Any,
    target_pred: Any,
    alpha: float = 0.05,
    n_classes: int | None = None,
) -> ShiftTestResult:
    """BBSD chi-squared test (Lipton et al. 2018, https://proceedings.mlr.press/v80/lipton18a.html).

    Pearson's chi-squared test of homogeneity on the 2 x k table of predicted-label counts
    (source holdout vs target); classes predicted in neither sample are dropped.

    Parameters
    ----------
    holdout_pred, target_pred : array, shape (m,) of int or (m, n_classes) of float
        Hard predictions or probabilities (reduced to their argmax).
    alpha : float, default 0.05
    n_classes : int, optional

    Returns
    -------
    ShiftTestResult
        ``min_detectable_shift`` is Cohen's w detectable with power 0.8: the noncentrality
        ``lambda`` with ``P(chi2_dof(lambda) > crit) = 0.8``, as ``sqrt(lambda / n_eff)``
        with ``n_eff = m n / (m + n)``.

    Examples
    --------
    >>> a = np.repeat(np.arange(3), 100)
    >>> b = np.repeat(np.arange(3), [200, 50, 50])
    >>> chi2_shift_test(a, b).reject
    True
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    hs, k1 = _labels(holdout_pred, "holdout predictions", n_classes)
    ts, k2 = _labels(target_pred, "target predictions", n_classes)
    both_proba = np.ndim(holdout_pred) == 2 and np.ndim(target_pred) == 2
    if both_proba and k1 != k2:
        raise ValueError(
            f"holdout probabilities have {k1} class columns but target probabilities have {k2}"
        )
    k = n_classes if n_classes is not None else max(k1, k2)
    table = np.stack([np.bincount(hs, minlength=k), np.bincount(ts, minlength=k)]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    m, n = table.sum(axis=1)
    dof = table.shape[1] - 1
    if dof < 1:
        return ShiftTestResult(0.0, 1.0, False, alpha, float("inf"), "chi2")
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    from scipy import stats

    p_value = float(stats.chi2.sf(statistic, dof))
    return ShiftTestResult(statistic, p_value, p_value < alpha, alpha,
                           _chi2_min_effect(dof, alpha, m * n / (m + n)), "chi2")


def _chi2_min_effect(dof: int, alpha: float, n_eff: float) -> float:
    """Cohen's w detectable with power 0.8: ``sqrt(lambda / n_eff)``, where the
    noncentrality ``lambda`` depends on ``(dof, alpha)`` only, so its root search runs once
    per pair and is remembered."""
    return float(np.sqrt(_chi2_noncentrality(dof, alpha) / n_eff))


@functools.lru_cache(maxsize=256)
def _chi2_noncentrality(dof: int, alpha: float) -> float:
    """The noncentrality with ``P(chi2_dof(lambda) > crit_alpha) = 0.8`` (Brent's method)."""
    from scipy import optimize, stats

    crit = stats.chi2.isf(alpha, dof)

    def gap(lam: float) -> float:
        return float(stats.ncx2.sf(crit, dof, lam)) - _POWER

    hi = 1.0
    while gap(hi) < 0:
        hi *= 2.0
    return float(optimize.brentq(gap, 1e-9, hi, xtol=1e-10))


KS_METHODS = ("asymp", "exact")


def ks_distances(holdout: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The two-sample KS distance of every column: ``max_x |F_h(x) - F_t(x)|``, shape (k,).

    Both samples are sorted once, all columns in one call; each column's two empirical
    CDFs are read at the pooled points with ``searchsorted`` (ties handled as scipy's
    ``ks_2samp`` does, which gives the same distances).
    """
    # one contiguous row per class, sorted in place
    hs, ts = np.ascontiguousarray(holdout.T), np.ascontiguousarray(target.T)
    hs.sort(axis=1)
    ts.sort(axis=1)
    m, n = hs.shape[1], ts.shape[1]
    out = np.empty(len(hs))
    for i in range(len(hs)):
        a, b = hs[i], ts[i]
        pooled = np.concatenate([a, b])
        gap = np.searchsorted(a, pooled, side="right") / m \
            - np.searchsorted(b, pooled, side="right") / n
        out[i] = max(float(gap.max()), float(-gap.min()), 0.0)
    return out


def ks_shift_test(holdout_proba: Any, target_proba: Any, alpha: float = 0.05,
                  method: str = "asymp") -> ShiftTestResult:
    """BBSD Kolmogorov-Smirnov variant (Rabanser, Guennemann, Lipton, NeurIPS 2019,
    https://arxiv.org/abs/1810.11953).

    One two-sample KS test per class on the predicted probabilities, combined with a
    Bonferroni correction: ``p = min(1, k * min_i p_i)``; the statistic is the largest
    KS distance.

    Parameters
    ----------
    holdout_proba, target_proba : array, shape (m, n_classes) and (n, n_classes)
    alpha : float, default 0.05
    method : {"asymp", "exact"}
        How each class's p-value is computed from its distance ``D``. ``"asymp"``
        (default, as alibi-detect's KSDrift): Smirnov's asymptotic distribution, scipy's
        ``kstwo.sf(D, round(m n / (m + n)))``, the p-value of ``ks_2samp(method="asymp")``
        to float precision; evaluated once, at the largest distance. ``"exact"``: scipy's
        exact two-sample distribution (``ks_2samp(method="exact")``, much slower). The
        asymptotic p-values are within 0.02 of the exact ones for m, n >= 100 and within
        0.005 for m, n >= 1,000 (tested on both null and shifted samples); the combined
        p-value multiplies that gap by at most k.

    Returns
    -------
    ShiftTestResult
        ``min_detectable_shift`` is the asymptotic critical KS distance at level
        ``alpha / k`` (a gap the test detects with probability about 0.5; power 0.8 needs
        somewhat more).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.dirichlet([1, 1], 300)
    >>> ks_shift_test(a, rng.dirichlet([1, 1], 300)).reject
    False
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    if method not in KS_METHODS:
        raise ValueError(f"method must be one of {KS_METHODS}; got {method!r}")
    h = check_proba(holdout_proba, None, "holdout probabilities")
    t = check_proba(target_proba, h.shape[1], "target probabilities")
    k = h.shape[1]
    m, n = len(h), len(t)
    from scipy import stats

    if method == "asymp":
        # every class shares the effective size, and the p-value falls as D grows, so the
        # smallest p-value is the largest distance's: one evaluation of the distribution
        distances = ks_distances(h, t)
        big, small = max(m, n), min(m, n)
        p_values = stats.kstwo.sf(distances.max(keepdims=True),
                                  np.round(big * small / (big + small)))
    else:
        results = [stats.ks_2samp(h[:, i], t[:, i], method="exact") for i in range(k)]
        distances = np.array([r.statistic for r in results])
        p_values = np.array([r.pvalue for r in results])
    statistic = float(distances.max())
    p_value = float(min(1.0, k * float(np.min(p_values))))
    c = np.sqrt(-0.5 * np.log((alpha / k) / 2))
    d_min = float(c * np.sqrt((m + n) / (m * n)))
    return ShiftTestResult(statistic, p_value, p_value < alpha, alpha, d_min, "ks")


def mmd_shift_test(
    source: Any,
    target: Any,
    alpha: float = 0.05,
    permutations: int = 200,
    seed: Any = 0,
) -> ShiftTestResult:
    """Kernel two-sample test on the inputs themselves: the baseline that BBSD is compared with.

    Gretton et al., JMLR 2012 (https://jmlr.org/papers/v13/gretton12a.html): the biased
    MMD^2 under one Gaussian kernel whose bandwidth is the median pairwise squared
    distance of the pooled sample, with a permutation p-value ``(1 + #{perm >= obs}) /
    (1 + permutations)``. The kernel is :func:`transferkit.adaptation.gaussian_kernel`.

    Parameters
    ----------
    source, target : array or Tensor, shape (n, d) and (m, d)
        Inputs (flattened); float64 is used for the kernel.
    alpha : float
    permutations : int
    seed : int or torch.Generator
        Seed of the permutations.

    Returns
    -------
    ShiftTestResult
        ``min_detectable_shift`` is NaN (no closed form for a kernel test).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(40, 3)), rng.normal(loc=1.0, size=(40, 3))
    >>> mmd_shift_test(a, b, permutations=99).reject, mmd_shift_test(a[:20], a[20:]).reject
    (True, False)
    """
    import torch

    from ..adaptation import gaussian_kernel

    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    if int(permutations) < 1:
        raise ValueError(f"permutations must be >= 1; got {permutations}")
    x = source if torch.is_tensor(source) else torch.as_tensor(np.array(source, np.float64))
    y = target if torch.is_tensor(target) else torch.as_tensor(np.array(target, np.float64))
    x, y = x.reshape(len(x), -1).double(), y.reshape(len(y), -1).double()
    if x.shape[1] != y.shape[1] or len(x) < 2 or len(y) < 2:
        raise ValueError(
            f"source and target need >= 2 rows of the same width; got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))
    z = torch.cat([x, y])
    n, m = len(z), len(x)
    d2 = torch.cdist(z, z).pow_(2)
    median = d2[torch.triu_indices(n, n, 1).unbind()].median().clamp_min(1e-12)
    kern = gaussian_kernel(z, kernel_num=1, bandwidth=float(median))
    signs = torch.cat([torch.full((m,), 1.0 / m), torch.full((n - m,), -1.0 / (n - m))])
    signs = signs.double()
    perms = torch.stack([signs[torch.randperm(n, generator=gen)] for _ in range(permutations)],
                        dim=1)
    all_signs = torch.cat([signs[:, None], perms], dim=1)  # (n, 1 + P)
    stats = (all_signs * (kern @ all_signs)).sum(dim=0)  # biased MMD^2 of each labelling
    p_value = float((1 + (stats[1:] >= stats[0]).sum()) / (1 + permutations))
    return ShiftTestResult(float(stats[0]), p_value, p_value < alpha, alpha, float("nan"),
                           "mmd")
