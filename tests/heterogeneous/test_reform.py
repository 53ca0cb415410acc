"""ReForm: the coupling, the transported model, the biased refit, and bad input."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from transferkit.heterogeneous import (
    ReForm,
    column_statistics,
    feature_cost,
    grid_coordinates,
    transport_model,
)


def test_coupling_marginals_hold():
    C = feature_cost(grid_coordinates(8, 8), grid_coordinates(7, 7))
    _, T, err = transport_model(np.ones((3, 64)), C, reg=1e-3)
    np.testing.assert_allclose(T.sum(axis=1), np.full(64, 1 / 64), atol=1e-9)
    np.testing.assert_allclose(T.sum(axis=0), np.full(49, 1 / 49), atol=1e-9)
    assert err < 1e-8 and (T >= 0).all()


def test_transport_matches_a_hand_computed_3x3_example():
    # with a huge regularisation the plan is the independent coupling a b^T = 1/9 each,
    # so every new weight is the mean of the old ones: W_hat = 3 * W T = mean(W)
    C = feature_cost([[0.0], [1.0], [2.0]], [[0.0], [1.0], [2.0]])
    w_hat, T, _ = transport_model([[3.0, 0.0, -6.0]], C, reg=1e6)
    np.testing.assert_allclose(T, np.full((3, 3), 1 / 9), atol=1e-6)
    np.testing.assert_allclose(w_hat, [[-1.0, -1.0, -1.0]], atol=1e-5)
    # and with a tiny one the plan is the identity / 3: W_hat = W
    w_hat, T, _ = transport_model([[3.0, 0.0, -6.0]], C, reg=1e-3)
    np.testing.assert_allclose(T, np.eye(3) / 3, atol=1e-9)
    np.testing.assert_allclose(w_hat, [[3.0, 0.0, -6.0]], atol=1e-6)


def test_identical_spaces_carry_the_old_model_over_unchanged():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = X[:, :3].argmax(axis=1)
    old = LogisticRegression(max_iter=1000).fit(X, y)
    meta = rng.normal(size=(6, 2))
    rf = ReForm(old, meta, meta, lam=1e6).fit(X[:9], y[:9])
    np.testing.assert_allclose(rf.transported_coef_, old.coef_, atol=1e-6)
    assert (rf.transported_predict(X) == old.predict(X)).all()
    np.testing.assert_allclose(rf.coef_, old.coef_, atol=1e-3)  # lam large: stays there
    assert rf.predict_proba(X).shape == (300, 3)


def test_reform_beats_target_only_on_a_new_pixel_grid():
    from transferkit.data import load_digits, resize

    d = load_digits()
    half = len(d) // 2
    old, new = d.subset(np.arange(half)), resize(d.subset(np.arange(half, len(d))), 7)
    clf = LogisticRegression(max_iter=2000).fit(old.flat().numpy(), old.labels.numpy())
    Xn, yn = new.flat().numpy(), new.labels.numpy()
    idx = np.concatenate([np.flatnonzero(yn == c)[:3] for c in range(10)])
    rest = np.setdiff1d(np.arange(len(yn)), idx)
    rf = ReForm(clf, grid_coordinates(8, 8), grid_coordinates(7, 7)).fit(Xn[idx], yn[idx])
    scratch = LogisticRegression(max_iter=2000).fit(Xn[idx], yn[idx])
    assert rf.score(Xn[rest], yn[rest]) > scratch.score(Xn[rest], yn[rest]) + 0.03


def test_binary_sklearn_models_and_string_classes():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = np.where(X[:, 0] > 0, "yes", "no")
    old = LogisticRegression().fit(X, y)
    meta = np.arange(3.0)
    rf = ReForm(old, meta, meta, lam=10.0).fit(X[:8], y[:8])
    assert set(rf.predict(X)) <= {"yes", "no"} and rf.score(X, y) > 0.9


def test_column_statistics_as_fallback_meta_information():
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.normal(0, 1, 500), rng.exponential(5, 500), rng.uniform(-9, 9, 500)])
    perm = [2, 0, 1]
    C = feature_cost(column_statistics(X), column_statistics(X[:, perm]))
    assert C.argmin(axis=1).tolist() == [1, 2, 0]  # each old column finds itself


@pytest.mark.parametrize(
    "kwargs, fit_x, error",
    [({"meta_new": [[0.0, 1.0]] * 3}, None, "values each"),
     ({"meta_old": [[np.nan], [1.0]]}, None, "NaN"),
     ({"metric": [[1.0, 0.0], [0.0, 1.0]]}, None, "metric"),
     ({}, np.zeros((4, 5)), "one column per new feature"),
     ({"old_model": None}, None, "needs old_model"),
     ({"reg": 1e-4, "max_iter": 1, "marginal_tol": 0.0, "meta_new": [[0.3], [1.9], [7.0]]},
      None, "did not converge: marginal error")],
)
def test_bad_input(kwargs, fit_x, error):
    meta = np.arange(3.0)[:, None]
    base = {"old_model": (np.ones((2, 3)), np.zeros(2)), "meta_old": meta, "meta_new": meta}
    rf = ReForm(**{**base, **kwargs})
    X = fit_x if fit_x is not None else np.eye(3)[[0, 1, 2, 0]]
    with pytest.raises(ValueError, match=error):
        rf.fit(X, np.array([0, 1, 0, 1]))


def test_tuple_models_take_class_names_in_any_order():
    meta = np.arange(2.0)
    W = np.array([[5.0, 0.0], [0.0, 5.0]])  # class "z" likes feature 0, "a" feature 1
    rf = ReForm((W, np.zeros(2)), meta, meta, classes=["z", "a"], lam=100.0)
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    rf.fit(X, np.array(["z", "a"]))
    assert rf.predict(X).tolist() == ["z", "a"]


def _nuisance_task(seed):
    """Features along a line; their meta-information is (position, noise): the noise
    dimension misleads the identity metric, a learned M can ignore it."""
    rng = np.random.default_rng(seed)
    d, n = 30, 500
    pos = np.arange(d) / d
    y = rng.integers(0, 3, n)
    X = np.exp(-((pos[None, :] - np.array([0.2, 0.5, 0.8])[y][:, None]) ** 2) / 0.005)
    X = X + 0.3 * rng.normal(size=X.shape)
    perm = rng.permutation(d)
    meta_old = np.column_stack([pos, rng.normal(scale=0.3, size=d)])
    meta_new = np.column_stack([pos[perm], rng.normal(scale=0.3, size=d)])
    old = LogisticRegression().fit(X[:250], y[:250])
    return old, meta_old, meta_new, X[250:, perm], y[250:]


def test_a_learned_metric_ignores_misleading_meta_information():
    gains = []
    for seed in range(2):
        old, mo, mn, X, y = _nuisance_task(seed)
        idx = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(3)])
        test = np.setdiff1d(np.arange(len(y)), idx)
        fixed = ReForm(old, mo, mn).fit(X[idx], y[idx])
        learned = ReForm(old, mo, mn, metric="learn", metric_steps=30).fit(X[idx], y[idx])
        acc = [float((m.transported_predict(X[test]) == y[test]).mean()) for m in (fixed, learned)]
        gains.append(acc[1] - acc[0])
        np.testing.assert_allclose(np.trace(learned.metric_), 2.0)
        np.testing.assert_allclose(fixed.metric_, np.eye(2))
    # where the identity metric was misled the learned one recovers; where it was not
    # (about 98% already), learning M costs nothing
    assert np.mean(gains) > 0.03 and min(gains) > -0.01, gains


def test_metric_must_be_an_array_or_learn():
    meta = np.arange(3.0)[:, None]
    rf = ReForm((np.ones((2, 3)), np.zeros(2)), meta, meta, metric="learned")
    with pytest.raises(ValueError, match="'learn' or None"):
        rf.fit(np.eye(3), np.array([0, 1, 0]))


def test_a_given_coupling_is_reused_and_checked():
    meta = np.arange(4.0)[:, None]
    model = (np.array([[1.0, 0.0, 0.0, -1.0], [0.0, 1.0, -1.0, 0.0]]), np.zeros(2))
    X, y = np.eye(4), np.array([0, 1, 1, 0])
    first = ReForm(model, meta, meta[::-1]).fit(X, y)
    again = ReForm(model, meta, meta[::-1], coupling=first.coupling_).fit(X, y)
    np.testing.assert_allclose(again.transported_coef_, first.transported_coef_)
    np.testing.assert_allclose(again.coef_, first.coef_)
    with pytest.raises(ValueError, match="marginals are off"):
        ReForm(model, meta, meta, coupling=np.eye(4) / 2).fit(X, y)
    with pytest.raises(ValueError, match=r"non-negative \(4, 4\) plan"):
        ReForm(model, meta, meta, coupling=np.eye(3) / 3).fit(X, y)


def test_a_slowly_converging_plan_falls_back_to_epsilon_scaling():
    # a grid shifted by a whole pixel: near-tied costs, where log-domain Sinkhorn crawls
    g = grid_coordinates(8, 8)
    C = feature_cost(g, g - np.array([0.0, 1.0 / 8]))
    _, T, err = transport_model(np.ones((1, 64)), C, reg=3.9e-4, max_iter=500)
    assert err < 1e-6
    np.testing.assert_allclose(T.sum(axis=0), np.full(64, 1 / 64), atol=1e-6)


def test_auto_reg_stays_positive_when_spaces_share_features():
    g = grid_coordinates(8, 8)
    rf = ReForm((np.ones((2, 64)), np.zeros(2)), g, g[:48]).fit(np.eye(48)[:4], [0, 1, 0, 1])
    assert rf.reg_ == pytest.approx(0.25 * 0.1 / 64)  # a tenth of the squared pixel spacing


def _refit_accuracy(model, lam, meta, X, y, idx, test):
    return ReForm(model, meta, meta, lam=lam).fit(X[idx], y[idx]).score(X[test], y[test])


def test_cross_validated_lam_rescues_a_poor_prior_and_keeps_a_good_one():
    for seed in range(3):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(600, 20))
        y = (X[:, 0] + X[:, 1] + 0.5 * rng.normal(size=600) > 0).astype(int)
        good = LogisticRegression().fit(X[300:], y[300:])
        bad = (-good.coef_, -good.intercept_)  # the same model, pointing the wrong way
        meta = np.arange(20.0)
        idx = np.r_[np.flatnonzero(y[:300] == 0)[:15], np.flatnonzero(y[:300] == 1)[:15]]
        test = np.setdiff1d(np.arange(300), idx)
        data = (meta, X, y, idx, test)
        # the wrong prior loses its pull; the right one keeps working
        assert _refit_accuracy(bad, "cv", *data) > _refit_accuracy(bad, 10.0, *data) + 0.3
        assert _refit_accuracy(good, "cv", *data) > _refit_accuracy(good, 10.0, *data) - 0.05
    rf = ReForm(good, meta, meta, lam="cv").fit(X[idx], y[idx])
    assert rf.lam_ in rf.lam_grid
    with pytest.raises(ValueError, match="at least 2 labelled examples of every class"):
        ReForm(good, meta, meta, lam="cv").fit(X[idx][14:17], y[idx][14:17])
    with pytest.raises(ValueError, match="or 'cv'"):
        ReForm(good, meta, meta, lam="auto").fit(X[idx], y[idx])


def _sensor_spaces(rng, n):
    """Six sensor channels x three positions; the new space drops channel 2 and adds a
    channel 6 the old model never saw. Meta-information: (channel, position)."""
    old_ch, new_ch = [0, 1, 2, 3, 4, 5], [0, 1, 3, 4, 5, 6]
    signal = rng.normal(size=(n, 7, 3))
    y = (signal[:, 3].sum(axis=1) - signal[:, 5].sum(axis=1) > 0).astype(int)

    def space(channels):
        meta = np.array([[c, p] for c in channels for p in range(3)], dtype=float)
        return signal[:, channels].reshape(n, -1), meta

    return space(old_ch), space(new_ch), y


def test_partial_transport_keeps_the_shared_sensor_channels_where_balanced_ot_shifts_them():
    rng = np.random.default_rng(0)
    (X_old, meta_old), (X_new, meta_new), y = _sensor_spaces(rng, 600)
    old = LogisticRegression(max_iter=1000).fit(X_old, y)
    assert old.score(X_old, y) > 0.95
    # balanced OT must move all the mass: channels 3 and 5, which decide the label, are
    # carried to 4 and 6, and the transported model is near chance
    balanced = ReForm(old, meta_old, meta_new, reg=0.01, lam=1.0).fit(X_new[:20], y[:20])
    assert 0.35 < (balanced.transported_predict(X_new) == y).mean() < 0.65
    # partial transport of the 5/6 the spaces share maps each channel onto itself and puts
    # no mass on the added channel
    partial = ReForm(old, meta_old, meta_new, lam=1.0, transport="partial",
                     mass=5 / 6).fit(X_new[:20], y[:20])
    assert (partial.transported_predict(X_new) == y).mean() > 0.95
    np.testing.assert_allclose(partial.transported_coef_[:, -3:], 0.0, atol=1e-12)
    old_weights = old.coef_[0]  # binary: ReForm's class-1 row is scikit-learn's one row
    for j, ch in enumerate([0, 1, 3, 4, 5]):  # the old channel of new channels 0..4
        np.testing.assert_allclose(partial.transported_coef_[1, 3 * j:3 * j + 3],
                                   old_weights[3 * ch:3 * ch + 3], atol=1e-9)


def test_partial_transport_checks_its_mass_and_its_combinations():
    rng = np.random.default_rng(1)
    (X_old, meta_old), (X_new, meta_new), y = _sensor_spaces(rng, 60)
    old = LogisticRegression(max_iter=1000).fit(X_old, y)
    with pytest.raises(ValueError, match="mass must be in"):
        ReForm(old, meta_old, meta_new, transport="partial", mass=0.0).fit(X_new, y)
    with pytest.raises(ValueError, match="transport must be one of"):
        ReForm(old, meta_old, meta_new, transport="unbalanced").fit(X_new, y)
    with pytest.raises(ValueError, match="cannot be combined"):
        ReForm(old, meta_old, meta_new, transport="partial", mass=0.5,
               metric="learn").fit(X_new, y)


def test_the_pull_towards_the_prior_fades_as_labels_accumulate():
    # the biased refit sums the log-loss: the same data repeated tenfold moves the fit
    # further from a wrong prior than the data once
    rng = np.random.default_rng(2)
    X = rng.normal(size=(20, 3))
    y = (X[:, 0] > 0).astype(int)
    prior = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    from transferkit.heterogeneous import fit_biased

    once, _ = fit_biased(X, y, prior, np.zeros(2), lam=1.0)
    tenfold, _ = fit_biased(np.tile(X, (10, 1)), np.tile(y, 10), prior, np.zeros(2), lam=1.0)
    assert np.linalg.norm(tenfold - prior) > 1.5 * np.linalg.norm(once - prior)
