"""Label-shift estimators: BBSE, RLLS and MLLS (EM), with the scikit-learn contract.

Under label shift p(x | y) is the same in source and target while the class prior moves
from p(y) to q(y). Each estimator is fitted on a labelled holdout of the source (its
labels and a black-box model's predictions on it: hard labels or probabilities) and then
estimates, from the same model's predictions on unlabelled target data, the class weights
``w[y] = q(y) / p(y)`` and the target prior ``q``, each with a confidence interval.

Source prior ``p``: the holdout's label frequencies (the holdout must contain every class).
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from .._estimator import Params, check_fitted, clone
from . import _kernels
from ._validation import (
    CHUNK,
    ProbaStats,
    as_numpy,
    check_labels,
    check_predictions,
    check_proba_stats,
)
from .calibration import apply_bcts, fit_bcts
from .registry import ESTIMATORS, register_estimator

__all__ = [
    "BBSE",
    "MLLS",
    "RLLS",
    "IllConditionedWarning",
    "LabelShiftEstimate",
]

_INTERVALS = ("delta", "bootstrap", "none")


class IllConditionedWarning(UserWarning):
    """The confusion matrix is nearly singular: estimated weights may be far off."""


class SmallSampleWarning(UserWarning):
    """The target is too small for the delta method's normal approximation."""


MIN_ROWS_PER_CLASS = 5
"""Below ``MIN_ROWS_PER_CLASS * n_classes`` target rows the delta method's normal
approximation fails; intervals are then exact (BBSE) or not given (NaN)."""


class LabelShiftEstimate(NamedTuple):
    """What ``estimate`` returns (all arrays indexed by class).

    Attributes
    ----------
    weights : ndarray, shape (n_classes,)
        ``q(y) / p(y)``, non-negative, normalised so that ``sum(weights * p) == 1``.
    prior : ndarray, shape (n_classes,)
        The estimated target prior ``q`` (sums to one).
    weights_interval, prior_interval : ndarray, shape (n_classes, 2)
        Lower and upper ends of the ``confidence`` intervals (NaN with ``interval="none"``).
    raw_weights : ndarray, shape (n_classes,)
        The estimator's solution before clipping at zero and normalising (for BBSE exactly
        ``np.linalg.solve(confusion_, target_marginal)``).
    confidence : float
    method : str
    identifiable : bool
        False when the holdout cannot tell the classes apart: a class is never predicted,
        or the confusion matrix's condition number exceeds the estimator's limit. The
        numbers are then not to be trusted (a warning says why).
    interval_method : str
        ``"delta"``, ``"bootstrap"``, ``"exact"`` (small targets, BBSE: exact per-class
        bounds on the target's predicted-class shares, Bonferroni-combined and mapped
        through the fitted confusion; the holdout's own error is not included) or
        ``"none"``.
    notes : tuple of str
        Every warning raised while estimating, in words.
    """

    weights: NDArray[np.float64]
    prior: NDArray[np.float64]
    weights_interval: NDArray[np.float64]
    prior_interval: NDArray[np.float64]
    raw_weights: NDArray[np.float64]
    confidence: float
    method: str
    identifiable: bool = True
    interval_method: str = "delta"
    notes: tuple[str, ...] = ()


def _names_to_index(values: np.ndarray, names: np.ndarray, what: str) -> np.ndarray:
    if names.dtype.kind not in "USO":
        raise ValueError(f"{what} are class names but the estimator was fitted on class indices")
    pos = np.searchsorted(names, values)
    pos = np.clip(pos, 0, len(names) - 1)
    bad = names[pos] != values
    if bad.any():
        raise ValueError(
            f"{what}: unknown class {str(values[np.flatnonzero(bad)[0]])!r}; the classes are "
            f"{names.tolist()}"
        )
    return pos.astype(np.int64)


