"""The base of the label-shift estimators and their registry: the scikit-learn contract,
the holdout's statistics, intervals, and ``register_estimator`` / ``create_estimator`` /
``list_estimators``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..._estimator import Params, check_fitted, clone
from ..._registry import Registry
from .._validation import (
    ProbaStats,
    as_numpy,
    check_labels,
    check_predictions,
    check_proba_stats,
)

_INTERVALS = ("delta", "bootstrap", "none")


class IllConditionedWarning(UserWarning):
    """The confusion matrix is nearly singular: estimated weights may be far off.

    Examples
    --------
    A black box that cannot tell the classes apart makes the confusion matrix singular:

    >>> import warnings
    >>> from transferkit.labelshift import BBSE
    >>> y = np.repeat([0, 1], 50)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = BBSE().fit(np.zeros(100, dtype=int), y).estimate(np.zeros(60, dtype=int))
    >>> any(issubclass(w.category, IllConditionedWarning) for w in caught)
    True
    """


class SmallSampleWarning(UserWarning):
    """The target is too small for the delta method's normal approximation.

    Examples
    --------
    >>> import warnings
    >>> from transferkit.labelshift import BBSE
    >>> y = np.repeat([0, 1], 50)
    >>> est = BBSE().fit(y, y)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = est.estimate(np.array([0, 1, 1]))            # 3 target rows for 2 classes
    >>> [w.category.__name__ for w in caught]
    ['SmallSampleWarning']
    """


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
        False when the holdout cannot tell the classes apart for this estimator: the
        confusion matrix's condition number exceeds its limit, or (for estimators on hard
        predictions) a class is never predicted. RLLS, regularised for this, is always
        identifiable. The numbers are then not to be trusted (a warning says why).
    interval_method : str
        ``"delta"``, ``"bootstrap"``, ``"exact"`` (small targets, BBSE: exact per-class
        bounds on the target's predicted-class shares, Bonferroni-combined and mapped
        through the fitted confusion; the holdout's own error is not included) or
        ``"none"``.
    notes : tuple of str
        Every warning raised while estimating, in words.

    Examples
    --------
    >>> from transferkit.labelshift import BBSE
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 600)
    >>> est = BBSE().fit(np.where(rng.random(600) < 0.8, y, (y + 1) % 3), y)
    >>> e = est.estimate(rng.integers(0, 3, 300))
    >>> e.weights.shape, e.prior_interval.shape, bool(np.isclose(e.prior.sum(), 1.0))
    ((3,), (3, 2), True)
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

    Examples
    --------
    Every estimator follows it: ``fit`` on a labelled source holdout (the black box's
    predictions and the true labels), ``estimate`` on the target's predictions:

    >>> from transferkit.labelshift import create_estimator
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 500)
    >>> pred = np.where(rng.random(500) < 0.9, y, 1 - y)
    >>> target = np.where(rng.random(400) < 0.9, 1, 0)        # mostly class 1 now
    >>> est = create_estimator("bbse").fit(pred, y)
    >>> isinstance(est, LabelShiftEstimator), bool(est.estimate(target).prior[1] > 0.8)
    (True, True)
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
    _regularised = False  # shrinks towards "no shift" where the holdout cannot tell

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
        # a class never predicted empties a row of the hard confusion only: an estimator
        # on probabilities (soft BBSE, MLLS) still sees it, and RLLS is regularised for this
        hard = not (is_proba and (self._soft() or self._needs_proba))
        blocked = (len(never) > 0 and hard) or not self.condition_number_ <= limit
        self.identifiable_ = bool(self._regularised or not blocked)

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


ESTIMATORS: Registry[type[LabelShiftEstimator]] = Registry(
    "label-shift estimator", base=LabelShiftEstimator
)


def register_estimator(
    name: str,
) -> Callable[[type[LabelShiftEstimator]], type[LabelShiftEstimator]]:
    """Class decorator adding a :class:`LabelShiftEstimator` subclass under ``name``.

    Examples
    --------
    >>> from transferkit.labelshift import BBSE
    >>> @register_estimator("bbse-example")
    ... class MyBBSE(BBSE):
    ...     'BBSE under another name.'
    >>> create_estimator("bbse-example", soft=True)
    MyBBSE(soft=True)
    >>> ESTIMATORS.unregister("bbse-example")  # leave the registry as it was
    """
    return ESTIMATORS.decorator(name)


def create_estimator(name: str, **kwargs: Any) -> LabelShiftEstimator:
    """A fresh estimator registered as ``name``, built with ``kwargs``.

    Examples
    --------
    >>> create_estimator("bbse", soft=True)
    BBSE(soft=True)
    """
    return ESTIMATORS.get(name)(**kwargs)


def list_estimators() -> list[str]:
    """Names of the registered label-shift estimators.

    Examples
    --------
    >>> list_estimators()
    ['bbse', 'mlls', 'rlls']
    """
    return ESTIMATORS.names()


def _target_marginal(X: np.ndarray, is_proba: bool, soft: bool, k: int) -> np.ndarray:
    """Mean predicted distribution on the target (soft) or predicted-class frequencies."""
    n = X.shape[0]
    if soft:
        return np.asarray(np.ones(n, dtype=X.dtype) @ X, dtype=np.float64) / n
    labels = X.argmax(axis=1) if is_proba else X
    return np.bincount(labels, minlength=k).astype(np.float64) / n
