"""The compiled label-shift kernels give the numpy code's numbers and errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from transferkit.labelshift import BBSE, MLLS, RLLS, _kernels
from transferkit.labelshift._validation import SUM_TOL, check_proba_stats
from transferkit.testing.labelshift import synthetic_label_shift

pytest.importorskip("numba")


@pytest.fixture
def kernels_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels for every size (normally only from ``USE_ELEMENTS`` entries, once loaded)."""
    monkeypatch.setattr(_kernels, "USE_ELEMENTS", 0)
    monkeypatch.setattr(_kernels, "LOAD_ELEMENTS", 0)
    if _kernels._compiled() is None:
        pytest.skip("kernels disabled by TRANSFERKIT_NUMBA=0")


def numpy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFERKIT_NUMBA", "0")


def _data(k: int, n: int = 3000, seed: int = 0) -> tuple[np.ndarray, ...]:
    q = np.random.default_rng(seed).dirichlet(np.ones(k))
    return synthetic_label_shift(np.full(k, 1.0 / k), q, 2000, n, seed=seed, separation=2.0)


def test_hard_scan_counts_match_argmax_with_ties(kernels_on: None) -> None:
    rng = np.random.default_rng(1)
    P = rng.dirichlet(np.ones(7), size=500)
    P[:50] = 1.0 / 7  # all tied: numpy's argmax takes the first
    P[50:60, 2] = P[50:60, 5] = 0.5
    P[50:60, [0, 1, 3, 4, 6]] = 0.0
    for arr in (P, P.astype(np.float32)):
        out = _kernels.hard_scan(arr, SUM_TOL)
        assert out is not None and out[1] == -1
        np.testing.assert_array_equal(out[0], np.bincount(arr.argmax(axis=1), minlength=7))


