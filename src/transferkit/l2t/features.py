"""What the reflection function sees of a (source, target, W) triple.

For a projection ``W`` (d, p) of a source sample ``Xs`` and a target sample ``Xt`` the
features are, as in Wei et al. (ICML 2018), section 3:

- ``d``: the squared maximum mean discrepancy between ``Xs W`` and ``Xt W`` under each of
  a bank of Gaussian kernels whose widths are the median pairwise distance of the
  projected pooled sample times powers of two (``exponents``);
- ``Q``: the covariance matrix, across the kernels, of those estimates (K x K), which the
  reflection function meets as ``lambda beta^T Q beta``, the variance of the combined
  kernel's estimate;
- ``1 / tau``: ``tau`` is the ratio of the target's non-local to local scatter in the
  latent space (the criterion of unsupervised discriminant projection), large when the
  target forms tight, well-separated groups, i.e. is easy to discriminate there.

The paper takes the multi-kernel MMD and the covariance of its estimates from Gretton et
al. (2012, "Optimal kernel choice for large-scale two-sample tests"); no code is public.
Both ``d`` and ``Q`` are that paper's linear-time estimator, so ``Q`` is the covariance of
the very estimates ``d`` holds: ``d_k`` the mean of the ``h`` statistics of kernel k over
disjoint sample quadruples (a fixed seeded pairing), ``Q`` their covariance across the
kernels divided by the number of quadruples. The widths come from the projected sample
itself, inside the autograd graph, so every feature is invariant to the scale of ``W``.
The local neighbourhoods of ``tau`` (``n_neighbors`` nearest neighbours, symmetrised) are
found once in the original target space.

A feature vector is ``[d_1..d_K, Q_11, Q_12, ..., Q_KK, 1/tau]`` (K + K^2 + 1 values; Q
row by row); :func:`split_features` takes it apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor

__all__ = ["PairStatistics", "linear_mmd2", "median_sq_distance", "mmd2_unbiased",
           "reflection_features", "scatter_matrices", "discriminability", "split_features",
           "n_kernels_of", "DEFAULT_EXPONENTS"]

DEFAULT_EXPONENTS: tuple[int, ...] = (-2, -1, 0, 1, 2)
"""Kernel widths: the median distance times 2^e for each e (five kernels)."""


def _matrix(x: ArrayLike | Tensor, name: str) -> NDArray[np.float64]:
    """``x`` as a float64 (n, features) array; an error names it when it is not 2-d and
    finite."""
    a = np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-d (n, features); got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _sq_dist(a: Tensor, b: Tensor) -> Tensor:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return d.clamp_min(0.0)


def median_sq_distance(z: Tensor) -> Tensor:
    """The median squared distance between distinct rows of ``z`` (differentiable).

    The squared median distance, since squaring is monotone; squared distances avoid the
    square root's infinite gradient at coincident points.

    Examples
    --------
    >>> float(median_sq_distance(torch.tensor([[0.0], [1.0], [3.0]])))
    4.0
    """
    n = len(z)
    if n < 2:
        raise ValueError(f"need at least 2 points for a median distance; got {n}")
    iu = torch.triu_indices(n, n, offset=1)
    d = _sq_dist(z, z)[iu[0], iu[1]]
    med = d.median()
    if not med > 0:
        positive = d[d > 0]
        if len(positive) == 0:
            raise ValueError("all points coincide: no kernel width can be set")
        med = positive.median()
    return med


def _widths(z: Tensor, exponents: tuple[int, ...]) -> Tensor:
    """Squared kernel widths sigma^2 = median^2 * 4^e."""
    med = median_sq_distance(z)
    return med * torch.tensor([4.0 ** e for e in exponents], dtype=z.dtype)


def _check_samples(x: Tensor, y: Tensor) -> None:
    """Two samples of one space: 2-d, the same columns."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be 2-d samples (n, features) of the same features; "
                         f"got shapes {tuple(x.shape)} and {tuple(y.shape)}")


