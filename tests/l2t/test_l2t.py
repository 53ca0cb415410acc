"""L2T: the features against direct computation, the reflection fit, the descent, the
experience store's resume, and the base algorithms."""

import numpy as np
import pytest
import torch

from transferkit.l2t import (
    L2T,
    ExperienceStore,
    PairStatistics,
    ReflectionFunction,
    TransferPair,
    create_base_algorithm,
    discriminability,
    fit_reflection,
    generate_experiences,
    linear_mmd2,
    list_base_algorithms,
    mmd2_unbiased,
    optimise_projection,
    reflection_features,
    scatter_matrices,
    split_features,
)


def _k(a, b, s2):
    return np.exp(-np.sum((a - b) ** 2) / (2 * s2))


def test_unbiased_mmd_matches_the_double_sum():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5
    widths = [0.5, 2.0]
    got = mmd2_unbiased(torch.tensor(x), torch.tensor(y), torch.tensor(widths)).numpy()
    for s2, g in zip(widths, got, strict=True):
        n, m = len(x), len(y)
        sxx = sum(_k(x[i], x[j], s2) for i in range(n) for j in range(n) if i != j)
        syy = sum(_k(y[i], y[j], s2) for i in range(m) for j in range(m) if i != j)
        sxy = sum(_k(a, b, s2) for a in x for b in y)
        assert g == pytest.approx(sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2 * sxy / (n * m),
                                  rel=1e-10)


def test_linear_mmd_and_its_covariance_match_the_h_statistics():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(9, 2)), rng.normal(size=(8, 2))
    widths = [1.0, 3.0]
    mean, cov = linear_mmd2(torch.tensor(x), torch.tensor(y), torch.tensor(widths))
    h = np.array([[_k(x[2 * i], x[2 * i + 1], s2) + _k(y[2 * i], y[2 * i + 1], s2)
                   - _k(x[2 * i], y[2 * i + 1], s2) - _k(x[2 * i + 1], y[2 * i], s2)
                   for i in range(4)] for s2 in widths])
    np.testing.assert_allclose(mean.numpy(), h.mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(cov.numpy(), np.cov(h) / 4, rtol=1e-10)


def test_mmd_is_near_zero_for_one_distribution_and_grows_with_shift():
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.normal(size=(300, 2)))
    same = mmd2_unbiased(x[:150], x[150:], torch.tensor([1.0]))
    moved = mmd2_unbiased(x[:150], x[150:] + 1.0, torch.tensor([1.0]))
    assert abs(float(same[0])) < 0.02 < float(moved[0])


def test_scatter_matrices_split_the_total_scatter_and_tau_sees_clusters():
    rng = np.random.default_rng(3)
    centres = np.repeat(np.array([[0.0, 0.0], [6.0, 0.0]]), 40, axis=0)
    X = np.c_[centres + 0.3 * rng.normal(size=(80, 2)), rng.normal(size=80)]  # 3rd: noise
    s_l, s_n = scatter_matrices(X, 5)
    total = np.cov(X, rowvar=False, bias=True)
    np.testing.assert_allclose(s_l + s_n, total, atol=1e-12)
    tau = [float(discriminability(torch.eye(3)[:, [j]].double(), torch.tensor(s_l),
                                  torch.tensor(s_n))) for j in range(3)]
    assert tau[0] > 5 * tau[2]  # the clustered axis is far more discriminative


