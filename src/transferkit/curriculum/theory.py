"""The paper's two theorems, checked by Monte Carlo on linear regression.

Weinshall, Cohen, Amir (ICML 2018, arXiv 1802.03796), section 2: for linear regression
``y = w*.x + eps`` trained by SGD, define the *difficulty* of a point as the loss of the
optimal hypothesis on it, ``(y - w*.x)^2`` (here: the noise ``eps^2``). The expected
one-step decrease of the squared distance to the optimum, ``||w - w*||^2 - ||w' - w*||^2``
with ``w' = w - lr * grad (w.x - y)^2 / 2``,

1. falls as the difficulty of the point rises (easier points help more), and
2. at fixed difficulty, rises with the point's loss under the current hypothesis ``w``.

:func:`one_step_gain` is that decrease for given points; :func:`monte_carlo_gains` draws
points and returns the mean gain by bins of difficulty and, at a fixed difficulty, by bins
of the current loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["monte_carlo_gains", "one_step_gain"]


def one_step_gain(w: Any, w_star: Any, X: Any, y: Any, lr: float) -> NDArray[np.float64]:
    """``||w - w*||^2 - ||w' - w*||^2`` for one SGD step on each row of ``(X, y)``.

    Examples
    --------
    >>> float(one_step_gain([0.0], [1.0], [[1.0]], [1.0], lr=0.5)[0])  # w' = 0.5
    0.75
    """
    w, w_star = np.asarray(w, dtype=np.float64), np.asarray(w_star, dtype=np.float64)
    X, y = np.atleast_2d(np.asarray(X, dtype=np.float64)), np.asarray(y, dtype=np.float64)
    residual = X @ w - y                      # d/dw of (w.x - y)^2 / 2 is residual * x
    w_new = w[None, :] - lr * residual[:, None] * X
    return np.asarray(((w - w_star) ** 2).sum() - ((w_new - w_star) ** 2).sum(axis=1))


def monte_carlo_gains(
    dim: int = 5, n: int = 200_000, lr: float = 0.05, noise: float = 1.0, bins: int = 6,
    fixed_difficulty: float = 0.5, seed: int = 0,
) -> dict[str, NDArray[np.float64]]:
    """Mean one-step gains by difficulty, and by current loss at one difficulty.

    Draws ``w*`` and the current ``w`` once (``||w - w*|| = 1``), then ``n`` points
    ``x ~ N(0, I)`` with ``eps ~ N(0, noise^2)``. Returns ``difficulty_bins`` and
    ``gain_by_difficulty`` (means over quantile bins of ``eps^2``, averaged over x), and
    ``loss_bins`` and ``gain_by_loss`` (points with ``|eps| = sqrt(fixed_difficulty)``
    and random sign, binned by their loss under ``w``).

    Examples
    --------
    >>> out = monte_carlo_gains(n=20_000, bins=4)
    >>> bool(np.all(np.diff(out["gain_by_difficulty"]) < 0))
    True
    """
    rng = np.random.default_rng(seed)
    w_star = rng.normal(size=dim)
    direction = rng.normal(size=dim)
    w = w_star + direction / np.linalg.norm(direction)
    X = rng.normal(size=(n, dim))
    eps = rng.normal(scale=noise, size=n)
    gains = one_step_gain(w, w_star, X, X @ w_star + eps, lr)
    difficulty = eps**2
    edges = np.quantile(difficulty, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, difficulty, side="right") - 1, 0, bins - 1)
    by_difficulty = np.array([gains[which == b].mean() for b in range(bins)])
    centres = np.array([difficulty[which == b].mean() for b in range(bins)])
    # fixed difficulty: |eps| fixed, current loss varies with x
    eps_fixed = np.sqrt(fixed_difficulty) * rng.choice([-1.0, 1.0], size=n)
    y_fixed = X @ w_star + eps_fixed
    loss = 0.5 * (X @ w - y_fixed) ** 2
    gains_fixed = one_step_gain(w, w_star, X, y_fixed, lr)
    edges = np.quantile(loss, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, loss, side="right") - 1, 0, bins - 1)
    by_loss = np.array([gains_fixed[which == b].mean() for b in range(bins)])
    loss_centres = np.array([loss[which == b].mean() for b in range(bins)])
    return {"difficulty_bins": centres, "gain_by_difficulty": by_difficulty,
            "loss_bins": loss_centres, "gain_by_loss": by_loss}
