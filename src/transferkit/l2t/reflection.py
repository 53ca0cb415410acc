"""The reflection function of L2T, its fit to experiences, and inference for a new pair.

Wei, Zhang, Huang, Yang, "Transfer Learning via Learning to Transfer", ICML 2018
(PMLR v80, wei18a). No public code is known; where the paper is not specific the choices
are stated here.

Reflection function (the paper's form)::

    1 / f(S, T, W) = beta^T d(W) + lambda beta^T Q(W) beta + mu / tau(W) + b

with ``d`` (K kernels' MMD estimates), ``Q`` (their K x K covariance) and ``tau`` from
:mod:`transferkit.l2t.features`: ``beta`` weighs the kernels of a multi-kernel MMD and
``beta^T Q beta`` is the variance of that combined estimate. It is fitted to the
experiences by regularised non-linear least squares on ``1 / l_e`` with the paper's
constraints ``beta >= 0`` and ``lambda >= 0``; ``mu`` and ``b`` are free. Our choices:
the fit works on standardised quantities (each ``d_k`` and ``1/tau`` over its spread,
``Q`` accordingly, the target ``1/l`` too), the ridge penalty ``gamma1`` is on the
standardised ``beta``, ``lambda`` and ``mu`` (``b`` is not penalised) and is chosen by
cross-validation grouped by pair, over the experiences only (``gamma1="cv"``); the
least squares start from the fit with ``lambda = 0``.

Inference: ``W* = argmin_W 1/f(S, T, W) + gamma2 ||W||_F^2`` by gradient descent (Adam
here). Since every feature is invariant to the scale of ``W``, ``gamma2`` only sets the
scale; it is kept for faithfulness. The paper does not say where descent starts; we
start from the base algorithms' projections for the pair, take the one the reflection
function rates best, and keep the iterate with the lowest objective. The descent is held
to the region the function was fitted on (a trust region, our addition): each of the
summaries ``d_k``, ``beta^T Q beta`` and ``1/tau`` must stay inside the range the
experiences spanned, or at least not move further outside it than the start was; the
descent stops at the first iterate that would (unbounded, a fitted linear function
rewards any direction it extrapolates in: on the digits claim the prediction fell from
0.96 to 0.72 while the measured ratio moved from 1.05 to 0.98). The target is then
classified by 1-NN on the projected source and labelled target (the paper's classifier),
or by logistic regression.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor

from .._estimator import Params, check_fitted
from .algorithms import DEFAULT_BASES, create_base_algorithm
from .experience import ExperienceStore, TransferPair
from .features import PairStatistics, n_kernels_of, reflection_features, split_features

__all__ = ["L2T", "ReflectionFunction", "Transferred", "fit_reflection", "optimise_projection"]

GAMMA_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class ReflectionFunction:
    """``1/f = beta^T d + lambda beta^T Q beta + mu / tau + b`` on feature vectors
    ``[d (K), Q (K x K, row by row), 1/tau]``.

    ``low`` and ``high`` bound the summaries ``[d_1..d_K, beta^T Q beta, 1/tau]`` over the
    experiences it was fitted on (the trust region of :func:`optimise_projection`; no
    bound by default).

    Examples
    --------
    >>> f = ReflectionFunction(beta=np.array([2.0]), lam=3.0, mu=0.1, b=0.5)
    >>> features = [[0.1, 0.01, 1.0]]                 # d, Q (1 x 1), 1/tau
    >>> f.inverse(features), f.predict_ratio(features)   # 1/f and f
    (array([0.92]), array([1.08695652]))
    """

    beta: NDArray[np.float64]
    lam: float
    mu: float
    b: float
    gamma1: float = float("nan")
    low: NDArray[np.float64] | None = None
    high: NDArray[np.float64] | None = None

    def summaries(self, features: ArrayLike) -> NDArray[np.float64]:
        """``[d_1..d_K, beta^T Q beta, 1/tau]`` per row of feature vectors."""
        d, Q, inv_tau = split_features(np.atleast_2d(np.asarray(features, dtype=np.float64)))
        q = np.einsum("k,nkl,l->n", self.beta, Q, self.beta)
        return np.column_stack([d, q, inv_tau])

    def _coef(self) -> NDArray[np.float64]:
        return np.concatenate([self.beta, [self.lam, self.mu]])

    def inverse(self, features: ArrayLike) -> Any:
        """``1/f`` for rows of features (smaller is better transfer); a number for one
        feature vector."""
        out = self.summaries(features) @ self._coef() + self.b
        return out[0] if np.ndim(features) == 1 else out

    def inverse_torch(self, features: Tensor) -> Tensor:
        d, Q, inv_tau = split_features(features)
        beta = torch.as_tensor(self.beta, dtype=features.dtype)
        return (d @ beta + self.lam * (beta @ Q @ beta) + self.mu * inv_tau + self.b)

    def outside(self, features: ArrayLike) -> float:
        """How far rows of features lie outside the fitted range, each summary in units of
        its range, added (0 inside; 0 when no range is recorded)."""
        if self.low is None or self.high is None:
            return 0.0
        z = self.summaries(features)
        span = np.where(self.high > self.low, self.high - self.low, 1.0)
        return float(((np.maximum(self.low - z, 0) + np.maximum(z - self.high, 0)) / span).sum())

    def predict_ratio(self, features: ArrayLike) -> NDArray[np.float64]:
        """The improvement ratio ``f`` (infinite where ``1/f <= 0``: a rating, use ranks)."""
        inv = self.inverse(features)
        with np.errstate(divide="ignore"):
            return np.where(inv > 0, 1.0 / np.where(inv > 0, inv, 1.0), np.inf)


@dataclass
class _Standardised:
    """Experiences in the units the fit works in."""

    d: NDArray[np.float64]
    Q: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    scale_d: NDArray[np.float64]
    scale_x: float
    scale_q: float
    mean_y: float
    scale_y: float

    @classmethod
    def of(cls, F: NDArray[np.float64], y: NDArray[np.float64]) -> _Standardised:
        d, Q, x = split_features(F)

        def spread(v: NDArray[np.float64]) -> Any:
            sd = v.std(0)
            return np.where(sd > 0, sd, 1.0)

        sd, sx, sy = spread(d), float(spread(x)), float(spread(y))
        Qs = Q / np.outer(sd, sd)[None]
        trace = np.trace(Qs, axis1=1, axis2=2) / Qs.shape[1]
        sq = float(np.median(trace)) if np.median(trace) > 0 else 1.0
        return cls(d / sd, Qs / sq, x / sx, (y - y.mean()) / sy, sd, sx, sq,
                   float(y.mean()), sy)

    def predict(self, theta: NDArray[np.float64], rows: Any = slice(None)) -> Any:
        k = self.d.shape[1]
        beta, lam, mu, b = theta[:k], theta[k], theta[k + 1], theta[k + 2]
        q = np.einsum("k,nkl,l->n", beta, self.Q[rows], beta)
        return self.d[rows] @ beta + lam * q + mu * self.x[rows] + b

    def original(self, theta: NDArray[np.float64]) -> tuple[Any, float, float, float]:
        """``(beta, lambda, mu, b)`` on the raw features and ratios."""
        k = self.d.shape[1]
        beta = theta[:k] / self.scale_d * self.scale_y
        lam = theta[k] / self.scale_q / self.scale_y
        mu = theta[k + 1] / self.scale_x * self.scale_y
        return beta, float(lam), float(mu), float(theta[k + 2] * self.scale_y + self.mean_y)


def _solve(data: _Standardised, rows: Any, gamma: float) -> NDArray[np.float64]:
    """The standardised ``(beta, lambda, mu, b)`` minimising the squared error on ``rows``
    plus ``gamma`` times the squares of beta, lambda and mu; beta, lambda >= 0."""
    from scipy.optimize import least_squares, lsq_linear

    k = data.d.shape[1]
    idx = np.arange(len(data.y))[rows]
    n = len(idx)
    # start: the fit without the variance term (linear, bounded)
    A = np.column_stack([data.d[idx], data.x[idx], np.ones(n)])
    A = np.vstack([A, np.sqrt(gamma) * np.eye(k + 2)[: k + 1]])
    rhs = np.concatenate([data.y[idx], np.zeros(k + 1)])
    lower = np.r_[np.zeros(k), -np.inf, -np.inf]
    lin = lsq_linear(A, rhs, bounds=(lower, np.full(k + 2, np.inf)), method="bvls").x
    theta0 = np.r_[np.maximum(lin[:k], 0.0), 0.0, lin[k], lin[k + 1]]  # bvls may undershoot
    penalised = np.r_[np.ones(k + 2), 0.0]

    def residuals(theta: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.concatenate([data.predict(theta, idx) - data.y[idx],
                               np.sqrt(gamma) * theta * penalised])

    lo = np.r_[np.zeros(k + 1), -np.inf, -np.inf]
    return np.asarray(least_squares(residuals, theta0, bounds=(lo, np.full(k + 3, np.inf)),
                                    method="trf", ftol=1e-12, xtol=1e-12, gtol=1e-12).x)


def fit_reflection(
    features: ArrayLike,
    ratios: ArrayLike,
    groups: Sequence[Any] | None = None,
    gamma1: float | str = "cv",
    n_folds: int = 5,
) -> ReflectionFunction:
    """Fit the reflection function to experiences (rows of features, their ratios ``l``).

    Parameters
    ----------
    features : array (n, K + K^2 + 1)
        ``[d_1..d_K, Q (row by row), 1/tau]`` per experience.
    ratios : array (n,)
        Improvement ratios ``l_e`` (> 0); the fit is on ``1 / l_e``.
    groups : sequence, optional
        The pair of each experience: cross-validation folds never split a pair.
    gamma1 : float or "cv"
        Ridge penalty on the standardised coefficients, or chosen from
        ``GAMMA_GRID`` by grouped K-fold error on ``1/l``.

    Examples
    --------
    Experiences whose ratio falls as the discrepancy ``d`` grows (one kernel):

    >>> rng = np.random.default_rng(0)
    >>> d = rng.uniform(0, 1, (40, 1))
    >>> features = np.hstack([d, rng.uniform(0, 0.01, (40, 1)), rng.uniform(1, 2, (40, 1))])
    >>> ratios = 1.0 / (0.8 + 0.5 * d[:, 0])
    >>> f = fit_reflection(features, ratios, groups=np.repeat(np.arange(8), 5))
    >>> bool(f.beta[0] > 0)                        # more discrepancy, worse transfer
    True
    """
    F = np.asarray(features, dtype=np.float64)
    r = np.asarray(ratios, dtype=np.float64)
    if F.ndim != 2:
        raise ValueError(f"features must be (n, K + K^2 + 1); got shape {F.shape}")
    k = n_kernels_of(F.shape[1])
    if r.shape != (len(F),):
        raise ValueError(f"{len(F)} feature rows but ratios of shape {r.shape}")
    if not (np.isfinite(F).all() and np.isfinite(r).all()) or (r <= 0).any():
        raise ValueError("features must be finite and ratios finite and > 0")
    if len(F) < k + 5:
        raise ValueError(f"{len(F)} experiences cannot support a fit of {k + 3} "
                         f"coefficients; generate more experiences")
    data = _Standardised.of(F, 1.0 / r)
    if gamma1 == "cv":
        gamma1 = _choose_gamma(data, groups, n_folds)
    elif isinstance(gamma1, str) or not float(gamma1) >= 0:
        raise ValueError(f"gamma1 must be a float >= 0 or 'cv'; got {gamma1!r}")
    beta, lam, mu, b = data.original(_solve(data, slice(None), float(gamma1)))
    fitted = ReflectionFunction(beta, float(lam), float(mu), float(b), float(gamma1))
    z = fitted.summaries(F)
    return ReflectionFunction(beta, float(lam), float(mu), float(b), float(gamma1),
                              z.min(axis=0), z.max(axis=0))


def _choose_gamma(data: _Standardised, groups: Sequence[Any] | None, n_folds: int) -> float:
    from sklearn.model_selection import GroupKFold

    n = len(data.y)
    g = np.arange(n) if groups is None else np.asarray([str(x) for x in groups])
    folds = min(n_folds, len(np.unique(g)))
    if folds < 2:
        return 1.0
    errors = []
    for gamma in GAMMA_GRID:
        err = 0.0
        for tr, te in GroupKFold(folds).split(data.d, data.y, g):
            theta = _solve(data, tr, gamma)
            err += float(((data.predict(theta, te) - data.y[te]) ** 2).sum())
        errors.append(err)
    return float(GAMMA_GRID[int(np.argmin(errors))])


def optimise_projection(
    stats: PairStatistics,
    reflection: ReflectionFunction,
    W0: ArrayLike,
    gamma2: float = 1e-3,
    steps: int = 100,
    lr: float = 0.01,
) -> tuple[NDArray[np.float64], list[float]]:
    """Gradient descent on ``1/f(W) + gamma2 ||W||^2`` from ``W0``, held to the fitted
    region.

    ``W0`` is rescaled to Frobenius norm ``sqrt(p)`` (an orthonormal basis's) first. The
    descent stops at the first iterate that lies further outside the range of the
    experiences than ``W0`` did (:meth:`ReflectionFunction.outside`; the trust region of
    the module docstring). The iterate with the lowest objective is returned with the
    objective's history (``history[0]`` is the start; an iterate that left the region is
    not in it).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> stats = PairStatistics.from_arrays(rng.normal(size=(40, 3)), rng.normal(0.5, 1, (40, 3)))
    >>> f = ReflectionFunction(beta=np.full(5, 1.0), lam=0.0, mu=0.0, b=0.1)
    >>> W, history = optimise_projection(stats, f, np.eye(3)[:, :2], steps=20)
    >>> W.shape, min(history) <= history[0]       # the best iterate is kept
    ((3, 2), True)
    """
    w0 = np.asarray(W0, dtype=np.float64)
    if w0.ndim != 2 or w0.shape[0] != stats.Xs.shape[1]:
        raise ValueError(f"W0 must have shape ({stats.Xs.shape[1]}, p); got {w0.shape}")
    if int(steps) < 0 or not lr > 0 or not gamma2 >= 0:
        raise ValueError(f"need steps >= 0, lr > 0, gamma2 >= 0; got {steps}, {lr}, {gamma2}")
    w0 = w0 * np.sqrt(w0.shape[1]) / max(np.linalg.norm(w0), 1e-300)
    W = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([W], lr=lr)
    best, best_W, history = np.inf, w0, []
    allowed = None
    for step in range(int(steps) + 1):
        features = reflection_features(W, stats)
        outside = reflection.outside(features.detach().numpy())
        if allowed is None:
            allowed = outside + 1e-12
        elif outside > allowed:
            break  # beyond the experiences: the fitted function extrapolates
        objective = reflection.inverse_torch(features) + gamma2 * (W * W).sum()
        value = float(objective.detach())
        history.append(value)
        if np.isfinite(value) and value < best:
            best, best_W = value, W.detach().numpy().copy()
        if step == steps:
            break
        opt.zero_grad()
        objective.backward()
        opt.step()
    return best_W, history


@dataclass
class Transferred:
    """What :meth:`L2T.transfer` learned for one pair.

    ``W`` (d, p) is the optimised projection (p = d when the start was ``identity``),
    ``start`` the base algorithm it started from, ``scores`` every start's ``1/f``,
    ``history`` the objective along the descent, ``classifier`` the fitted target model.

    Examples
    --------
    What :meth:`L2T.transfer` returns (see :class:`L2T`); by hand:

    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> knn = KNeighborsClassifier(1).fit(np.array([[0.0], [5.0]]), [0, 1])
    >>> Transferred(np.array([[1.0], [0.0]]), "identity", knn).predict([[4.0, 9.0], [1.0, 9.0]])
    array([1, 0])
    """

    W: NDArray[np.float64]
    start: str
    classifier: Any
    history: list[float] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)

    def predict(self, X: ArrayLike) -> NDArray[np.int64]:
        return self.classifier.predict(np.asarray(X, dtype=np.float64) @ self.W)


class L2T(Params):
    """Learning to transfer: fit a reflection function to experiences, then transfer.

    Parameters
    ----------
    algorithms : sequence of str
        Base algorithms whose projections are candidate starts for a new pair.
    n_components : int
        Latent dimension p of the projections.
    gamma1 : float or "cv"
        Ridge penalty of the reflection fit.
    gamma2, steps, lr :
        The inference objective's penalty on ``||W||^2``, Adam steps and step size.
    classifier : {"1nn", "logreg"}
    seed : int
        The pairing of the linear-time variance estimate.

    Examples
    --------
    >>> import numpy as np
    >>> from transferkit.l2t import ExperienceStore, L2T, TransferPair, generate_experiences
    >>> rng = np.random.default_rng(0)
    >>> def pair(shift):
    ...     ys = np.repeat([0, 1], 30); yt = np.repeat([0, 1], 20)
    ...     Xs = rng.normal(size=(60, 6)) + 2 * ys[:, None]
    ...     Xt = rng.normal(size=(40, 6)) + 2 * yt[:, None] + shift
    ...     return TransferPair(Xs, ys, Xt[4:], Xt[[0, 1, 38, 39]], yt[[0, 1, 38, 39]],
    ...                         Xt[4:], yt[4:])
    >>> store = generate_experiences(((f"p{i}", pair(i / 4)) for i in range(6)),
    ...                              ExperienceStore(), n_components=3)
    >>> model = L2T(n_components=3, steps=5).fit(store)
    >>> p = pair(0.5)
    >>> out = model.transfer(p.Xs, p.ys, p.Xt, p.Xt_labelled, p.yt_labelled)
    >>> out.start in model.algorithms, out.W.shape[0], len(out.predict(p.X_test))
    (True, 6, 36)
    """

    def __init__(self, algorithms: Sequence[str] = DEFAULT_BASES,
                 n_components: int = 16, gamma1: float | str = "cv", gamma2: float = 1e-3,
                 steps: int = 100, lr: float = 0.01, classifier: str = "1nn",
                 seed: int = 0) -> None:
        self.algorithms = algorithms
        self.n_components = n_components
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        self.steps = steps
        self.lr = lr
        self.classifier = classifier
        self.seed = seed

    def fit(self, experiences: ExperienceStore) -> L2T:
        """Fit the reflection function to a store's experiences."""
        if not isinstance(experiences, ExperienceStore):
            raise TypeError(f"fit needs an ExperienceStore; got {type(experiences).__name__}")
        if self.classifier not in ("1nn", "logreg"):
            raise ValueError(f"classifier must be '1nn' or 'logreg'; got {self.classifier!r}")
        F, r, groups = experiences.arrays()
        self.reflection_ = fit_reflection(F, r, groups, self.gamma1)
        self.exponents_ = experiences.exponents
        self.n_neighbors_ = experiences.n_neighbors
        return self

    def statistics(self, Xs: ArrayLike, Xt: ArrayLike) -> PairStatistics:
        check_fitted(self, "reflection_")
        return PairStatistics.from_arrays(Xs, Xt, self.exponents_, self.n_neighbors_,
                                          self.seed)

    def score_projection(self, W: ArrayLike, stats: PairStatistics) -> float:
        """``1/f`` of projection ``W`` (smaller: more improvement expected)."""
        check_fitted(self, "reflection_")
        return float(self.reflection_.inverse(reflection_features(W, stats).detach().numpy()))

    def transfer(self, Xs: ArrayLike, ys: ArrayLike, Xt: ArrayLike, Xt_labelled: ArrayLike,
                 yt_labelled: ArrayLike,
                 starts: Mapping[str, ArrayLike] | None = None) -> Transferred:
        """Learn ``W`` for a new pair and a target classifier in the latent space.

        ``starts`` (algorithm name -> its projection for this pair) reuses projections
        already computed; by default each of ``algorithms`` is run here.
        """
        check_fitted(self, "reflection_")
        pair = TransferPair(np.asarray(Xs), np.asarray(ys), np.asarray(Xt),
                            np.asarray(Xt_labelled), np.asarray(yt_labelled))
        stats = self.statistics(pair.Xs, pair.target)
        if starts is None:
            starts = {a: create_base_algorithm(a)(pair.Xs, pair.ys, pair.target,
                                                  min(self.n_components, pair.Xs.shape[1]))
                      for a in self.algorithms}
        scores = {a: self.score_projection(Wa, stats) for a, Wa in starts.items()}
        start = min(scores, key=lambda a: scores[a])
        W, history = optimise_projection(stats, self.reflection_, starts[start],
                                         self.gamma2, self.steps, self.lr)
        X = np.vstack([pair.Xs, pair.Xt_labelled]) @ W
        y = np.concatenate([pair.ys, pair.yt_labelled])
        if self.classifier == "1nn":
            from sklearn.neighbors import KNeighborsClassifier

            clf: Any = KNeighborsClassifier(n_neighbors=1).fit(X, y)
        else:
            from sklearn.linear_model import LogisticRegression

            clf = LogisticRegression(max_iter=2000).fit(X, y)
        return Transferred(W, start, clf, history, scores)
