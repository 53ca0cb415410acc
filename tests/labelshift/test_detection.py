"""Shift tests on predicted labels: calibration, power, agreement with scipy."""

import numpy as np
import pytest
from scipy import stats

from transferkit.data import tweak_one_prior
from transferkit.labelshift import chi2_shift_test, ks_shift_test


def _preds(rng, prior, n, acc=0.8):
    """Hard predictions of a classifier that is right with probability acc."""
    k = len(prior)
    y = rng.choice(k, size=n, p=prior)
    wrong = rng.random(n) > acc
    pred = np.where(wrong, (y + rng.integers(1, k, size=n)) % k, y)
    return pred


def test_chi2_false_positive_rate_is_calibrated():
    rng = np.random.default_rng(0)
    p = np.full(5, 0.2)
    rejects = [chi2_shift_test(_preds(rng, p, 300), _preds(rng, p, 300)).reject
               for _ in range(300)]
    assert 0.02 <= np.mean(rejects) <= 0.09


def test_chi2_power_under_tweak_one():
    rng = np.random.default_rng(1)
    p = np.full(5, 0.2)
    q = tweak_one_prior(5, 0.5, cls=0)
    rejects = [chi2_shift_test(_preds(rng, p, 500), _preds(rng, q, 500)).reject
               for _ in range(50)]
    assert np.mean(rejects) > 0.95


def test_chi2_matches_scipy_contingency():
    rng = np.random.default_rng(2)
    a, b = _preds(rng, np.full(4, 0.25), 400), _preds(rng, [0.4, 0.3, 0.2, 0.1], 300)
    res = chi2_shift_test(a, b)
    table = np.stack([np.bincount(a, minlength=4), np.bincount(b, minlength=4)])
    ref = stats.chi2_contingency(table, correction=False)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-8)


def test_min_detectable_shift_has_the_stated_power():
    # a target whose Cohen's w against the holdout equals the reported minimum is detected
    # about 80% of the time
    rng = np.random.default_rng(3)
    k, n = 4, 400
    p = np.full(k, 0.25)
    w_min = chi2_shift_test(np.repeat(np.arange(k), n // k),
                            np.repeat(np.arange(k), n // k)).min_detectable_shift
    direction = np.array([1.0, -1.0, 0.0, 0.0])

    def effect(step):  # sqrt(sum (q - p)^2 / pooled), the noncentrality per effective n
        q = p + step * direction
        return np.sqrt((((q - p) ** 2) / ((p + q) / 2)).sum())

    lo, hi = 0.0, 0.25
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if effect(mid) < w_min else (lo, mid)
    q = p + lo * direction
    rejects = [chi2_shift_test(rng.choice(k, n, p=p), rng.choice(k, n, p=q)).reject
               for _ in range(300)]
    assert 0.65 <= np.mean(rejects) <= 0.92


def test_ks_variant_false_positives_and_power():
    rng = np.random.default_rng(4)
    def proba(prior, n):
        y = rng.choice(3, size=n, p=prior)
        logits = rng.normal(0, 1, (n, 3))
        logits[np.arange(n), y] += 2.0
        e = np.exp(logits)
        return e / e.sum(1, keepdims=True)
    p = np.full(3, 1 / 3)
    null = [ks_shift_test(proba(p, 200), proba(p, 200)).reject for _ in range(100)]
    assert np.mean(null) <= 0.1
    alt = [ks_shift_test(proba(p, 300), proba([0.7, 0.15, 0.15], 300)).reject for _ in range(20)]
    assert np.mean(alt) > 0.9


def test_bad_alpha_raises():
    with pytest.raises(ValueError, match="alpha"):
        chi2_shift_test([0, 1], [1, 0], alpha=1.5)


def test_the_detectable_shift_search_runs_once_per_dof_and_alpha():
    from scipy import stats

    from transferkit.labelshift.detection import _chi2_noncentrality

    _chi2_noncentrality.cache_clear()
    labels = np.repeat(np.arange(4), 50)
    small = chi2_shift_test(labels, labels).min_detectable_shift
    large = chi2_shift_test(np.tile(labels, 4), np.tile(labels, 4)).min_detectable_shift
    assert _chi2_noncentrality.cache_info().misses == 1  # dof 3, alpha 0.05, reused
    assert large == pytest.approx(small / 2, rel=1e-12)  # w scales as 1/sqrt(n_eff)
    lam = _chi2_noncentrality(3, 0.05)
    power = stats.ncx2.sf(stats.chi2.isf(0.05, 3), 3, lam)
    assert power == pytest.approx(0.8, abs=1e-8)


def _pair(n, shift, seed):
    rng = np.random.default_rng(seed)
    a = rng.dirichlet(np.ones(4), n)
    b = rng.dirichlet(np.ones(4) + np.array([5 * shift, 0, 0, 0]), int(1.3 * n))
    return a, b


@pytest.mark.parametrize("n", [100, 1000])
@pytest.mark.parametrize("shift", [0.0, 0.1, 0.3])
def test_ks_asymptotic_p_values_are_scipys_and_near_the_exact_ones(n, shift):
    from scipy import stats

    from transferkit.labelshift.detection import ks_distances

    a, b = _pair(n, shift, seed=n + int(10 * shift))
    d = ks_distances(a, b)
    big, small = len(b), len(a)
    for i in range(a.shape[1]):
        asymp = stats.ks_2samp(a[:, i], b[:, i], method="asymp")
        exact = stats.ks_2samp(a[:, i], b[:, i], method="exact")
        assert d[i] == pytest.approx(asymp.statistic, abs=1e-12)
        p = stats.kstwo.sf(d[i], np.round(big * small / (big + small)))
        assert p == pytest.approx(asymp.pvalue, abs=1e-12)
        assert abs(p - exact.pvalue) <= 0.005  # the documented bound for m, n >= 100
    ours = ks_shift_test(a, b)
    per_class = [stats.ks_2samp(a[:, i], b[:, i], method="asymp").pvalue for i in range(4)]
    assert ours.p_value == pytest.approx(min(1.0, 4 * min(per_class)), abs=1e-12)
    exact = ks_shift_test(a, b, method="exact")
    assert abs(ours.p_value - exact.p_value) <= 4 * 0.005
    assert ours.statistic == pytest.approx(exact.statistic, abs=1e-12)


def test_ks_method_is_checked():
    a, b = _pair(50, 0.0, 0)
    with pytest.raises(ValueError, match="method must be one of"):
        ks_shift_test(a, b, method="approx")