def mmd2_unbiased(x: Tensor, y: Tensor, sq_widths: Tensor) -> Tensor:
    """The unbiased MMD^2 U-statistic for each Gaussian kernel ``exp(-|a-b|^2 / (2 s2))``.

    Returns a tensor of shape ``(len(sq_widths),)``.

    Examples
    --------
    >>> x = torch.zeros(3, 1, dtype=torch.float64); y = torch.ones(3, 1, dtype=torch.float64)
    >>> round(float(mmd2_unbiased(x, y, torch.tensor([0.5], dtype=torch.float64))[0]), 4)
    1.2642
    """
    _check_samples(x, y)
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"the unbiased MMD needs >= 2 points per sample; got {n} and {m}")
    s2 = sq_widths.reshape(-1, 1, 1)
    kxx = torch.exp(-_sq_dist(x, x)[None] / (2 * s2))
    kyy = torch.exp(-_sq_dist(y, y)[None] / (2 * s2))
    kxy = torch.exp(-_sq_dist(x, y)[None] / (2 * s2))
    sxx = (kxx.sum((1, 2)) - kxx.diagonal(dim1=1, dim2=2).sum(1)) / (n * (n - 1))
    syy = (kyy.sum((1, 2)) - kyy.diagonal(dim1=1, dim2=2).sum(1)) / (m * (m - 1))
    return sxx + syy - 2.0 * kxy.mean((1, 2))


def linear_mmd2(x: Tensor, y: Tensor, sq_widths: Tensor) -> tuple[Tensor, Tensor]:
    """Gretton et al.'s linear-time MMD^2 per kernel and the covariance of those estimates.

    With ``m = min(len(x), len(y)) // 2`` disjoint quadruples
    ``h_i = k(x_2i, x_2i+1) + k(y_2i, y_2i+1) - k(x_2i, y_2i+1) - k(x_2i+1, y_2i)``, the
    estimate is ``mean(h)`` per kernel and its covariance across the K kernels ``cov(h) /
    m`` (K x K; the variances on its diagonal). Rows are used in the order given: shuffle
    them first (:class:`PairStatistics` does, with its seed).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g) + 2
    >>> mmd, cov = linear_mmd2(x, y, torch.tensor([1.0, 4.0]))
    >>> mmd.shape, cov.shape, bool((mmd > 0).all()), bool((cov.diagonal() > 0).all())
    (torch.Size([2]), torch.Size([2, 2]), True, True)
    """
    _check_samples(x, y)
    m = min(len(x), len(y)) // 2
    if m < 2:
        raise ValueError(f"the linear-time MMD needs >= 4 points per sample; got "
                         f"{len(x)} and {len(y)}")
    x0, x1 = x[0:2 * m:2], x[1:2 * m:2]
    y0, y1 = y[0:2 * m:2], y[1:2 * m:2]
    s2 = sq_widths.reshape(-1, 1)

    def k(a: Tensor, b: Tensor) -> Tensor:
        return torch.exp(-((a - b) ** 2).sum(1)[None] / (2 * s2))

    h = k(x0, x1) + k(y0, y1) - k(x0, y1) - k(x1, y0)  # (K, m)
    centred = h - h.mean(1, keepdim=True)
    return h.mean(1), centred @ centred.T / ((m - 1) * m)


def n_kernels_of(n_features: int) -> int:
    """K from the length K + K^2 + 1 of a feature vector.

    Examples
    --------
    >>> n_kernels_of(31)
    5
    """
    k = int(round((-1 + (4 * (int(n_features) - 1) + 1) ** 0.5) / 2))
    if k < 1 or k + k * k + 1 != int(n_features):
        raise ValueError(f"a feature vector has K + K^2 + 1 values (d, Q, 1/tau); "
                         f"{n_features} is not of that form")
    return k


def split_features(features: Any) -> tuple[Any, Any, Any]:
    """``(d (..., K), Q (..., K, K), 1/tau (...,))`` of feature vectors (numpy or torch).

    Examples
    --------
    >>> d, Q, inv_tau = split_features(np.arange(7.0))
    >>> d.tolist(), Q.tolist(), float(inv_tau)
    ([0.0, 1.0], [[2.0, 3.0], [4.0, 5.0]], 6.0)
    """
    k = n_kernels_of(features.shape[-1])
    lead = tuple(features.shape[:-1])
    return (features[..., :k], features[..., k:k + k * k].reshape(*lead, k, k),
            features[..., -1])