def _encode_names(X: Any, y: Any) -> tuple[np.ndarray | None, Any, Any]:
    """String class labels become indices into their sorted names (None when already ints)."""
    y_arr = as_numpy(y, "holdout labels")
    if y_arr.dtype.kind not in "USO":
        return None, X, y
    y_arr = y_arr.astype(str)
    names = np.unique(y_arr)
    X_arr = as_numpy(X, "holdout predictions")
    if X_arr.ndim == 1:
        X_arr = _names_to_index(X_arr.astype(str), names, "holdout predictions")
    return names, X_arr, _names_to_index(y_arr, names, "holdout labels")


def _onehot_counts(pred: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Count matrix N[i, j] = #{pred == i, y == j}."""
    return np.bincount(pred * k + y, minlength=k * k).reshape(k, k).astype(np.float64)


class LabelShiftEstimator(Params):
    """Base class of the label-shift estimators: ``fit(holdout, labels).estimate(target)``.

    Shared fitting, validation, normalisation and intervals; subclasses add the solver.
    Registered subclasses (:func:`transferkit.labelshift.register_estimator`) are built by
    name with :func:`transferkit.labelshift.create_estimator`.
    """

    # set by subclasses' __init__ (scikit-learn: parameters only, no logic)
    n_classes: int | None
    interval: str
    confidence: float
    n_bootstrap: int
    random_state: int | None
    simultaneous: bool

    _method = "base"
    _needs_proba = False

    # --- fitting ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> LabelShiftEstimator:
        """Fit on a labelled source holdout.

        Parameters
        ----------
        X : array, shape (m,) of int or (m, n_classes) of float
            The black box's predictions on the holdout: hard labels or probabilities
            (rows sum to one). Torch tensors are accepted.
        y : array, shape (m,) of int or of str
            True labels of the holdout, in ``0 .. n_classes - 1``; every class must occur.
            String class names are accepted too: ``classes_`` is then their sorted list,
            probability columns follow that order, and hard predictions (here and in
            ``estimate``) are names as well.

        Returns
        -------
        self
        """
        self._check_params()
        names, X, y = _encode_names(X, y)
        X_arr, is_proba = check_predictions(X, self.n_classes, "holdout predictions")
        if is_proba:
            k = X_arr.shape[1]
        else:
            y_max = int(np.max(np.asarray(y))) if np.size(y) else 0
            k = self.n_classes if self.n_classes is not None else max(int(X_arr.max()), y_max) + 1
        if self._needs_proba and not is_proba:
            raise ValueError(
                f"{type(self).__name__} needs predicted probabilities (m, n_classes); "
                f"got hard labels of shape {X_arr.shape}"
            )
        y_arr = check_labels(y, k, "holdout labels")
        if len(y_arr) != len(X_arr):
            raise ValueError(
                f"holdout predictions have {len(X_arr)} rows but holdout labels have {len(y_arr)}"
            )
        counts = np.bincount(y_arr, minlength=k)
        missing = np.flatnonzero(counts == 0)
        if len(missing):
            raise ValueError(
                f"class(es) {missing.tolist()} missing from the holdout labels; every class "
                f"needs holdout examples to estimate its column of the confusion matrix"
            )
        self.n_classes_ = k
        if names is not None and len(names) != k:
            raise ValueError(
                f"the holdout labels name {len(names)} classes {names.tolist()} but the "
                f"predictions have {k} columns"
            )
        self.classes_ = names if names is not None else np.arange(k)
        self.n_holdout_ = len(y_arr)
        self.class_counts_ = counts
        self.source_prior_ = counts / counts.sum()
        self.proba_input_ = is_proba
        self.holdout_predictions_ = X_arr
        self.holdout_labels_ = y_arr
        self._fit(X_arr, y_arr, is_proba)
        self._check_identifiable(X_arr, y_arr, is_proba)
        return self

    def _check_identifiable(self, X: np.ndarray, y: np.ndarray, is_proba: bool) -> None:
        """Classes never predicted on the holdout, and the confusion's condition number."""
        k = self.n_classes_
        pred = X.argmax(axis=1) if is_proba else X
        never = np.flatnonzero(np.bincount(pred, minlength=k) == 0)
        self.never_predicted_ = self.classes_[never]
        if not hasattr(self, "condition_number_"):  # MLLS: the soft class-conditional means
            onehot = np.zeros((len(y), k))
            onehot[np.arange(len(y)), y] = 1.0
            probs = X if is_proba else np.eye(k)[X]
            cond = (np.asarray(probs, dtype=np.float64).T @ onehot) / self.class_counts_
            self.condition_number_ = float(np.linalg.cond(cond))
        limit = float(getattr(self, "max_condition", 100.0))
        self.identifiable_ = bool(len(never) == 0 and self.condition_number_ <= limit)

    def _check_params(self) -> None:
        if self.interval not in _INTERVALS:
            raise ValueError(f"interval must be one of {_INTERVALS}; got {self.interval!r}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1); got {self.confidence}")
        if self.n_bootstrap < 2:
            raise ValueError(f"n_bootstrap must be >= 2; got {self.n_bootstrap}")

    def _fit(self, X: np.ndarray, y: np.ndarray, is_proba: bool) -> None:
        raise NotImplementedError

    # --- estimation ---------------------------------------------------------------------
    def estimate(self, X: Any) -> LabelShiftEstimate:
        """Estimate target weights and prior from the black box's target predictions.

        Parameters
        ----------
        X : array, shape (n,) of int or (n, n_classes) of float
            Predictions on unlabelled target data, of the same kind the estimator needs
            (probabilities when it was fitted with ``soft=True`` or is MLLS).

        Returns
        -------
        LabelShiftEstimate
        """
        check_fitted(self, "n_classes_")
        want_cov = self.interval == "delta"
        arr = as_numpy(X, "target predictions")
        if arr.ndim == 1 and arr.dtype.kind in "USO":
            arr = _names_to_index(arr, self.classes_, "target predictions")
        if arr.ndim == 2:
            arr, stats = check_proba_stats(arr, self.n_classes_, "target predictions",
                                           second=want_cov and self._soft(),
                                           hard=self._wants_counts())
            is_proba = True
        else:
            arr, is_proba = check_predictions(arr, self.n_classes_, "target predictions")
            stats = ProbaStats(None, None, None)
        X_arr = arr
        k = self.n_classes_
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if not self.identifiable_:
                why = []
                if len(self.never_predicted_):
                    why.append(f"class(es) {self.never_predicted_.tolist()} are never "
                               "predicted on the holdout")
                if not self.condition_number_ <= float(getattr(self, "max_condition", 100.0)):
                    why.append(f"the confusion matrix's condition number is "
                               f"{self.condition_number_:.3g}")
                warnings.warn(f"{type(self).__name__}: the target prior is not identifiable "
                              f"from this holdout: {'; '.join(why)}", IllConditionedWarning,
                              stacklevel=2)
            small = len(X_arr) < MIN_ROWS_PER_CLASS * k
            raw, cov = self._estimate(X_arr, is_proba, want_cov and not small, stats)
            weights, prior = self._normalise(raw)
            w_int, q_int, how = self._intervals(X_arr, is_proba, weights, prior, cov, small)
        for w in caught:  # pass them on to the caller, and keep them in the result
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return LabelShiftEstimate(weights, prior, w_int, q_int, raw, float(self.confidence),
                                  self._method, self.identifiable_, how,
                                  tuple(str(w.message) for w in caught))

    def _intervals(
        self, X: np.ndarray, is_proba: bool, weights: np.ndarray, prior: np.ndarray,
        cov: np.ndarray | None, small: bool,
    ) -> tuple[np.ndarray, np.ndarray, str]:
        k = self.n_classes_
        nan = np.full((k, 2), np.nan)
        if self.interval == "none":
            return nan, nan.copy(), "none"
        if small:
            exact = self._exact_intervals(X, is_proba)
            warnings.warn(
                f"{type(self).__name__}: the target has {len(X)} rows, fewer than "
                f"{MIN_ROWS_PER_CLASS} per class ({MIN_ROWS_PER_CLASS * k}): the delta "
                "method and the bootstrap do not hold here; "
                + ("the intervals are exact bounds on the target's predicted-class shares "
                   "(the holdout's error not included)" if exact is not None
                   else "no interval is given"),
                SmallSampleWarning, stacklevel=3)
            if exact is None:
                return nan, nan.copy(), "none"
            return exact[0], exact[1], "exact"
        if self.interval == "bootstrap":
            w_int, q_int = self._bootstrap(X)
            return w_int, q_int, "bootstrap"
        if cov is None:
            return nan, nan.copy(), "none"
        from scipy.stats import norm

        z = float(norm.ppf(0.5 + self._class_level() / 2))
        sd_q = np.sqrt(np.maximum(np.diag(cov), 0.0))
        q_int = np.clip(np.stack([prior - z * sd_q, prior + z * sd_q], axis=1), 0.0, 1.0)
        sd_w = sd_q / self.source_prior_
        w_int = np.maximum(np.stack([weights - z * sd_w, weights + z * sd_w], axis=1), 0.0)
        return w_int, q_int, "delta"

    def _exact_intervals(
        self, X: np.ndarray, is_proba: bool
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Small-target intervals; None where the estimator has no exact form."""
        return None

    def _estimate(
        self, X: np.ndarray, is_proba: bool, want_cov: bool, stats: ProbaStats
    ) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _class_level(self) -> float:
        """Each class's interval level: ``confidence``, or Bonferroni's when simultaneous."""
        if self.simultaneous:
            return 1.0 - (1.0 - self.confidence) / self.n_classes_
        return self.confidence

    def _soft(self) -> bool:
        return bool(getattr(self, "soft", False))

    def _wants_counts(self) -> bool:
        """Whether ``_estimate`` reads the target's argmax counts (``stats.counts``) from
        the validating pass, instead of its column sums."""
        return False

    def _normalise(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clip weights at 0 and rescale so that the implied prior sums to one."""
        q = np.maximum(raw, 0.0) * self.source_prior_
        total = q.sum()
        if not np.isfinite(total) or total <= 0:
            warnings.warn(
                f"{type(self).__name__}: every estimated weight is <= 0 (raw {raw}); "
                "returning the source prior (weights 1)",
                IllConditionedWarning,
                stacklevel=3,
            )
            return np.ones(self.n_classes_), self.source_prior_.copy()
        prior = q / total
        return prior / self.source_prior_, prior

    def _bootstrap(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Percentile intervals: holdout resampled within each class, target resampled."""
        rng = np.random.default_rng(self.random_state)
        hx, hy = self.holdout_predictions_, self.holdout_labels_
        by_class = [np.flatnonzero(hy == c) for c in range(self.n_classes_)]
        base = clone(self).set_params(interval="none")
        ws, qs = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(self.n_bootstrap):
                hidx = np.concatenate([rng.choice(ix, size=len(ix)) for ix in by_class])
                tidx = rng.integers(0, len(X), size=len(X))
                est = clone(base).fit(hx[hidx], hy[hidx]).estimate(X[tidx])
                ws.append(est.weights)
                qs.append(est.prior)
        a = (1 - self._class_level()) / 2
        w_int = np.quantile(np.array(ws), [a, 1 - a], axis=0).T
        q_int = np.quantile(np.array(qs), [a, 1 - a], axis=0).T
        return w_int, q_int


ESTIMATORS.base = LabelShiftEstimator  # only its subclasses can be registered


def _target_marginal(X: np.ndarray, is_proba: bool, soft: bool, k: int) -> np.ndarray:
    """Mean predicted distribution on the target (soft) or predicted-class frequencies."""
    n = X.shape[0]
    if soft:
        return np.asarray(np.ones(n, dtype=X.dtype) @ X, dtype=np.float64) / n
    labels = X.argmax(axis=1) if is_proba else X
    return np.bincount(labels, minlength=k).astype(np.float64) / n


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
                "classifier, or RLLS",
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


@register_estimator("rlls")
class RLLS(BBSE):
    """RLLS: regularised BBSE (Azizzadenesheli, Liu, Yang, Anandkumar, ICLR 2019,
    https://arxiv.org/abs/1903.09734).

    Solves ``min_theta ||C theta - b||_2 + reg * ||theta||_2`` subject to ``theta >= -1``,
    with ``b = mu_target - mu_holdout`` and weights ``w = 1 + theta``. The norm penalty
    pulls the weights towards 1 when the confusion matrix is estimated poorly. Solved
    with L-BFGS-B on a smoothed objective (no cvxpy).

    Parameters
    ----------
    reg : float or "auto", default "auto"
        Penalty. "auto" is ``0.01 * 3 * Delta_C``, as in the authors' public code
        (``alpha = 0.01`` times ``compute_3deltaC``), with the confusion matrix's
        concentration width ``Delta_C = 2 log(2k/0.05) / (3 m) + sqrt(2 log(2k/0.05) / m)``
        for m holdout examples and k classes (the paper's bound). The factor 0.01 matters:
        the unscaled bound exceeds the smallest singular value of a 10-class joint confusion
        matrix for holdouts of a few thousand, and the (exact) penalty then returns w = 1
        whatever the target. 0 gives (clipped) BBSE.
    soft, max_condition, n_classes, interval, confidence, n_bootstrap, random_state, simultaneous
        As :class:`BBSE`. The delta-method interval is BBSE's linearisation evaluated at
        the RLLS solution (it ignores the penalty's shrinkage).

    Attributes
    ----------
    reg_ : float
        The penalty used.

    Examples
    --------
    >>> y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    >>> pred = np.array([0, 0, 1, 1, 1, 1, 2, 2, 2, 0])
    >>> est = RLLS(reg=0.0).fit(pred, y).estimate(np.array([0, 0, 1, 2, 2, 2]))
    >>> est.prior.round(2).tolist()
    [0.25, 0.08, 0.67]
    """

    _method = "rlls"

    def __init__(
        self,
        reg: float | str = "auto",
        soft: bool = False,
        max_condition: float = 100.0,
        n_classes: int | None = None,
        interval: str = "delta",
        confidence: float = 0.95,
        n_bootstrap: int = 200,
        random_state: int | None = None,
        simultaneous: bool = False,
    ) -> None:
        self.reg = reg
        super().__init__(soft, max_condition, n_classes, interval, confidence, n_bootstrap,
                         random_state, simultaneous)

    def _fit(self, X: np.ndarray, y: np.ndarray, is_proba: bool) -> None:
        if self.reg == "auto":
            k, m = self.n_classes_, len(y)
            t = np.log(2 * k / 0.05)
            self.reg_ = 0.01 * 3 * float(2 * t / (3 * m) + np.sqrt(2 * t / m))
        elif isinstance(self.reg, (int, float)) and self.reg >= 0:
            self.reg_ = float(self.reg)
        else:
            raise ValueError(f"reg must be 'auto' or a float >= 0; got {self.reg!r}")
        super()._fit(X, y, is_proba)

    def _solve(self, mu: np.ndarray) -> np.ndarray:
        c = self.confusion_
        b = mu - self.holdout_marginal_
        reg, eps = self.reg_, 1e-18

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            r = c @ theta - b
            nr = np.sqrt(r @ r + eps)
            nt = np.sqrt(theta @ theta + eps)
            return float(nr + reg * nt), c.T @ r / nr + reg * theta / nt

        k = len(mu)
        # start from the clipped BBSE solution (the answer when reg = 0)
        try:
            start = np.maximum(np.linalg.solve(c, mu), 0.0) - 1.0
        except np.linalg.LinAlgError:
            start = np.zeros(k)
        from scipy.optimize import minimize

        res = minimize(objective, start, jac=True, method="L-BFGS-B",
                       bounds=[(-1.0, None)] * k, options={"maxiter": 1000, "ftol": 1e-15,
                                                           "gtol": 1e-12})
        return np.asarray(1.0 + res.x, dtype=np.float64)


def _em_pass(P: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, float]:
    """``mean_i P[i] / (P[i] . r)`` and ``mean_i log(P[i] . r)`` in one pass (by blocks)."""
    n, k = P.shape
    fast = _kernels.em_pass(P, r)
    if fast is not None:
        return fast[0] / n, fast[1] / n
    rr = r.astype(P.dtype)
    t = np.zeros(k)
    loglik = 0.0
    tiny = np.finfo(P.dtype).tiny
    for start in range(0, n, CHUNK):
        block = P[start : start + CHUNK]
        s = block @ rr
        np.maximum(s, tiny, out=s)
        loglik += float(np.log(s).sum())
        np.reciprocal(s, out=s)
        t += s @ block
    return t / n, loglik / n


def _mlls_em(P: np.ndarray, p: np.ndarray, max_iter: int, tol: float) -> tuple[np.ndarray, int]:
    """Saerens' EM for the target prior, accelerated by SQUAREM; returns (q, passes)."""

    def em(q: np.ndarray) -> tuple[np.ndarray, float]:
        """One EM update from q, and the mean log-likelihood at q."""
        r = q / p
        t, loglik = _em_pass(P, r)
        q_new = r * t
        return q_new / q_new.sum(), loglik

    # EM accelerated by SQUAREM (Varadhan & Roland 2008), with EM as the fallback
    q = p.copy()
    passes = 0
    while passes < max_iter:
        q1, _ = em(q)
        passes += 1
        if np.max(np.abs(q1 - q)) < tol:
            q = q1
            break
        q2, ll1 = em(q1)
        passes += 1
        r1, v = q1 - q, q2 - 2 * q1 + q
        nv = float(np.linalg.norm(v))
        alpha = -float(np.linalg.norm(r1)) / nv if nv > 0 else -1.0
        alpha = min(alpha, -1.0)
        qs = q - 2 * alpha * r1 + alpha**2 * v
        while alpha < -1.0 and (np.any(qs <= 0) or not np.all(np.isfinite(qs))):
            alpha = (alpha - 1.0) / 2  # step back towards plain EM (alpha = -1)
            if alpha > -1.01:
                alpha = -1.0
            qs = q - 2 * alpha * r1 + alpha**2 * v
        if alpha == -1.0:
            q = q2
            continue
        qs /= qs.sum()
        q3, ll_s = em(qs)
        passes += 1
        q = q3 if ll_s >= ll1 else q2
    return q, passes


def _newton_pass(P: np.ndarray, r: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean log-likelihood ``mean_i log(P[i] . r)``, its gradient and the matrix
    ``mean_i b_i b_i^T`` with ``b_i = P[i] / (P[i] . r)`` (minus the Hessian), in one pass."""
    n, k = P.shape
    rr = r.astype(P.dtype)
    g = np.zeros(k)
    h = np.zeros((k, k))
    loglik = 0.0
    tiny = np.finfo(P.dtype).tiny
    for start in range(0, n, CHUNK):
        block = P[start : start + CHUNK]
        s = block @ rr
        np.maximum(s, tiny, out=s)
        loglik += float(np.log(s).sum())
        b = block / s[:, None]
        g += np.ones(len(b), dtype=b.dtype) @ b
        h += b.T @ b
    return loglik / n, g / n, h / n


def _mlls_newton(
    P: np.ndarray, p: np.ndarray, max_iter: int, tol: float
) -> tuple[np.ndarray, int]:
    """Maximum-likelihood target prior by Newton's method on the weights r = q / p.

    Maximises the concave ``L(r) = mean_i log(P[i] . r)`` subject to ``p . r = 1`` and
    ``r >= 0``: equality-constrained Newton steps on the classes not held at zero (an active
    set), coordinates that would cross zero shrink 1000-fold instead, and a short
    backtracking search (falling back to the EM update, always an ascent step) keeps L
    increasing. Each trial point costs one pass over P (likelihood, gradient and Hessian
    together).
    Returns (q, passes).
    """
    k = len(p)
    r = np.ones(k)
    loglik, g, h = _newton_pass(P, r)
    passes = 1
    while passes < max_iter:
        # g . r == 1 always, so the KKT multiplier of p . r = 1 is 1: a class at zero whose
        # gradient is below p_j wants to go negative and stays at zero (active set)
        active = (r <= 1e-12) & (g < p)
        free = ~active
        m = int(free.sum())
        kkt = np.zeros((m + 1, m + 1))
        kkt[:m, :m] = h[np.ix_(free, free)]
        kkt[:m, m] = kkt[m, :m] = p[free]
        rhs = np.concatenate([g[free] - p[free], [0.0]])
        d = np.zeros(k)
        d[free] = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:m]
        target = r + d
        shrink = target < 1e-3 * r  # would cross (or nearly reach) zero: shrink instead
        target[shrink] = 1e-3 * r[shrink]
        target[r <= 1e-12] = np.where(d[r <= 1e-12] > 0, target[r <= 1e-12], 0.0)
        target[target < 1e-13] = 0.0
        target /= p @ target
        candidates = [r + t * (target - r) for t in (1.0, 0.5, 0.25)]
        candidates.append(r * g / p)  # the EM update: always an ascent step
        for r_new in candidates:
            ll_new, g_new, h_new = _newton_pass(P, r_new)
            passes += 1
            if ll_new >= loglik - 1e-13 * abs(loglik) or passes >= max_iter:
                break
        moved = float(np.max(np.abs((r_new - r) * p)))
        r, loglik, g, h = r_new, ll_new, g_new, h_new
        if moved < tol:
            break
    q = r * p
    return q / q.sum(), passes


@register_estimator("mlls")
class MLLS(LabelShiftEstimator):
    """MLLS: maximum-likelihood label shift (Saerens, Latinne, Decaestecker, Neural
    Computation 2002, https://doi.org/10.1162/089976602753284446), with optional
    bias-corrected temperature scaling (Alexandari et al., ICML 2020,
    https://proceedings.mlr.press/v119/alexandari20a.html).

    Maximises ``sum_i log sum_y q(y) / p(y) * p_s(y | x_i)`` over target priors ``q``: the
    fixed point of Saerens' EM ``q <- mean_i of p_s(. | x_i) * q / p renormalised``, found by
    the (accelerated) EM iteration or by Newton's method, until the prior moves by less
    than ``tol``.

    Source prior choice (peers disagree): EM is consistent only when ``p`` is the prior
    under which the black box's probabilities are calibrated posteriors.
    ``source_prior="labels"`` (default) uses the holdout's label frequencies, right for a
    calibrated model; ``"predictions"`` uses the mean (calibrated) predicted probability on
    the holdout, which makes "no shift" a fixed point even for a miscalibrated model. With
    ``calibration="bcts"`` the two coincide (the fitted biases make the mean calibrated
    prediction equal the label frequencies), which is why BCTS is recommended.

    Parameters
    ----------
    calibration : {"bcts", "ts", None}, default "bcts"
        Fit bias-corrected temperature scaling (``"bcts"``, Alexandari et al. 2020) or
        temperature scaling (``"ts"``) on the holdout and apply it to target probabilities
        first; None uses the probabilities as they are. The default is the measured best
        (``benchmarks/bench_mlls_defaults.py``, the ``bbse-estimation`` black box, 1,000
        holdout and 2,000 target images, 2 seeds x 15 Dirichlet shifts; mean squared
        weight error): at alpha = 1, bcts 0.0027, ts 0.0116, none 0.0105 (BBSE soft
        0.0042); at alpha = 10, bcts 0.0031, ts 0.0130, none 0.0107 (BBSE soft 0.0030).
        The command line's ``transferkit labelshift --method mlls`` uses the same default.
    source_prior : {"labels", "predictions"}, default "labels"
    solver : {"em", "newton"}, default "em"
        ``"em"``: Saerens' EM accelerated by SQUAREM (Varadhan & Roland 2008), one pass
        over the data per update. ``"newton"``: Newton's method on the weights (likelihood,
        gradient and Hessian in one pass per trial point); fewer passes, but each costs
        about three EM passes, so it is rarely faster. Both reach the same maximum.
    max_iter : int, default 1000
        Most passes over the target data.
    tol : float, default 1e-7
        Stop when an EM update moves no class probability by more than this.
    n_classes, interval, confidence, n_bootstrap, random_state, simultaneous
        As :class:`BBSE`. The delta-method interval here is the inverse observed Fisher
        information of the target likelihood on the simplex; it ignores the holdout's
        (calibration) error — use ``interval="bootstrap"`` to include it.

    Attributes
    ----------
    temperature_ : float
    bias_ : ndarray, shape (n_classes,)
    em_prior_ : ndarray, shape (n_classes,)
        The source prior used by EM.
    n_iter_ : int
        EM updates (passes over the target) of the last ``estimate``.

    Examples
    --------
    >>> p_s = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    >>> est = MLLS().fit(p_s, np.array([0, 1, 0, 1])).estimate(np.array([[0.8, 0.2]] * 5))
    >>> bool(est.prior[0] > 0.5)
    True
    """

    _method = "mlls"
    _needs_proba = True

    def __init__(
        self,
        calibration: str | None = "bcts",
        source_prior: str = "labels",
        solver: str = "em",
        max_iter: int = 1000,
        tol: float = 1e-7,
        n_classes: int | None = None,
        interval: str = "delta",
        confidence: float = 0.95,
        n_bootstrap: int = 200,
        random_state: int | None = None,
        simultaneous: bool = False,
    ) -> None:
        self.solver = solver
        self.calibration = calibration
        self.source_prior = source_prior
        self.max_iter = max_iter
        self.tol = tol
        self.n_classes = n_classes
        self.interval = interval
        self.confidence = confidence
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state
        self.simultaneous = simultaneous

    def _fit(self, X: np.ndarray, y: np.ndarray, is_proba: bool) -> None:
        if self.calibration not in (None, "ts", "bcts"):
            raise ValueError(
                f"calibration must be None, 'ts' or 'bcts'; got {self.calibration!r}"
            )
        if self.solver not in ("newton", "em"):
            raise ValueError(f"solver must be 'newton' or 'em'; got {self.solver!r}")
        if self.source_prior not in ("labels", "predictions"):
            raise ValueError(
                f"source_prior must be 'labels' or 'predictions'; got {self.source_prior!r}"
            )
        k = self.n_classes_
        if self.calibration is None:
            self.temperature_, self.bias_ = 1.0, np.zeros(k)
            cal = X
        else:
            self.temperature_, self.bias_ = fit_bcts(X, y, bias=self.calibration == "bcts")
            cal = apply_bcts(X, self.temperature_, self.bias_)
        if self.source_prior == "labels":
            self.em_prior_ = self.source_prior_.copy()
        else:
            self.em_prior_ = np.asarray(cal.mean(axis=0), dtype=np.float64)
        self.em_prior_ = np.maximum(self.em_prior_, 1e-12)

    def _calibrated(self, X: np.ndarray) -> np.ndarray:
        if self.calibration is None:
            return X
        return apply_bcts(X, self.temperature_, self.bias_)

    def _estimate(
        self, X: np.ndarray, is_proba: bool, want_cov: bool, stats: ProbaStats
    ) -> tuple[np.ndarray, np.ndarray | None]:
        P = self._calibrated(X)
        p = self.em_prior_
        if self.solver == "newton":
            q, self.n_iter_ = _mlls_newton(P, p, self.max_iter, self.tol)
        else:
            q, self.n_iter_ = _mlls_em(P, p, self.max_iter, self.tol)
        # weights relative to the holdout label frequencies (the estimate's `p`)
        w = q / self.source_prior_
        return w, (self._fisher_cov(P, q) if want_cov else None)

    def _fisher_cov(self, P: np.ndarray, q: np.ndarray) -> np.ndarray:
        r = (q / self.em_prior_).astype(P.dtype)
        k = len(q)
        info = np.zeros((k, k))
        for start in range(0, P.shape[0], CHUNK):  # no (n, k) temporary
            block = P[start : start + CHUNK]
            s = np.maximum(np.asarray(block @ r, dtype=np.float64), 1e-300)
            B = block / s[:, None].astype(P.dtype)
            info += B.T @ B
        info /= np.outer(self.em_prior_, self.em_prior_)
        from scipy.linalg import null_space

        Z = null_space(np.ones((1, len(q))))
        reduced = Z.T @ info @ Z
        return np.asarray(Z @ np.linalg.pinv(reduced) @ Z.T)
