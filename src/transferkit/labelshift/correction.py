"""Label-shift correction: posterior reweighting and importance weights for retraining.

Lipton, Wang, Smola (ICML 2018, https://proceedings.mlr.press/v80/lipton18a.html).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from ._validation import as_numpy, check_labels, check_proba

__all__ = ["importance_weights", "reweight_posteriors"]

if TYPE_CHECKING:  # torch is imported only when a tensor comes in (keeps import fast)
    import torch

    _T = TypeVar("_T", np.ndarray, torch.Tensor)
else:
    _T = TypeVar("_T")


def _check_weights(weights: Any, k: int | None) -> NDArray[np.float64]:
    w = np.asarray(as_numpy(weights, "weights"), dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"weights must be 1-d (n_classes,); got shape {w.shape}")
    if k is not None and len(w) != k:
        raise ValueError(f"weights have {len(w)} entries but the probabilities have {k} classes")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"weights must be finite and non-negative; got {w}")
    return w


def reweight_posteriors(proba: Any, weights: Any) -> NDArray[np.float64]:
    """Posterior reweighting (Lipton et al. 2018, https://proceedings.mlr.press/v80/lipton18a.html).

    ``p_t(y | x) = w[y] p_s(y | x) / sum_k w[k] p_s(k | x)``: a source model's posteriors
    turned into target posteriors, given class weights ``w = q / p``.

    Parameters
    ----------
    proba : array, shape (n, n_classes)
        Source-model probabilities on target inputs.
    weights : array, shape (n_classes,)
        Non-negative class weights (e.g. ``LabelShiftEstimate.weights``).

    Returns
    -------
    ndarray, shape (n, n_classes), float64
        Rows sum to one. A row whose weighted mass is zero falls back to its input.

    Examples
    --------
    >>> reweight_posteriors(np.array([[0.5, 0.5]]), np.array([3.0, 1.0])).tolist()
    [[0.75, 0.25]]
    """
    p = check_proba(proba, None, "probabilities")
    w = _check_weights(weights, p.shape[1])
    out = np.asarray(p, dtype=np.float64) * w
    total = out.sum(axis=1, keepdims=True)
    zero = total[:, 0] <= 0
    if np.any(zero):
        out[zero] = p[zero]
        total[zero] = 1.0
    return np.asarray(out / total, dtype=np.float64)


def importance_weights(labels: _T, weights: Any) -> _T:
    """Per-example importance weights ``w[y_i]`` for label-shift-corrected retraining
    (Lipton et al. 2018, https://proceedings.mlr.press/v80/lipton18a.html).

    Use them as ``sample_weight`` of a scikit-learn estimator, or as the third tensor of a
    :class:`transferkit.train.Stream` (``classification_step`` then minimises the
    importance-weighted risk ``mean(w_i * loss_i)``).

    Parameters
    ----------
    labels : ndarray or Tensor, shape (n,), int
        Labels of the source training examples.
    weights : array, shape (n_classes,)

    Returns
    -------
    ndarray (float64) or Tensor (float32, on the labels' device), shape (n,)

    Examples
    --------
    >>> importance_weights(np.array([0, 1, 1]), [2.0, 0.5]).tolist()
    [2.0, 0.5, 0.5]
    >>> import torch
    >>> importance_weights(torch.tensor([1, 0]), [2.0, 0.5])
    tensor([0.5000, 2.0000])
    """
    w = _check_weights(weights, None)
    y = check_labels(labels, len(w), "labels")
    out = w[y]
    if type(labels).__module__.startswith("torch"):
        import torch

        if isinstance(labels, torch.Tensor):
            return torch.as_tensor(out, dtype=torch.float32, device=labels.device)
    return out  # type: ignore[return-value]