def scatter_matrices(
    X: ArrayLike, n_neighbors: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """The local and non-local scatter matrices of ``X`` (unsupervised discriminant
    projection): ``S_L = 1/(2n^2) sum_ij H_ij (x_i - x_j)(x_i - x_j)^T`` over the
    symmetrised k-nearest-neighbour graph ``H``, and ``S_N`` the same over the pairs that
    are not neighbours (``S_N = S_T - S_L``, ``S_T`` the biased covariance).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(30, 3))
    >>> s_local, s_nonlocal = scatter_matrices(X, n_neighbors=4)
    >>> s_local.shape, bool(np.allclose(s_local + s_nonlocal, np.cov(X.T, bias=True)))
    ((3, 3), True)
    """
    from sklearn.neighbors import kneighbors_graph

    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if not 1 <= n_neighbors < n:
        raise ValueError(f"n_neighbors must be in [1, {n - 1}] for {n} points; got {n_neighbors}")
    H = kneighbors_graph(X, n_neighbors, include_self=False).toarray()
    H = np.maximum(H, H.T)
    lap = np.diag(H.sum(1)) - H
    s_local = X.T @ lap @ X / n**2
    centred = X - X.mean(0)
    s_total = centred.T @ centred / n
    return s_local, s_total - s_local


def discriminability(W: Tensor, s_local: Tensor, s_nonlocal: Tensor) -> Tensor:
    """``tau = tr(W^T S_N W) / tr(W^T S_L W)``.

    Examples
    --------
    >>> S_L, S_N = torch.eye(2), torch.diag(torch.tensor([4.0, 1.0]))
    >>> float(discriminability(torch.tensor([[1.0], [0.0]]), S_L, S_N))  # the first axis
    4.0
    """
    return (W * (s_nonlocal @ W)).sum() / (W * (s_local @ W)).sum().clamp_min(1e-300)


@dataclass
class PairStatistics:
    """A (source, target) pair prepared once for evaluating features at many ``W``.

    Parameters
    ----------
    Xs : array (n_s, d)
        Source sample (labels are not needed for the features).
    Xt : array (n_t, d)
        Target sample, unlabelled and labelled rows together.
    exponents : tuple of int
        Kernel widths: median distance times 2^e.
    n_neighbors : int
        Neighbourhood size of the target's local scatter.
    seed : int
        Shuffle for the linear-time variance estimate.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> stats = PairStatistics.from_arrays(rng.normal(size=(40, 4)), rng.normal(1, 1, (50, 4)))
    >>> stats.n_features, tuple(stats.s_local.shape)
    (31, (4, 4))
    """

    Xs: Tensor
    Xt: Tensor
    s_local: Tensor
    s_nonlocal: Tensor
    exponents: tuple[int, ...]
    n_neighbors: int

    @classmethod
    def from_arrays(cls, Xs: ArrayLike, Xt: ArrayLike,
                    exponents: tuple[int, ...] = DEFAULT_EXPONENTS, n_neighbors: int = 5,
                    seed: int = 0) -> PairStatistics:
        xs, xt = torch.from_numpy(_matrix(Xs, "Xs")), torch.from_numpy(_matrix(Xt, "Xt"))
        if xs.shape[1] != xt.shape[1]:
            raise ValueError(f"Xs and Xt must share their features; got {xs.shape[1]} and "
                             f"{xt.shape[1]} columns")
        if not exponents:
            raise ValueError("exponents must name at least one kernel width")
        rng = np.random.default_rng(seed)
        xs = xs[torch.as_tensor(rng.permutation(len(xs)))]
        xt = xt[torch.as_tensor(rng.permutation(len(xt)))]
        s_l, s_n = scatter_matrices(xt.numpy(), n_neighbors)
        return cls(xs, xt, torch.as_tensor(s_l), torch.as_tensor(s_n), tuple(exponents),
                   int(n_neighbors))

    @property
    def n_features(self) -> int:
        return len(self.exponents) ** 2 + len(self.exponents) + 1


def reflection_features(W: Tensor | ArrayLike, stats: PairStatistics) -> Tensor:
    """``[d_1..d_K, Q_11..Q_KK, 1/tau]`` of the pair projected by ``W`` (differentiable in W).

    Every feature is invariant to the scale of ``W``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> stats = PairStatistics.from_arrays(rng.normal(size=(40, 4)), rng.normal(1, 1, (50, 4)))
    >>> f = reflection_features(np.eye(4)[:, :2], stats)    # [d (5), Q (5 x 5), 1/tau]
    >>> f.shape, bool(torch.allclose(f, reflection_features(3 * np.eye(4)[:, :2], stats)))
    (torch.Size([31]), True)
    """
    w = W if isinstance(W, Tensor) else torch.as_tensor(np.asarray(W), dtype=torch.float64)
    w = w.to(torch.float64)
    if w.ndim != 2 or w.shape[0] != stats.Xs.shape[1]:
        raise ValueError(f"W must have shape ({stats.Xs.shape[1]}, p); got {tuple(w.shape)}")
    zs, zt = stats.Xs @ w, stats.Xt @ w
    widths = _widths(torch.cat([zs, zt]), stats.exponents)
    d, Q = linear_mmd2(zs, zt, widths)
    tau = discriminability(w, stats.s_local, stats.s_nonlocal)
    return torch.cat([d, Q.reshape(-1), (1.0 / tau).reshape(1)])