def test_column_scan_matches_numpy(kernels_on: None, monkeypatch: pytest.MonkeyPatch) -> None:
    P = np.random.default_rng(5).dirichlet(np.ones(9), size=700)
    for arr in (P, P.astype(np.float32)):
        out = _kernels.column_scan(arr, SUM_TOL)
        assert out is not None and out[1] == -1
        np.testing.assert_allclose(out[0], arr.astype(np.float64).sum(axis=0), rtol=1e-6)
    hp, hy, tp, _ = _data(5)
    fast = BBSE(soft=True, interval="none").fit(hp, hy).estimate(tp)
    numpy_only(monkeypatch)
    slow = BBSE(soft=True, interval="none").fit(hp, hy).estimate(tp)
    np.testing.assert_allclose(fast.prior, slow.prior, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "est_cls",
    [
        lambda: BBSE(),
        lambda: RLLS(),
        lambda: BBSE(interval="bootstrap", n_bootstrap=20, random_state=0),
    ],
)
def test_hard_estimates_identical(
    est_cls: object, kernels_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    hp, hy, tp, _ = _data(6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = est_cls().fit(hp, hy).estimate(tp)  # type: ignore[operator]
        numpy_only(monkeypatch)
        slow = est_cls().fit(hp, hy).estimate(tp)  # type: ignore[operator]
    for a, b in zip(fast[:5], slow[:5], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_em_kernel_matches_numpy(
    dtype: type, kernels_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    hp, hy, tp, _ = _data(12, n=4000, seed=2)
    hp, tp = hp.astype(dtype), tp.astype(dtype)
    r = np.random.default_rng(0).uniform(0.2, 3.0, 12)
    fast = _kernels.em_pass(tp, r)
    assert fast is not None
    est = MLLS(calibration=None)
    a = est.fit(hp, hy).estimate(tp)
    numpy_only(monkeypatch)
    assert _kernels.em_pass(tp, r) is None
    b = MLLS(calibration=None).fit(hp, hy).estimate(tp)
    tol = 1e-10 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(a.prior, b.prior, rtol=0, atol=tol)
    np.testing.assert_allclose(a.prior_interval, b.prior_interval, rtol=0, atol=10 * tol)
    s = tp.astype(np.float64) @ r
    np.testing.assert_allclose(
        fast[0],
        (tp / s[:, None].astype(dtype)).sum(axis=0),
        rtol=1e-5 if dtype == np.float32 else 1e-12,
    )
    np.testing.assert_allclose(
        fast[1], np.log(s).sum(), rtol=1e-5 if dtype == np.float32 else 1e-12
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda P: P.__setitem__((40, 1), np.nan), "NaN or infinite values .first in row 40"),
        (lambda P: P.__setitem__((41, 0), np.inf), "NaN or infinite values .first in row 41"),
        (lambda P: P.__setitem__(42, P[42] * 2), "row 42 sums to 2"),
        (
            lambda P: P.__setitem__((43, slice(0, 2)), [-0.1, P[43, 0] + P[43, 1] + 0.1]),
            "non-negative; row 43",
        ),
    ],
)
def test_kernel_errors_name_the_row_as_numpy_does(
    bad: object, message: str, kernels_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    P = np.random.default_rng(3).dirichlet(np.ones(4), size=100)
    bad(P)  # type: ignore[operator]
    for hard in (True, False):  # the argmax-counting and the column-summing kernels
        with pytest.raises(ValueError, match=message):
            check_proba_stats(P, 4, hard=hard)
    numpy_only(monkeypatch)
    for hard in (True, False):
        with pytest.raises(ValueError, match=message):
            check_proba_stats(P, 4, hard=hard)


def test_non_contiguous_input_uses_numpy(kernels_on: None) -> None:
    P = np.asfortranarray(np.random.default_rng(4).dirichlet(np.ones(5), size=200))
    assert _kernels.hard_scan(P, SUM_TOL) is None
    _, stats = check_proba_stats(P, 5, hard=True)
    assert stats.counts is not None
    np.testing.assert_array_equal(stats.counts, np.bincount(P.argmax(1), minlength=5))


def test_small_inputs_skip_the_kernels() -> None:
    P = np.full((10, 2), 0.5)
    assert _kernels.hard_scan(P, SUM_TOL) is None
    assert _kernels.column_scan(P, SUM_TOL) is None
    assert _kernels.em_pass(P, np.ones(2)) is None


def test_numba_loads_only_for_large_inputs_unless_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Default: a mid-sized input runs numpy until numba is loaded, then the kernels;
    ``TRANSFERKIT_NUMBA=1`` loads it for any input from ``USE_ELEMENTS`` entries."""
    P = np.full((1000, 4), 0.25)
    monkeypatch.setattr(_kernels, "_compiled", _fresh_cache(_kernels._compiled))
    assert _kernels.column_scan(P, SUM_TOL) is None  # not loaded, below LOAD_ELEMENTS
    monkeypatch.setenv("TRANSFERKIT_NUMBA", "1")
    out = _kernels.column_scan(P, SUM_TOL)
    assert out is not None and out[1] == -1
    monkeypatch.delenv("TRANSFERKIT_NUMBA")
    assert _kernels.column_scan(P, SUM_TOL) is not None  # loaded now: used from here on


def _fresh_cache(fn: object) -> object:
    import functools

    return functools.cache(fn.__wrapped__)  # type: ignore[attr-defined]


def test_em_kernel_log_sum_survives_extreme_dot_products(kernels_on: None) -> None:
    """The running product is logged before it under- or overflows; tiny and huge dot
    products are logged alone."""
    rng = np.random.default_rng(9)
    P = rng.dirichlet(np.ones(3), size=5000)
    P[::7] = [1.0, 0.0, 0.0]
    for r in ([1e-30, 1.0, 1.0], [1e3, 1e-3, 1e-3], [1e-300, 1.0, 1.0], [1e60, 1.0, 1.0]):
        rr = np.asarray(r)
        out = _kernels.em_pass(P, rr)
        assert out is not None
        s = np.maximum(P @ rr, np.finfo(float).tiny)
        np.testing.assert_allclose(out[1], np.log(s).sum(), rtol=1e-12)
        np.testing.assert_allclose(out[0], (P / s[:, None]).sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("k", [3, 100])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocked_bcts_is_the_whole_array_formula(k: int, dtype: type) -> None:
    """apply_bcts works block by block; every entry is what the formula gives at once."""
    from transferkit.labelshift.calibration import apply_bcts

    rng = np.random.default_rng(6)
    P = rng.dirichlet(np.full(k, 0.3), size=70_000 // k).astype(dtype)
    P[0, 0], P[0, 1:] = 1.0, 0.0  # zeros: floored at 1e-12 before the log
    bias = rng.normal(size=k)
    z = np.log(np.maximum(P.astype(np.float64), 1e-12)) * (1 / 1.7) + bias
    z -= z.max(axis=1, keepdims=True)
    want = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(apply_bcts(P, 1.7, bias), want)