def _pair(rng, shift, n=40, d=6):
    ys = np.repeat([0, 1], n // 2)
    yt = np.repeat([0, 1], n // 2)
    Xs = rng.normal(size=(n, d)) + 2.0 * ys[:, None]
    Xt = rng.normal(size=(n, d)) + 2.0 * yt[:, None] + shift
    lab = [0, 1, n - 2, n - 1]
    rest = np.setdiff1d(np.arange(n), lab)
    return TransferPair(Xs, ys, Xt[rest], Xt[lab], yt[lab], Xt[rest], yt[rest])


def test_features_are_invariant_to_the_scale_of_W():
    rng = np.random.default_rng(4)
    p = _pair(rng, 0.5)
    stats = p.statistics()
    W = rng.normal(size=(6, 3))
    np.testing.assert_allclose(reflection_features(W, stats).numpy(),
                               reflection_features(7.5 * W, stats).numpy(), rtol=1e-9)


def _features(rng, n, K):
    """Random feature vectors [d, Q (positive semi-definite), 1/tau]."""
    d = rng.uniform(0, 1, size=(n, K))
    A = rng.normal(scale=0.2, size=(n, K, K))
    Q = A @ A.transpose(0, 2, 1)
    return np.c_[d, Q.reshape(n, -1), rng.uniform(0.2, 1, size=n)]


def test_reflection_fit_recovers_the_papers_form():
    # 1/f = beta^T d + lambda beta^T Q beta + mu / tau + b, with Q a matrix per experience
    rng = np.random.default_rng(5)
    n, K = 400, 3
    F = _features(rng, n, K)
    beta, lam, mu, b = np.array([0.3, 0.0, 0.5]), 2.0, -0.4, 1.0
    truth = ReflectionFunction(beta, lam, mu, b)
    inv = truth.inverse(F)
    assert (inv > 0).all()
    fit = fit_reflection(F, 1.0 / inv, gamma1=0.0)
    np.testing.assert_allclose(fit.beta, beta, atol=1e-6)
    assert fit.lam == pytest.approx(lam, abs=1e-5)
    assert fit.mu == pytest.approx(mu, abs=1e-6) and fit.b == pytest.approx(b, abs=1e-6)
    np.testing.assert_allclose(fit.inverse(F), inv, atol=1e-6)
    # the variance term is the quadratic form, not a sum of the diagonal
    d, Q, inv_tau = split_features(F)
    quad = np.einsum("k,nkl,l->n", beta, Q, beta)
    np.testing.assert_allclose(inv, d @ beta + lam * quad + mu * inv_tau + b)


def test_reflection_fit_keeps_beta_and_lambda_non_negative():
    rng = np.random.default_rng(6)
    F = _features(rng, 100, 2)
    inv = 2.0 - F[:, 0] - F[:, 1] + 0.1 * rng.normal(size=100)  # wants negative weights
    fit = fit_reflection(F, 1.0 / np.clip(inv, 0.1, None), gamma1="cv")
    assert (fit.beta >= 0).all() and fit.lam >= 0
    assert fit.gamma1 > 0


def test_reflection_fit_refuses_too_few_experiences_and_wrong_widths():
    with pytest.raises(ValueError, match="experiences cannot support"):
        fit_reflection(np.ones((3, 7)), np.ones(3))
    with pytest.raises(ValueError, match="> 0"):
        fit_reflection(np.ones((20, 7)), -np.ones(20))
    with pytest.raises(ValueError, match="K \\+ K\\^2 \\+ 1"):
        fit_reflection(np.ones((20, 5)), np.ones(20))


def test_the_descent_stops_where_it_would_leave_the_fitted_region():
    rng = np.random.default_rng(12)
    store = _store(rng)
    model = L2T(n_components=3).fit(store)
    F, _, _ = store.arrays()
    f = model.reflection_
    assert f.outside(F) == pytest.approx(0.0)  # the experiences span the region
    p = _pair(rng, 1.0)
    stats = model.statistics(p.Xs, p.target)
    W0 = create_base_algorithm("pca")(p.Xs, p.ys, p.target, 3)
    start = f.outside(reflection_features(W0, stats).detach().numpy())
    # a region that is the start alone: the first step leaves it, so the descent stops
    z0 = f.summaries(reflection_features(W0, stats).detach().numpy())[0]
    tight = ReflectionFunction(f.beta, f.lam, f.mu, f.b, low=z0, high=z0)
    W, history = optimise_projection(stats, tight, W0, steps=40, lr=0.05)
    assert len(history) == 1
    np.testing.assert_allclose(W, W0 * np.sqrt(3) / np.linalg.norm(W0))
    # with the fitted region, the iterates kept never lie further outside than the start
    W, history = optimise_projection(stats, f, W0, steps=40, lr=0.05)
    assert f.outside(reflection_features(W, stats).detach().numpy()) <= start + 1e-9


def _store(rng, tmp_path=None, n=8):
    return generate_experiences(((f"p{i}", _pair(rng, i / 4)) for i in range(n)),
                                ExperienceStore(tmp_path), n_components=3)


def test_descent_decreases_the_objective():
    rng = np.random.default_rng(7)
    store = _store(rng)
    model = L2T(n_components=3).fit(store)
    p = _pair(rng, 1.0)
    stats = model.statistics(p.Xs, p.target)
    W0 = create_base_algorithm("pca")(p.Xs, p.ys, p.target, 3)
    W, history = optimise_projection(stats, model.reflection_, W0, steps=40, lr=0.05)
    assert min(history) < history[0]
    best = model.reflection_.inverse(reflection_features(W, stats).detach().numpy()) \
        + 1e-3 * float((W * W).sum())
    assert best == pytest.approx(min(history), rel=1e-9)


def test_transfer_starts_from_the_best_rated_base_and_predicts_target_labels():
    rng = np.random.default_rng(8)
    model = L2T(n_components=3, steps=10).fit(_store(rng))
    p = _pair(rng, 0.5)
    out = model.transfer(p.Xs, p.ys, p.Xt, p.Xt_labelled, p.yt_labelled)
    assert out.start == min(out.scores, key=out.scores.get)
    assert set(np.unique(out.predict(p.X_test))) <= {0, 1}
    assert out.history[0] >= min(out.history)


def test_store_resumes_a_killed_generation_and_checks_its_settings(tmp_path):
    rng = np.random.default_rng(9)
    pairs = [_pair(rng, i / 4) for i in range(5)]
    built = []

    def named(kill_at=None):
        for i, p in enumerate(pairs):
            def make(i=i, p=p):
                if i == kill_at:
                    raise KeyboardInterrupt
                built.append(i)
                return p
            yield f"p{i}", make

    with pytest.raises(KeyboardInterrupt):
        generate_experiences(named(kill_at=3), ExperienceStore(tmp_path), n_components=3)
    assert len(ExperienceStore(tmp_path)) == 3 * 4
    built.clear()
    store = generate_experiences(named(), ExperienceStore(tmp_path), n_components=3)
    assert built == [3, 4] and len(store) == 5 * 4
    fresh = generate_experiences(((f"p{i}", p) for i, p in enumerate(pairs)),
                                 ExperienceStore(), n_components=3)
    F1, r1, _ = store.arrays()
    F2, r2, _ = fresh.arrays()
    np.testing.assert_allclose(F1, F2)
    np.testing.assert_allclose(r1, r2)
    with pytest.raises(ValueError, match="feature settings"):
        ExperienceStore(tmp_path, exponents=(0,))


def test_a_dimension_suffix_gives_that_many_components():
    rng = np.random.default_rng(10)
    store = generate_experiences([("p", _pair(rng, 0.0))], ExperienceStore(),
                                 algorithms=("pca@2", "tca"), n_components=4)
    shapes = {e.algorithm: e.W.shape for e in store}
    assert shapes == {"pca@2": (6, 2), "tca": (6, 4)}
    with pytest.raises(KeyError, match="unknown base transfer algorithm"):
        generate_experiences([("p", _pair(rng, 0.0))], ExperienceStore(), algorithms=("gfk",))


@pytest.mark.parametrize("name", ["identity", "pca", "tca", "tsl"])
def test_base_algorithms_give_finite_projections(name):
    rng = np.random.default_rng(11)
    p = _pair(rng, 1.0)
    W = create_base_algorithm(name)(p.Xs, p.ys, p.target, 3)
    assert W.shape == ((6, 6) if name == "identity" else (6, 3)) and np.isfinite(W).all()
    assert name in list_base_algorithms()


def test_tca_shrinks_the_mean_gap_that_pca_keeps():
    rng = np.random.default_rng(12)
    Xs = rng.normal(size=(200, 5)) * [3, 1, 1, 1, 1]
    Xt = rng.normal(size=(200, 5)) * [3, 1, 1, 1, 1] + [0, 0, 4, 0, 0]  # shift on axis 2
    gap = {}
    for name in ("pca", "tca"):
        W = create_base_algorithm(name)(Xs, np.zeros(200), Xt, 2)
        W = W / np.linalg.norm(W, axis=0)
        gap[name] = np.linalg.norm((Xs.mean(0) - Xt.mean(0)) @ W)
    assert gap["tca"] < 0.7 * gap["pca"]  # skada's TCA at its default mu = 0.1: 2.4 vs 4.0


def test_bad_inputs_name_what_was_expected():
    rng = np.random.default_rng(13)
    with pytest.raises(ValueError, match="columns"):
        TransferPair(rng.normal(size=(5, 3)), np.zeros(5), rng.normal(size=(5, 4)),
                     rng.normal(size=(2, 4)), np.zeros(2))
    with pytest.raises(ValueError, match="n_components"):
        create_base_algorithm("pca")(rng.normal(size=(5, 3)), np.zeros(5),
                                     rng.normal(size=(5, 3)), 7)
    with pytest.raises(ValueError, match="NaN"):
        PairStatistics.from_arrays(np.full((5, 2), np.nan), np.zeros((5, 2)))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        L2T().transfer(*[np.zeros((3, 2))] * 5)
