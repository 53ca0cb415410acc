"""BBSE, RLLS and MLLS: recovery, exactness against a direct solve, contract, intervals."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from transferkit.labelshift import (
    BBSE,
    MLLS,
    RLLS,
    IllConditionedWarning,
    apply_bcts,
    create_estimator,
    list_estimators,
)
from transferkit.testing.labelshift import check_label_shift_estimator, synthetic_label_shift

ESTIMATORS = [BBSE(), BBSE(soft=True), RLLS(), RLLS(soft=True), MLLS(),
              MLLS(calibration="bcts"), MLLS(calibration=None), MLLS(source_prior="predictions")]


@pytest.mark.parametrize("est", ESTIMATORS, ids=repr)
def test_recovers_known_prior(est):
    check_label_shift_estimator(est, n_holdout=10_000, n_target=10_000, tol=0.04)


@pytest.mark.parametrize("est", [BBSE(), RLLS()], ids=repr)
def test_recovers_known_prior_from_hard_labels(est):
    check_label_shift_estimator(est, n_holdout=10_000, n_target=10_000, tol=0.04, hard=True)


@pytest.mark.parametrize("name", list_estimators())
@pytest.mark.parametrize("hard", [False, True])
def test_every_registered_estimator_recovers_a_prior(name, hard):
    est = create_estimator(name)
    if hard and name == "mlls":
        with pytest.raises(ValueError, match="probabilities"):
            check_label_shift_estimator(est, n_holdout=2000, n_target=2000, hard=True)
        return
    check_label_shift_estimator(est, n_holdout=10_000, n_target=10_000, tol=0.04, hard=hard)


def test_property_check_can_fail():
    class Broken(BBSE):
        def estimate(self, X):
            res = super().estimate(X)
            k = len(res.prior)
            return res._replace(prior=np.full(k, 1 / k))

    with pytest.raises(AssertionError, match="missed the target prior"):
        check_label_shift_estimator(Broken(), n_holdout=5000, n_target=5000)


def _data(seed=0, k=4, target=(0.55, 0.25, 0.15, 0.05), n=4000):
    p = np.full(k, 1 / k)
    return synthetic_label_shift(p, np.array(target), n, n, seed=seed)


@pytest.mark.parametrize("soft", [False, True])
def test_bbse_agrees_with_direct_solve(soft):
    hp, hy, tp, _ = _data()
    # exactly normalised rows so that sum(w * p) == 1 holds without rescaling
    hp = hp / hp.sum(axis=1, keepdims=True)
    tp = tp / tp.sum(axis=1, keepdims=True)
    est = BBSE(soft=soft).fit(hp, hy)
    res = est.estimate(tp)
    k = hp.shape[1]
    if soft:
        mu = tp.mean(axis=0)
        C = np.zeros((k, k))
        for j in range(k):
            C[:, j] = hp[hy == j].sum(axis=0) / len(hy)
    else:
        mu = np.bincount(tp.argmax(1), minlength=k) / len(tp)
        C = np.zeros((k, k))
        np.add.at(C, (hp.argmax(1), hy), 1.0 / len(hy))
    direct = np.linalg.solve(C, mu)
    assert np.all(direct > 0)  # no clipping in this case
    np.testing.assert_allclose(est.confusion_, C, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.raw_weights, direct, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.weights, direct, rtol=0, atol=1e-10)


@pytest.mark.parametrize("est", [BBSE(), BBSE(soft=True), RLLS(), MLLS(calibration="bcts")],
                         ids=repr)
def test_invariant_to_class_order(est):
    hp, hy, tp, _ = _data(seed=3)
    perm = np.array([2, 0, 3, 1])  # new class i is old class perm[i]
    inv = np.argsort(perm)
    a = clone(est).fit(hp, hy).estimate(tp)
    b = clone(est).fit(hp[:, perm], inv[hy]).estimate(tp[:, perm])
    np.testing.assert_allclose(b.prior, a.prior[perm], atol=1e-6)
    np.testing.assert_allclose(b.weights, a.weights[perm], atol=1e-5)
    np.testing.assert_allclose(b.prior_interval, a.prior_interval[perm], atol=1e-5)


def test_sklearn_contract():
    hp, hy, tp, _ = _data()
    for est in ESTIMATORS:
        with pytest.raises(NotFittedError):
            clone(est).estimate(tp)
        e = clone(est)
        assert e.fit(hp, hy) is e
        assert clone(e).get_params() == e.get_params()


def test_clipping_and_normalisation():
    hp, hy, tp, _ = _data(target=(0.7, 0.3, 0.0, 0.0), n=800, seed=1)
    res = BBSE().fit(hp, hy).estimate(tp)
    assert np.all(res.weights >= 0)
    assert np.isclose(res.prior.sum(), 1.0)
    assert np.isclose((res.weights * np.bincount(hy) / len(hy)).sum(), 1.0)


def test_ill_conditioned_warning_names_condition_number():
    y = np.repeat([0, 1, 2], 300)
    pred = y.copy()
    # classes 1 and 2 predicted almost at random between them
    pred[300:600] = np.where(np.arange(300) < 151, 1, 2)
    pred[600:900] = np.where(np.arange(300) < 149, 1, 2)
    with pytest.warns(IllConditionedWarning, match="condition number"):
        est = BBSE().fit(pred, y)
    assert est.condition_number_ > 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BBSE().fit(y, y)  # perfect classifier: no warning


def test_singular_confusion_uses_lstsq():
    y = np.repeat([0, 1, 2], 10)
    pred = np.where(y == 2, 1, y)  # class 2 always predicted as 1: singular
    with pytest.warns(IllConditionedWarning):
        res = BBSE().fit(pred, y).estimate(np.repeat([0, 1, 1, 1], 5))
    assert np.all(np.isfinite(res.weights))


def test_input_errors():
    hp, hy, tp, _ = _data()
    with pytest.raises(ValueError, match=r"missing from the holdout"):
        BBSE(n_classes=5).fit(hp.argmax(1), hy)
    with pytest.raises(ValueError, match="3 columns but the estimator was fitted on 4"):
        BBSE().fit(hp, hy).estimate(tp[:, :3] / tp[:, :3].sum(1, keepdims=True))
    bad = tp.copy()
    bad[5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        BBSE().fit(hp, hy).estimate(bad)
    with pytest.raises(ValueError, match="sum to one"):
        BBSE().fit(hp, hy).estimate(tp * 1.1)
    with pytest.raises(ValueError, match="needs predicted probabilities"):
        MLLS().fit(hp.argmax(1), hy)
    with pytest.raises(ValueError, match="soft=True"):
        BBSE(soft=True).fit(hp.argmax(1), hy)
    with pytest.raises(ValueError, match="rows but holdout labels"):
        BBSE().fit(hp, hy[:-1])


def test_rlls_reg_zero_is_clipped_bbse_and_large_reg_shrinks_to_one():
    hp, hy, tp, _ = _data(n=1500, seed=4)
    b = BBSE().fit(hp, hy).estimate(tp)
    r0 = RLLS(reg=0.0).fit(hp, hy).estimate(tp)
    np.testing.assert_allclose(r0.weights, b.weights, atol=1e-5)
    big = RLLS(reg=10.0).fit(hp, hy).estimate(tp)
    np.testing.assert_allclose(big.weights, 1.0, atol=1e-4)


def test_rlls_solution_is_optimal():
    hp, hy, tp, _ = _data(n=300, seed=5)
    est = RLLS(reg=0.05).fit(hp.argmax(1), hy)
    res = est.estimate(tp.argmax(1))
    C, k = est.confusion_, 4
    mu = np.bincount(tp.argmax(1), minlength=k) / len(tp)
    b = mu - est.holdout_marginal_

    def f(theta):
        return np.linalg.norm(C @ theta - b) + 0.05 * np.linalg.norm(theta)

    best = f(res.raw_weights - 1)
    rng = np.random.default_rng(0)
    for _ in range(300):
        cand = np.maximum(res.raw_weights - 1 + rng.normal(0, 0.05, k), -1)
        assert f(cand) >= best - 1e-9


@pytest.mark.parametrize("solver", ["em", "newton"])
@pytest.mark.parametrize("target", [(0.9, 0.07, 0.03, 0.0), (0.4, 0.3, 0.2, 0.1)])
def test_mlls_matches_plain_em(solver, target):
    hp, hy, tp, _ = _data(seed=6, target=target)
    est = MLLS(calibration=None, solver=solver, tol=1e-12).fit(hp, hy)
    res = est.estimate(tp)
    p = np.bincount(hy) / len(hy)
    q = p.copy()
    for _ in range(5000):
        post = tp * (q / p)
        post /= post.sum(axis=1, keepdims=True)
        q = post.mean(axis=0)
    np.testing.assert_allclose(res.prior, q, atol=2e-5)


def test_bcts_helps_a_miscalibrated_model():
    errs = {None: [], "bcts": []}
    for seed in range(3):
        hp, hy, tp, _ = _data(seed=seed)
        # underconfident, biased model: posteriors flattened by temperature 3
        bias = np.log([2.0, 1.0, 1.0, 0.5])
        hs, ts = apply_bcts(hp, 3.0, bias), apply_bcts(tp, 3.0, bias)
        for cal in errs:
            res = MLLS(calibration=cal).fit(hs, hy).estimate(ts)
            errs[cal].append(np.abs(res.prior - [0.55, 0.25, 0.15, 0.05]).max())
    assert np.mean(errs["bcts"]) < np.mean(errs[None])
    assert np.mean(errs["bcts"]) < 0.03


def test_delta_interval_coverage():
    hits, trials = [], 60
    target = np.array([0.55, 0.25, 0.15, 0.05])
    for seed in range(trials):
        hp, hy, tp, _ = synthetic_label_shift(np.full(4, 0.25), target, 1000, 1000, seed=seed)
        iv = BBSE().fit(hp, hy).estimate(tp).prior_interval
        hits.append((iv[:, 0] <= target) & (target <= iv[:, 1]))
    coverage = np.mean(hits, axis=0)
    assert np.all(coverage >= 0.85), coverage


def test_bootstrap_interval_is_seeded_and_brackets_estimate():
    hp, hy, tp, _ = _data(n=600)
    a = BBSE(interval="bootstrap", n_bootstrap=40, random_state=1).fit(hp, hy).estimate(tp)
    b = BBSE(interval="bootstrap", n_bootstrap=40, random_state=1).fit(hp, hy).estimate(tp)
    c = BBSE(interval="bootstrap", n_bootstrap=40, random_state=2).fit(hp, hy).estimate(tp)
    np.testing.assert_array_equal(a.prior_interval, b.prior_interval)
    assert not np.array_equal(a.prior_interval, c.prior_interval)
    assert np.all(a.prior_interval[:, 0] <= a.prior + 0.02)
    assert np.all(a.prior_interval[:, 1] >= a.prior - 0.02)


def test_none_interval_is_nan_and_torch_inputs_work():
    import torch

    hp, hy, tp, _ = _data()
    res = BBSE(soft=True, interval="none").fit(torch.from_numpy(hp), torch.from_numpy(hy)).estimate(
        torch.from_numpy(tp).float())
    assert np.all(np.isnan(res.prior_interval))
    ref = BBSE(soft=True, interval="none").fit(hp, hy).estimate(tp)
    np.testing.assert_allclose(res.prior, ref.prior, atol=1e-5)


def test_rlls_auto_penalty_is_the_authors_0_01_times_3_delta_c():
    hp, hy, _, _ = _data(seed=0)
    est = RLLS().fit(hp.argmax(1), hy)
    k, m = est.n_classes_, len(hy)
    t = np.log(2 * k / 0.05)
    assert est.reg_ == pytest.approx(0.01 * 3 * (2 * t / (3 * m) + np.sqrt(2 * t / m)))


def test_simultaneous_intervals_are_bonferroni_wider():
    hp, hy, tp, _ = _data(seed=1)
    per_class = BBSE().fit(hp.argmax(1), hy).estimate(tp.argmax(1))
    joint = BBSE(simultaneous=True).fit(hp.argmax(1), hy).estimate(tp.argmax(1))
    k = len(per_class.weights)
    from scipy.stats import norm

    ratio = norm.ppf(1 - 0.05 / (2 * k)) / norm.ppf(0.975)
    half = lambda e: (e.prior_interval[:, 1] - e.prior_interval[:, 0]) / 2  # noqa: E731
    inner = (per_class.prior_interval[:, 0] > 0) & (joint.prior_interval[:, 0] > 0)
    np.testing.assert_allclose(half(joint)[inner], ratio * half(per_class)[inner], rtol=1e-9)
    assert np.array_equal(per_class.prior, joint.prior)


def test_mlls_default_is_bcts_as_in_the_cli():
    assert MLLS().calibration == "bcts"


def test_a_holdout_that_never_predicts_a_class_is_flagged_not_trusted():
    import warnings

    y = np.repeat([0, 1, 2], 50)
    pred = np.where(y == 2, 1, y)  # class 2 is never predicted
    est = BBSE().fit(pred, y)
    assert not est.identifiable_ and est.never_predicted_.tolist() == [2]
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        res = est.estimate(np.repeat([0, 1], 30))
    assert res.identifiable is False
    assert any("never predicted" in n for n in res.notes)
    mlls = MLLS().fit(np.eye(3)[pred] * 0.98 + 0.02 / 3, y)
    assert not mlls.identifiable_
