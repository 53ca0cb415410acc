"""Base transfer algorithms: each learns a latent projection ``W`` (d, p) for a pair.

The common interface is ``fit(Xs, ys, Xt, n_components) -> W``; the projected data are
``X @ W`` for both domains. L2T (Wei et al., ICML 2018) learns from the experiences these
produce. The paper's bank (TCA, ITL, CMF, LSDT, STL, DIP, SIE, GFK) has no public code in
one place; ours is the four the issue names, each a few lines of linear algebra:

- ``identity``: no projection (``W = I``; the pair's raw features);
- ``pca``: the leading principal axes of source and target pooled;
- ``tca``: transfer component analysis with a linear kernel in its primal form (Pan et al.
  2011): the directions maximising the pooled variance ``X^T H X`` against the
  squared mean discrepancy plus ``mu I`` (a generalised eigenproblem);
- ``coral``: "CORAL as a projection", our construction: inside the leading ``2p``-d pooled
  principal subspace, the ``p`` generalised eigenvectors of (source, target) covariance
  whose eigenvalue is nearest 1, i.e. the directions where the two domains' second
  moments agree (CORAL's loss is small there), as unit vectors (not whitened: whitening
  gives every direction, informative or not, the same weight in the distances).

Register another with :func:`register_base_algorithm`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import linalg

from .._registry import Registry

__all__ = ["create_base_algorithm", "list_base_algorithms", "register_base_algorithm"]

BaseAlgorithm = Callable[[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], int],
                         NDArray[np.float64]]
BASE_ALGORITHMS: Registry[BaseAlgorithm] = Registry("base transfer algorithm")


def register_base_algorithm(name: str) -> Callable[[BaseAlgorithm], BaseAlgorithm]:
    """Decorator: register ``fit(Xs, ys, Xt, n_components) -> W`` under ``name``.

    Examples
    --------
    >>> def first_axes(xs, ys, xt, p):
    ...     return np.eye(xs.shape[1])[:, :p]
    >>> with BASE_ALGORITHMS.temporary("first-axes-demo", first_axes):
    ...     fit = create_base_algorithm("first-axes-demo")
    ...     fit(np.ones((4, 3)), [0, 1, 0, 1], np.ones((5, 3)), 2).shape
    (3, 2)
    """
    return BASE_ALGORITHMS.decorator(name)


def list_base_algorithms() -> list[str]:
    """Names of the registered base transfer algorithms.

    Examples
    --------
    >>> list_base_algorithms()
    ['coral', 'identity', 'pca', 'tca']
    """
    return BASE_ALGORITHMS.names()


def create_base_algorithm(name: str) -> Callable[..., NDArray[np.float64]]:
    """The algorithm ``name`` wrapped with input checks: ``fit(Xs, ys, Xt, n_components)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Xs, Xt = rng.normal(size=(30, 5)), rng.normal(1.0, 1.0, size=(40, 5))
    >>> W = create_base_algorithm("tca")(Xs, rng.integers(0, 2, 30), Xt, 2)
    >>> W.shape
    (5, 2)
    """
    algorithm = BASE_ALGORITHMS.get(name)

    def fit(Xs: ArrayLike, ys: ArrayLike, Xt: ArrayLike, n_components: int
            ) -> NDArray[np.float64]:
        xs = np.asarray(Xs, dtype=np.float64)
        xt = np.asarray(Xt, dtype=np.float64)
        if xs.ndim != 2 or xt.ndim != 2 or xs.shape[1] != xt.shape[1]:
            raise ValueError(f"Xs and Xt must be 2-d with the same columns; got shapes "
                             f"{xs.shape} and {xt.shape}")
        p = int(n_components)
        if not 1 <= p <= xs.shape[1]:
            raise ValueError(f"n_components must be in [1, {xs.shape[1]}]; got {n_components}")
        W = algorithm(xs, np.asarray(ys), xt, p)
        if W.shape[0] != xs.shape[1] or not np.isfinite(W).all():
            raise RuntimeError(f"base algorithm {name!r} returned a bad projection "
                               f"{W.shape}")
        return W

    fit.__name__ = name
    return fit


def _pooled_axes(xs: NDArray[np.float64], xt: NDArray[np.float64], p: int
                 ) -> NDArray[np.float64]:
    X = np.vstack([xs, xt])
    _, _, vt = np.linalg.svd(X - X.mean(0), full_matrices=False)
    return vt[:p].T


@register_base_algorithm("identity")
def _identity(xs: NDArray[np.float64], ys: NDArray[np.int64], xt: NDArray[np.float64],
              p: int) -> NDArray[np.float64]:
    return np.eye(xs.shape[1])


@register_base_algorithm("pca")
def _pca(xs: NDArray[np.float64], ys: NDArray[np.int64], xt: NDArray[np.float64],
         p: int) -> NDArray[np.float64]:
    return _pooled_axes(xs, xt, p)


@register_base_algorithm("tca")
def _tca(xs: NDArray[np.float64], ys: NDArray[np.int64], xt: NDArray[np.float64],
         p: int, mu: float = 1.0) -> NDArray[np.float64]:
    X = np.vstack([xs, xt])
    centred = X - X.mean(0)
    scatter = centred.T @ centred / len(X)
    delta = xs.mean(0) - xt.mean(0)
    # relative to the data's scale, so mu means the same for any units
    ridge = mu * np.trace(scatter) / X.shape[1]
    vals, vecs = linalg.eigh(scatter, np.outer(delta, delta) + ridge * np.eye(X.shape[1]))
    return vecs[:, np.argsort(vals)[::-1][:p]]


@register_base_algorithm("coral")
def _coral(xs: NDArray[np.float64], ys: NDArray[np.int64], xt: NDArray[np.float64],
           p: int) -> NDArray[np.float64]:
    d = xs.shape[1]
    P = _pooled_axes(xs, xt, min(d, 2 * p))
    zs, zt = xs @ P, xt @ P
    cs = np.cov(zs, rowvar=False) + 1e-6 * np.eye(P.shape[1])
    ct = np.cov(zt, rowvar=False) + 1e-6 * np.eye(P.shape[1])
    vals, vecs = linalg.eigh(cs, ct)  # vecs^T ct vecs = I, vecs^T cs vecs = diag(vals)
    order = np.argsort(np.abs(np.log(np.clip(vals, 1e-12, None))))[:p]
    directions = vecs[:, order]
    return P @ (directions / np.linalg.norm(directions, axis=0))
