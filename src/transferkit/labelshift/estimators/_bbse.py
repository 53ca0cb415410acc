"""BBSE: black box shift estimation (Lipton, Wang, Smola, ICML 2018)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._validation import ProbaStats
from ._base import (
    IllConditionedWarning,
    LabelShiftEstimator,
    _onehot_counts,
    _target_marginal,
    register_estimator,
)


@register_estimator("bbse")
class BBSE(LabelShiftEstimator):
    """BBSE: black box shift estimation (Lipton, Wang, Smola, ICML 2018,
    https://proceedings.mlr.press/v80/lipton18a.html).

    Fitting builds the joint confusion matrix ``C[i, j] = P(f(x) = i, y = j)`` on the
    holdout (hard: counts of predicted labels; soft: sums of predicted probabilities).
    ``estimate`` solves ``C w = mu`` (``np.linalg.solve``, never an inverse; ``lstsq`` if
    C is singular), where ``mu`` is the target's predicted-class distribution, clips ``w``
    at zero and rescales it so that the implied prior ``q = w * p`` sums to one.

    The delta-method interval accounts for the sampling error of both ``mu`` (target) and
    ``C`` (holdout, per-class covariance of the prediction vectors), to first order.

    Parameters
    ----------
    soft : bool, default False
        Use probabilities (soft confusion) instead of their argmax; needs probabilities.
    max_condition : float, default 100
        Warn (:class:`IllConditionedWarning`) when the condition number of the
        class-conditional confusion matrix exceeds this.
    n_classes : int, optional
        Number of classes when predictions are hard labels (default: largest label + 1).
    interval : {"delta", "bootstrap", "none"}, default "delta"
        The intervals are per class: each covers its own class's weight (prior) with
        probability ``confidence``, so all k of them hold together less often (about 0.87
        at k = 3 and 95%).
    confidence : float, default 0.95
    n_bootstrap : int, default 200
    random_state : int, optional
        Seed of the bootstrap.
    simultaneous : bool, default False
        Bonferroni-corrected intervals (each at level ``1 - (1 - confidence) / k``), which
        hold for all classes together with probability at least ``confidence``.

    Attributes
    ----------
    confusion_ : ndarray, shape (n_classes, n_classes)
        Joint confusion, rows = predicted class, columns = true class; sums to one.
    conditional_confusion_ : ndarray, shape (n_classes, n_classes)
        ``P(f(x) = i | y = j)``; columns sum to one.
    condition_number_ : float
    source_prior_ : ndarray, shape (n_classes,)
        Holdout label frequencies.
    holdout_marginal_ : ndarray, shape (n_classes,)
        The holdout's predicted-class distribution (row sums of ``confusion_``).

    Examples
    --------
    >>> y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    >>> pred = np.array([0, 0, 1, 1, 1, 1, 2, 2, 2, 0])
    >>> est = BBSE().fit(pred, y).estimate(np.array([0, 0, 1, 2, 2, 2]))
    >>> est.prior.round(3).tolist()
    [0.25, 0.083, 0.667]
    """

    _method = "bbse"

    def __init__(
        self,
        soft: bool = False,
        max_condition: float = 100.0,
        n_classes: int | None = None,
        interval: str = "delta",
        confidence: float = 0.95,
        n_bootstrap: int = 200,
        random_state: int | None = None,
        simultaneous: bool = False,
    ) -> None:
        self.soft = soft
        self.max_condition = max_condition
        self.n_classes = n_classes
        self.interval = interval
        self.confidence = confidence
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state
        self.simultaneous = simultaneous

    def _fit(self, X: np.ndarray, y: np.ndarray, is_proba: bool) -> None:
        k, m = self.n_classes_, len(y)
        if self.soft and not is_proba:
            raise ValueError(
                "soft=True needs predicted probabilities (m, n_classes); got hard labels"
            )
        counts = self.class_counts_.astype(np.float64)
        if self.soft:
            onehot = np.zeros((m, k), dtype=X.dtype)
            onehot[np.arange(m), y] = 1.0
            sums = np.asarray(X.T @ onehot, dtype=np.float64)  # (pred i, true j)
            cond_mean = sums / counts
            second = np.empty((k, k, k))
            for j in range(k):
                rows = np.asarray(X[y == j], dtype=np.float64)
                second[j] = rows.T @ rows / counts[j]
        else:
            pred = X.argmax(axis=1) if is_proba else X
            sums = _onehot_counts(pred, y, k)
            cond_mean = sums / counts
            second = np.stack([np.diag(cond_mean[:, j]) for j in range(k)])
        self.confusion_ = sums / m
        self.conditional_confusion_ = cond_mean
        self.holdout_marginal_ = self.confusion_.sum(axis=1)
        # per-class covariance of the prediction vector, for the delta-method interval
        self.class_covariance_ = second - np.einsum("ij,kj->jik", cond_mean, cond_mean)
        self.condition_number_ = float(np.linalg.cond(cond_mean))
        if not self.condition_number_ <= self.max_condition:
            warnings.warn(
                f"{type(self).__name__}: the confusion matrix is ill-conditioned (condition "
                f"number {self.condition_number_:.3g} > {self.max_condition:g}); estimated "
                "weights may be negative or far off — use more holdout data, a stronger "
                + ("classifier (RLLS's penalty pulls the weights towards 1 meanwhile)"
                   if getattr(self, "_regularised", False) else "classifier, or RLLS"),
                IllConditionedWarning,
                stacklevel=3,
            )

    def _solve(self, mu: np.ndarray) -> np.ndarray:
        try:
            return np.linalg.solve(self.confusion_, mu)
        except np.linalg.LinAlgError:
            warnings.warn(
                f"{type(self).__name__}: the confusion matrix is singular; using the "
                "least-squares solution",
                IllConditionedWarning,
                stacklevel=4,
            )
            return np.linalg.lstsq(self.confusion_, mu, rcond=None)[0]

    def _wants_counts(self) -> bool:
        return not self.soft

    def _marginal(self, X: np.ndarray, is_proba: bool, stats: ProbaStats) -> np.ndarray:
        if self.soft and not is_proba:
            raise ValueError(
                "this estimator was fitted with soft=True: target predictions must be "
                f"probabilities (n, {self.n_classes_}); got hard labels"
            )
        if self.soft and stats.col is not None:
            return stats.col / X.shape[0]
        if not self.soft and stats.counts is not None:
            return stats.counts.astype(np.float64) / X.shape[0]
        return _target_marginal(X, is_proba, self.soft, self.n_classes_)

    def _estimate(
        self, X: np.ndarray, is_proba: bool, want_cov: bool, stats: ProbaStats
    ) -> tuple[np.ndarray, np.ndarray | None]:
        mu = self._marginal(X, is_proba, stats)
        w = self._solve(mu)
        return w, (self._delta_cov(X, mu, w, stats) if want_cov else None)

    def _exact_intervals(
        self, X: np.ndarray, is_proba: bool
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Exact small-sample bounds: a box on the target's predicted-class shares mapped
        through ``q = p * inv(C) mu`` (linear in ``mu``, so its extremes are at the box's
        corners). Hard predictions: Clopper-Pearson per class; probabilities: Hoeffding.
        Each class's bound has level ``1 - (1 - confidence) / k``, so the box holds with
        probability ``confidence``."""
        if type(self)._solve is not BBSE._solve:  # RLLS's solution is not linear in mu
            return None
        from scipy.stats import beta

        k, n = self.n_classes_, X.shape[0]
        mu = _target_marginal(X, is_proba, self.soft, k)
        a = (1.0 - self.confidence) / k
        if self.soft:
            half = np.sqrt(np.log(2.0 / a) / (2.0 * n))
            lo, hi = np.clip(mu - half, 0, 1), np.clip(mu + half, 0, 1)
        else:
            counts = np.rint(mu * n)
            lo = np.where(counts > 0, beta.ppf(a / 2, counts, n - counts + 1), 0.0)
            hi = np.where(counts < n, beta.ppf(1 - a / 2, counts + 1, n - counts), 1.0)
        try:
            inv = np.linalg.inv(self.confusion_)
        except np.linalg.LinAlgError:
            return None
        q_lo = self.source_prior_ * np.minimum(inv * lo, inv * hi).sum(axis=1)
        q_hi = self.source_prior_ * np.maximum(inv * lo, inv * hi).sum(axis=1)
        q_int = np.clip(np.stack([q_lo, q_hi], axis=1), 0.0, 1.0)
        return q_int / self.source_prior_[:, None], q_int

    def _delta_cov(self, X: np.ndarray, mu: np.ndarray, w: np.ndarray, stats: ProbaStats) -> Any:
        """First-order covariance of the prior q = w * p (C_cond q = mu)."""
        n = X.shape[0]
        if self.soft:
            sq = stats.sq
            second = (sq if sq is not None else np.asarray(X.T @ X, dtype=np.float64)) / n
            sigma_v = (second - np.outer(mu, mu)) / n
        else:
            sigma_v = (np.diag(mu) - np.outer(mu, mu)) / n
        q = np.maximum(w, 0.0) * self.source_prior_
        q = q / q.sum() if q.sum() > 0 else self.source_prior_
        sigma_c = np.einsum("j,jab->ab", q**2 / self.class_counts_, self.class_covariance_)
        c = self.conditional_confusion_
        try:
            left = np.linalg.solve(c, sigma_v + sigma_c)
            return np.linalg.solve(c, left.T).T
        except np.linalg.LinAlgError:
            pinv = np.linalg.pinv(c)
            return pinv @ (sigma_v + sigma_c) @ pinv.T
