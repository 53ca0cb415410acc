"""Bias-corrected temperature scaling (BCTS) of a black box's probabilities.

Alexandari, Kundaje, Shrikumar, "Maximum Likelihood with Bias-Corrected Calibration is
Hard-To-Beat at Label Shift Adaptation" (ICML 2020, https://proceedings.mlr.press/v119/alexandari20a.html).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["apply_bcts", "fit_bcts"]

_EPS = 1e-12
_BLOCK = 1 << 16  # entries per block of apply_bcts (512 KB of float64)


def _log_proba(p: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(p, _EPS))


def fit_bcts(
    proba: np.ndarray, labels: NDArray[np.int64], bias: bool = True
) -> tuple[float, NDArray[np.float64]]:
    """Fit BCTS (Alexandari et al. 2020, https://proceedings.mlr.press/v119/alexandari20a.html).

    Finds a temperature ``T`` and per-class biases ``b`` minimising the negative
    log-likelihood of ``softmax(log(proba) / T + b)`` on held-out labels. With
    ``bias=False`` it is plain temperature scaling (``b = 0``).

    Parameters
    ----------
    proba : array, shape (n, n_classes)
        The black box's probabilities on labelled held-out data (logits work too after
        a softmax; only ``log(proba)`` up to a per-row constant matters).
    labels : int array, shape (n,)
    bias : bool

    Returns
    -------
    temperature : float
    bias : ndarray, shape (n_classes,)

    Examples
    --------
    >>> p = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> t, b = fit_bcts(p, np.array([0, 1, 1, 0]))
    >>> bool(t > 0), b.shape
    (True, (2,))
    """
    logp = _log_proba(np.asarray(proba, dtype=np.float64))
    m, k = logp.shape
    onehot = np.zeros((m, k))
    onehot[np.arange(m), labels] = 1.0

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        s = np.exp(theta[0])
        b = theta[1:] if bias else np.zeros(k)
        z = logp * s + b
        zmax = z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z - zmax).sum(axis=1, keepdims=True)) + zmax
        nll = float(np.mean(lse[:, 0] - (z * onehot).sum(axis=1)))
        g = (np.exp(z - lse) - onehot) / m
        grad_s = float((g * logp).sum()) * s
        grad = np.concatenate([[grad_s], g.sum(axis=0) if bias else np.zeros(0)])
        return nll, grad

    from scipy.optimize import minimize

    theta0 = np.zeros(1 + (k if bias else 0))
    res = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                   bounds=[(-5.0, 5.0)] + [(None, None)] * (k if bias else 0))
    b = res.x[1:] - res.x[1:].mean() if bias else np.zeros(k)
    return float(np.exp(-res.x[0])), np.asarray(b, dtype=np.float64)


def apply_bcts(proba: np.ndarray, temperature: float, bias: NDArray[np.float64]) -> np.ndarray:
    """``softmax(log(proba) / temperature + bias)`` row by row (float64 result).

    Examples
    --------
    >>> apply_bcts(np.array([[0.5, 0.5]]), 1.0, np.zeros(2)).tolist()
    [[0.5, 0.5]]
    """
    proba = np.asarray(proba)
    out = np.empty(proba.shape, dtype=np.float64)
    # block by block, so that every step after the first read works in cache (the same
    # operations per element and per row as on the whole array: identical results)
    rows = max(1, _BLOCK // max(1, proba.shape[-1]))
    for start in range(0, proba.shape[0], rows):
        z = out[start : start + rows]
        np.maximum(proba[start : start + rows], _EPS, out=z, dtype=np.float64)
        np.log(z, out=z)
        z *= 1.0 / temperature
        z += bias
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
    return out
