"""Base transfer algorithms: each learns a latent projection ``W`` (d, p) for a pair.

The common interface is ``fit(Xs, ys, Xt, n_components) -> W``; the projected data are
``X @ W`` for both domains (one shared latent space, as L2T's ``W``). L2T (Wei et al.,
ICML 2018) learns from the experiences these produce; the paper's bank is TCA, ITL, CMF,
LSDT, STL, DIP, SIE and GFK. Ours takes the published ones a maintained library offers
with a shared linear projection, from skada (the extra ``transfer``; imported when used):

- ``tca``: transfer component analysis (Pan et al., 2011), skada's
  ``TransferComponentAnalysisAdapter`` with a linear kernel (so the projection is
  ``[Xs; Xt]^T A`` in the input space), its default ``mu``;
- ``tsl``: transfer subspace learning (Si et al., 2010), skada's
  ``TransferSubspaceLearningAdapter`` (Fisher LDA objective plus a divergence term,
  orthonormal ``W``), its defaults;

and two references without adaptation, as the paper's "without transfer" side:

- ``identity``: no projection (``W = I``; the pair's raw features);
- ``pca``: the leading principal axes of source and target pooled.

Subspace alignment and CORAL (also in skada) map the source and the target by different
matrices, so they have no shared ``W`` and are left out; skada's transfer joint matching
has a shared linear ``W`` only with a linear kernel, where its generalised eigenproblem
is singular (the Gram matrix of 64 features over hundreds of rows) and it fails.
Register another with :func:`register_base_algorithm`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._registry import Registry

__all__ = ["DEFAULT_BASES", "create_base_algorithm", "list_base_algorithms",
           "register_base_algorithm"]

DEFAULT_BASES: tuple[str, ...] = ("identity", "pca", "tca", "tsl")
"""The base algorithms L2T starts from by default."""

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
    ['identity', 'pca', 'tca', 'tsl']
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


def _skada(name: str) -> Any:
    try:
        import skada
    except ImportError as err:  # pragma: no cover - the extra is installed with claims
        raise ImportError(f"the base algorithm {name!r} uses skada: pip install "
                          f"'transferkit[transfer]' (or pip install skada)") from err
    return skada


def _domains(xs: NDArray[np.float64], ys: NDArray[np.int64], xt: NDArray[np.float64]
             ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """skada's stacked form: source rows with domain 1 and their labels, target rows with
    domain -1 and label -1 (unlabelled)."""
    X = np.vstack([xs, xt])
    y = np.concatenate([np.asarray(ys, dtype=np.int64), np.full(len(xt), -1)])
    domain = np.concatenate([np.ones(len(xs), dtype=np.int64), -np.ones(len(xt), dtype=np.int64)])
    return X, y, domain


@register_base_algorithm("tca")
def _tca(xs: NDArray[np.float64], ys: NDArray[np.int64], xt: NDArray[np.float64],
         p: int) -> NDArray[np.float64]:
    adapter = _skada("tca").TransferComponentAnalysisAdapter(kernel="linear", n_components=p)
    X, y, domain = _domains(xs, ys, xt)
    adapter.fit(X, y, sample_domain=domain)
    return np.asarray(np.vstack([adapter.X_source_, adapter.X_target_]).T @ adapter.eigvects_)


@register_base_algorithm("tsl")
def _tsl(xs: NDArray[np.float64], ys: NDArray[np.int64], xt: NDArray[np.float64],
         p: int) -> NDArray[np.float64]:
    adapter = _skada("tsl").TransferSubspaceLearningAdapter(n_components=p)
    X, y, domain = _domains(xs, ys, xt)
    with warnings.catch_warnings():
        # skada copies its start tensor the way torch warns of; and at its defaults (100
        # iterations, tol 0.01) its solver often stops short of its tolerance: the
        # projection is still a valid start, and every experience measures what it gives
        warnings.filterwarnings("ignore", message="To copy construct", category=UserWarning)
        warnings.filterwarnings("ignore", message="Optimization did not converge",
                                category=UserWarning)
        adapter.fit(X, y, sample_domain=domain)
    W = adapter.W_
    return np.asarray(W.detach().numpy() if hasattr(W, "detach") else W, dtype=np.float64)
