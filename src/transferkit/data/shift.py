"""Label-shift simulators: target class priors and samples drawn with them (seeded).

The three shifts studied by Lipton, Wang, Smola, "Detecting and Correcting for Label Shift
with Black Box Predictors" (ICML 2018, https://proceedings.mlr.press/v80/lipton18a.html):

- :func:`tweak_one_prior`: one class gets probability ``delta``, the others share the rest.
- :func:`dirichlet_prior`: the target prior is drawn from Dirichlet(``alpha``); small alpha
  (0.1) puts nearly all mass on a few classes.
- :func:`knock_out_prior`: a fraction ``delta`` of one class is removed from a base prior.

:func:`sample_with_prior` draws row indices whose labels follow a given prior, so any
labelled pool (a :class:`~transferkit.data.Domain`, an array of predictions) becomes a
label-shifted sample: p(x | y) is the pool's, p(y) is the one you chose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from .domain import Domain

__all__ = [
    "dirichlet_prior",
    "knock_out_prior",
    "sample_with_prior",
    "shift_domain",
    "tweak_one_prior",
]


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(int(seed))


def _check_n_classes(n_classes: int) -> int:
    if int(n_classes) != n_classes or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2; got {n_classes!r}")
    return int(n_classes)


def tweak_one_prior(
    n_classes: int, delta: float, cls: int | None = None, seed: int | np.random.Generator = 0
) -> NDArray[np.float64]:
    """Tweak-one shift (Lipton et al. 2018, https://proceedings.mlr.press/v80/lipton18a.html).

    Parameters
    ----------
    n_classes : int
    delta : float in [0, 1]
        Probability of the tweaked class; the other classes share ``1 - delta`` equally.
    cls : int, optional
        The tweaked class; drawn uniformly with ``seed`` when None.
    seed : int or numpy Generator

    Returns
    -------
    ndarray, shape (n_classes,)
        The target prior.

    Examples
    --------
    >>> tweak_one_prior(4, 0.7, cls=2).round(2).tolist()
    [0.1, 0.1, 0.7, 0.1]
    """
    k = _check_n_classes(n_classes)
    if not 0.0 <= delta <= 1.0:
        raise ValueError(f"delta must be in [0, 1]; got {delta}")
    if cls is None:
        cls = int(_rng(seed).integers(k))
    if not 0 <= cls < k:
        raise ValueError(f"cls must be in [0, {k}); got {cls}")
    prior = np.full(k, (1.0 - delta) / (k - 1))
    prior[cls] = delta
    return prior


def dirichlet_prior(
    n_classes: int, alpha: float, seed: int | np.random.Generator = 0
) -> NDArray[np.float64]:
    """Dirichlet shift (Lipton et al. 2018, https://proceedings.mlr.press/v80/lipton18a.html).

    Parameters
    ----------
    n_classes : int
    alpha : float > 0
        Concentration of the symmetric Dirichlet; 0.1 is a large shift, 10 a mild one.
    seed : int or numpy Generator

    Returns
    -------
    ndarray, shape (n_classes,)
        A target prior drawn from Dirichlet(alpha, ..., alpha).

    Examples
    --------
    >>> p = dirichlet_prior(10, 0.1, seed=0)
    >>> p.shape, bool(abs(p.sum() - 1) < 1e-12)
    ((10,), True)
    """
    k = _check_n_classes(n_classes)
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0; got {alpha}")
    rng = _rng(seed)
    prior = rng.dirichlet(np.full(k, float(alpha)))
    # Dirichlet with tiny alpha can underflow to a vector of zeros plus NaN; redraw via gammas.
    while not np.all(np.isfinite(prior)) or prior.sum() <= 0:  # pragma: no cover - rare
        g = rng.gamma(float(alpha), size=k)
        prior = g / g.sum() if g.sum() > 0 else prior
    return np.asarray(prior / prior.sum(), dtype=np.float64)


def knock_out_prior(base_prior: ArrayLike, cls: int, delta: float) -> NDArray[np.float64]:
    """Knock-out shift (Lipton et al. 2018, https://proceedings.mlr.press/v80/lipton18a.html).

    A fraction ``delta`` of class ``cls`` is removed and the prior renormalised.

    Parameters
    ----------
    base_prior : array, shape (n_classes,)
        The prior before the shift (non-negative, sums to one).
    cls : int
        The class whose examples are knocked out.
    delta : float in [0, 1]
        Fraction removed; 1 removes the class entirely.

    Returns
    -------
    ndarray, shape (n_classes,)

    Examples
    --------
    >>> knock_out_prior([0.5, 0.5], cls=0, delta=0.5).round(4).tolist()
    [0.3333, 0.6667]
    """
    p = np.asarray(base_prior, dtype=np.float64)
    if p.ndim != 1 or len(p) < 2 or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"base_prior must be a 1-d probability vector; got {p!r}")
    if not 0 <= cls < len(p):
        raise ValueError(f"cls must be in [0, {len(p)}); got {cls}")
    if not 0.0 <= delta <= 1.0:
        raise ValueError(f"delta must be in [0, 1]; got {delta}")
    q = p.copy()
    q[cls] *= 1.0 - delta
    if q.sum() <= 0:
        raise ValueError("knocking out this class leaves no probability mass")
    return q / q.sum()


def sample_with_prior(
    labels: ArrayLike | torch.Tensor,
    prior: ArrayLike,
    n: int,
    seed: int | np.random.Generator = 0,
    replace: bool = True,
) -> NDArray[np.int64]:
    """Row indices of a pool whose labels follow ``prior`` (label shift by resampling).

    Class counts are drawn Multinomial(n, prior); then rows of each class are drawn
    uniformly from the pool (with replacement by default, so a large sample can come from a
    small pool: the pool's own p(x | y) is then the population's).

    Parameters
    ----------
    labels : array or Tensor, shape (n_pool,), int
        Labels of the pool, in ``0 .. len(prior) - 1``.
    prior : array, shape (n_classes,)
        Target class prior.
    n : int
        Sample size.
    seed : int or numpy Generator
    replace : bool
        Without replacement a class needs at least as many pool rows as drawn.

    Returns
    -------
    ndarray of int64, shape (n,)
        Shuffled indices into the pool.

    Examples
    --------
    >>> y = np.repeat(np.arange(3), 100)
    >>> idx = sample_with_prior(y, [0.0, 0.0, 1.0], 50, seed=1)
    >>> bool((y[idx] == 2).all()), len(idx)
    (True, 50)
    """
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be a 1-d integer array; got shape {y.shape}, {y.dtype}")
    q = np.asarray(prior, dtype=np.float64)
    if q.ndim != 1 or np.any(q < 0) or not np.isclose(q.sum(), 1.0, atol=1e-8):
        raise ValueError(f"prior must be a non-negative vector summing to one; got {q!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}")
    if len(y) and (y.min() < 0 or y.max() >= len(q)):
        raise ValueError(f"labels must lie in [0, {len(q)}); got range [{y.min()}, {y.max()}]")
    rng = _rng(seed)
    counts = rng.multinomial(int(n), q / q.sum())
    parts = []
    for c in np.flatnonzero(counts):
        rows = np.flatnonzero(y == c)
        if len(rows) == 0:
            raise ValueError(f"class {c} has prior {q[c]:.3g} but no rows in the pool")
        if not replace and len(rows) < counts[c]:
            raise ValueError(
                f"class {c}: {counts[c]} rows drawn without replacement but the pool has "
                f"{len(rows)}; pass replace=True or a smaller n"
            )
        parts.append(rng.choice(rows, size=int(counts[c]), replace=replace))
    idx = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    return np.asarray(rng.permutation(idx), dtype=np.int64)


def shift_domain(
    domain: Domain,
    prior: Sequence[float] | ArrayLike,
    n: int,
    seed: int | np.random.Generator = 0,
    replace: bool = True,
) -> Domain:
    """A label-shifted sample of ``domain`` with class prior ``prior`` (see
    :func:`sample_with_prior`), named ``"<name>@shifted"``.

    Examples
    --------
    >>> from transferkit.data import load_digits
    >>> d = shift_domain(load_digits(), tweak_one_prior(10, 1.0, cls=3), 20, seed=0)
    >>> d.classes
    [3]
    """
    k = int(domain.labels.max()) + 1
    q = np.asarray(prior, dtype=np.float64)
    if len(q) < k:
        raise ValueError(f"prior has {len(q)} entries; the domain has labels up to {k - 1}")
    idx = sample_with_prior(domain.labels, q, n, seed, replace)
    return domain.subset(torch.from_numpy(idx), f"{domain.name}@shifted")
