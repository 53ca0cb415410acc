"""MLLS: maximum-likelihood label shift by EM or Newton (Saerens et al. 2002), with
optional calibration (BCTS)."""

from __future__ import annotations

import numpy as np

from .. import _kernels
from .._validation import (
    CHUNK,
    ProbaStats,
)
from ..calibration import apply_bcts, fit_bcts
from ._base import LabelShiftEstimator, register_estimator


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
