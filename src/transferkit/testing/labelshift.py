"""Shipped property check for label-shift estimators: they recover a known prior.

The synthetic black box is exact: inputs are 1-d Gaussians ``x | y ~ N(y * sep, 1)``, and
the "model" outputs the true source posteriors ``p_s(y | x)`` (so it is calibrated for the
source prior, and BBSE, RLLS and MLLS are all consistent).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

__all__ = ["check_label_shift_estimator", "synthetic_label_shift"]


def synthetic_label_shift(
    source_prior: NDArray[np.float64],
    target_prior: NDArray[np.float64],
    n_holdout: int,
    n_target: int,
    seed: int = 0,
    separation: float = 2.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated source posteriors on a labelled holdout and on a label-shifted target.

    Returns
    -------
    holdout_proba : (n_holdout, k), holdout_labels : (n_holdout,),
    target_proba : (n_target, k), target_labels : (n_target,)

    Examples
    --------
    >>> hp, hy, tp, ty = synthetic_label_shift(np.full(3, 1 / 3), np.array([.8, .1, .1]), 50, 40)
    >>> hp.shape, tp.shape, bool(np.allclose(tp.sum(axis=1), 1))
    ((50, 3), (40, 3), True)
    """
    rng = np.random.default_rng(seed)
    p = np.asarray(source_prior, dtype=np.float64)
    q = np.asarray(target_prior, dtype=np.float64)
    k = len(p)
    means = np.arange(k) * separation

    def draw(prior: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.choice(k, size=n, p=prior)
        x = rng.normal(means[y], 1.0)
        logit = -0.5 * (x[:, None] - means[None, :]) ** 2 + np.log(np.maximum(p, 1e-300))
        logit -= logit.max(axis=1, keepdims=True)
        post = np.exp(logit)
        post /= post.sum(axis=1, keepdims=True)
        return post, y.astype(np.int64)

    hp, hy = draw(p, n_holdout)
    tp, ty = draw(q, n_target)
    return hp, hy, tp, ty


def check_label_shift_estimator(
    estimator: Any,
    *,
    n_classes: int = 4,
    n_holdout: int = 20_000,
    n_target: int = 20_000,
    tol: float = 0.03,
    seed: int = 0,
    hard: bool = False,
) -> None:
    """Assert that ``estimator`` behaves as a label-shift estimator and recovers a known prior.

    Checks the scikit-learn contract (``estimate`` before ``fit`` raises
    ``NotFittedError``, ``fit`` returns self, fitted attributes end in ``_``, ``clone``
    works), then on synthetic shift (source uniform-ish, target a fixed skewed prior) that
    the returned prior sums to one, weights are non-negative with ``sum(w * p) == 1``, the
    intervals (when given) are ordered, and ``max |q_hat - q| <= tol``.

    Parameters
    ----------
    estimator : BBSE, RLLS, MLLS or a compatible estimator (unfitted)
    n_classes, n_holdout, n_target : int
    tol : float
        Largest allowed absolute error of a target class probability.
    seed : int
    hard : bool
        Feed hard labels (argmax) instead of probabilities.

    Raises
    ------
    AssertionError
        Naming the property that failed.

    Examples
    --------
    >>> from transferkit.labelshift import BBSE
    >>> check_label_shift_estimator(BBSE(), n_holdout=5000, n_target=5000, tol=0.05)
    """
    est = clone(estimator)
    k = n_classes
    source = np.linspace(1.0, 2.0, k)
    source /= source.sum()
    target = np.geomspace(1.0, 1 / 20, k)[::-1]
    target /= target.sum()
    hp, hy, tp, _ = synthetic_label_shift(source, target, n_holdout, n_target, seed)
    hx, tx = (hp.argmax(axis=1), tp.argmax(axis=1)) if hard else (hp, tp)

    try:
        est.estimate(tx)
    except NotFittedError:
        pass
    else:
        raise AssertionError(
            f"{type(est).__name__}.estimate before fit did not raise NotFittedError"
        )
    before = set(vars(est))
    if any(a.endswith("_") and not a.startswith("__") for a in before):
        raise AssertionError(f"{type(est).__name__}.__init__ sets fitted attributes: {before}")
    fitted = est.fit(hx, hy)
    if fitted is not est:
        raise AssertionError(f"{type(est).__name__}.fit did not return self")
    new = set(vars(est)) - before
    bad = [a for a in new if not a.endswith("_") and not a.startswith("_")]
    if bad:
        raise AssertionError(f"fit set public attributes not ending in '_': {bad}")

    res = est.estimate(tx)
    p_hat = np.asarray(est.source_prior_)
    if res.prior.shape != (k,) or res.weights.shape != (k,):
        raise AssertionError(f"prior/weights have shapes {res.prior.shape}, {res.weights.shape}")
    if not np.isclose(res.prior.sum(), 1.0, atol=1e-8):
        raise AssertionError(f"estimated prior sums to {res.prior.sum()}")
    if np.any(res.weights < 0):
        raise AssertionError(f"negative weights {res.weights}")
    if not np.isclose((res.weights * p_hat).sum(), 1.0, atol=1e-8):
        raise AssertionError("weights do not satisfy sum(w * p) == 1")
    for name, iv in (("prior", res.prior_interval), ("weights", res.weights_interval)):
        if iv.shape != (k, 2):
            raise AssertionError(f"{name}_interval has shape {iv.shape}; expected {(k, 2)}")
        if not np.all(np.isnan(iv)) and np.any(iv[:, 0] > iv[:, 1] + 1e-12):
            raise AssertionError(f"{name}_interval has lower > upper: {iv}")
    err = float(np.max(np.abs(res.prior - target)))
    if err > tol:
        raise AssertionError(
            f"{type(est).__name__} missed the target prior by {err:.4f} > {tol}: "
            f"estimated {np.round(res.prior, 4)}, true {np.round(target, 4)}"
        )
