"""Choosing a checkpoint without target labels: importance-weighted validation and DEV.

In unsupervised domain adaptation the target has no labels, so neither hyper-parameters
nor the stopping step can be chosen on target accuracy. The criteria here estimate the
target risk from labelled *source validation* examples re-weighted by the density ratio
w(x) = p_target(x) / p_source(x) of the model's features, which a domain classifier
estimates:

- :func:`source_risk`: the plain source-validation risk. Cheap, but blind to the shift:
  a model can lower it while its target accuracy falls (adaptation trades source fit for
  alignment), so it tends to prefer too little adaptation.
- :func:`importance_weighted_risk`: IWCV (Sugiyama, Krauledat & Mueller, JMLR 2007,
  https://jmlr.org/papers/v8/sugiyama07a.html), unbiased under covariate shift but with
  high variance when weights are large.
- :func:`deep_embedded_validation_risk`: DEV (You, Wang, Long & Jordan, ICML 2019,
  https://proceedings.mlr.press/v97/you19a.html), IWCV with the weights as a control
  variate, which lowers the variance.

All assume covariate shift in feature space and that the domain classifier is
reasonable; with disjoint supports the weights blow up and no criterion is reliable.
:class:`DEVCriterion` computes DEV for a model; :class:`transferkit.train.BestCheckpoint`
keeps the state with the lowest criterion during :func:`transferkit.train.fit`.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from ..train.interface import evaluating

__all__ = ["DEVCriterion", "deep_embedded_validation_risk", "domain_importance_weights",
           "importance_weighted_risk", "source_risk"]


def _as_numpy(x: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def domain_importance_weights(
    source_fit: Tensor | np.ndarray,
    target_fit: Tensor | np.ndarray,
    source_eval: Tensor | np.ndarray,
    reg: float = 1.0,
    max_weight: float | None = None,
) -> np.ndarray:
    """Density ratios p_target / p_source at ``source_eval`` from a domain classifier.

    You et al., ICML 2019, https://proceedings.mlr.press/v97/you19a.html.

    A logistic regression (standardised features, L2 penalty ``reg``) is fitted to tell
    ``source_fit`` (n_s, d) from ``target_fit`` (n_t, d); the weight of a row x is
    ``n_s / n_t * p(target | x) / p(source | x)``.

    Parameters
    ----------
    source_fit, target_fit : array (n, d)
        Features used to fit the domain classifier (e.g. source training features and
        the unlabelled target features).
    source_eval : array (m, d)
        Features of the labelled source validation examples to weigh.
    reg : float
        Inverse of scikit-learn's ``C``.
    max_weight : float, optional
        Clip the weights at this value.

    Returns
    -------
    ndarray, shape (m,)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> s, t = rng.normal(0, 1, (200, 2)), rng.normal(1, 1, (200, 2))
    >>> w = domain_importance_weights(s, t, np.array([[-2.0, -2.0], [2.0, 2.0]]))
    >>> bool(w[1] > 1 > w[0])
    True
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    xs, xt, xe = _as_numpy(source_fit), _as_numpy(target_fit), _as_numpy(source_eval)
    for name, a in (("source_fit", xs), ("target_fit", xt), ("source_eval", xe)):
        if a.ndim != 2 or len(a) == 0:
            raise ValueError(f"{name} must be a non-empty (n, d) array; got shape {a.shape}")
    if not xs.shape[1] == xt.shape[1] == xe.shape[1]:
        raise ValueError(
            f"feature widths differ: source_fit {xs.shape[1]}, target_fit {xt.shape[1]}, "
            f"source_eval {xe.shape[1]}"
        )
    if reg <= 0:
        raise ValueError(f"reg must be > 0; got {reg}")
    scaler = StandardScaler().fit(np.concatenate([xs, xt]))
    x = scaler.transform(np.concatenate([xs, xt]))
    y = np.concatenate([np.zeros(len(xs)), np.ones(len(xt))])
    with warnings.catch_warnings():
        # nearly separable domains make lbfgs stop at max_iter: the probabilities are then
        # extreme either way, and the logit is clipped below, bounding the weights
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=1.0 / reg, max_iter=500).fit(x, y)
    logit = clf.decision_function(scaler.transform(xe))
    w = np.exp(np.clip(logit, -30.0, 30.0)) * (len(xs) / len(xt))
    if max_weight is not None:
        w = np.minimum(w, max_weight)
    return np.asarray(w, dtype=np.float64)


def _check_losses_weights(losses: np.ndarray, weights: np.ndarray | None) -> None:
    if losses.ndim != 1 or len(losses) < 2:
        raise ValueError(f"losses must be a 1-D array of >= 2 values; got shape {losses.shape}")
    if weights is not None and weights.shape != losses.shape:
        raise ValueError(
            f"weights have shape {weights.shape}; expected {losses.shape} like the losses"
        )


def source_risk(losses: Tensor | np.ndarray) -> float:
    """Mean source-validation loss: the naive criterion (no correction for the shift).

    Examples
    --------
    >>> source_risk([1.0, 3.0])
    2.0
    """
    arr = _as_numpy(losses)
    _check_losses_weights(arr, None)
    return float(arr.mean())


def importance_weighted_risk(losses: Tensor | np.ndarray, weights: Tensor | np.ndarray) -> float:
    """Importance-weighted validation risk mean(w l).

    Sugiyama et al., JMLR 2007, https://jmlr.org/papers/v8/sugiyama07a.html.

    Examples
    --------
    >>> importance_weighted_risk([1.0, 3.0], [0.5, 1.5])
    2.5
    """
    arr, w = _as_numpy(losses), _as_numpy(weights)
    _check_losses_weights(arr, w)
    return float((w * arr).mean())


def deep_embedded_validation_risk(
    losses: Tensor | np.ndarray, weights: Tensor | np.ndarray
) -> float:
    """Deep Embedded Validation risk.

    You, Wang, Long & Jordan, ICML 2019, https://proceedings.mlr.press/v97/you19a.html.

    With weighted losses L_i = w_i l_i, ``eta = -Cov(L, w) / Var(w)`` and the risk
    ``mean(L) + eta * mean(w) - eta``: IWCV with the weights (whose mean is 1 in
    expectation) as a control variate.

    Examples
    --------
    >>> round(deep_embedded_validation_risk([1.0, 2.0, 3.0], [1.0, 1.0, 1.0]), 6)
    2.0
    """
    arr, w = _as_numpy(losses), _as_numpy(weights)
    _check_losses_weights(arr, w)
    weighted = w * arr
    var = w.var(ddof=1)
    if var <= 1e-12:
        return float(weighted.mean())
    eta = -np.cov(weighted, w, ddof=1)[0, 1] / var
    return float(weighted.mean() + eta * w.mean() - eta)


class DEVCriterion:
    """DEV risk of a model with ``features`` and ``head``.

    You et al., ICML 2019, https://proceedings.mlr.press/v97/you19a.html.

    Call it on a model to get the estimated target risk (lower is better): features of
    ``source_fit`` and ``target`` fit the domain classifier; the per-example
    cross-entropy on ``(val_x, val_y)`` is weighted by the density ratio at the
    validation features. No target label is used.

    Parameters
    ----------
    source_fit : Tensor
        Source inputs for the domain classifier (a subsample of the training set).
    target : Tensor
        Unlabelled target inputs.
    val_x, val_y : Tensor
        Held-out labelled source validation examples.
    reg : float
        Regularisation of the domain classifier.
    kind : {"dev", "iwcv", "source"}
        Which criterion to return.

    Examples
    --------
    >>> import torch
    >>> from transferkit.nets import MLP
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.rand(40, 1, 4, 4, generator=g), torch.arange(40) % 2
    >>> crit = DEVCriterion(x[:20], torch.rand(20, 1, 4, 4, generator=g), x[20:], y[20:])
    >>> isinstance(crit(MLP((1, 4, 4), 2, hidden=(8,))), float)
    True
    """

    def __init__(
        self,
        source_fit: Tensor,
        target: Tensor,
        val_x: Tensor,
        val_y: Tensor,
        reg: float = 1.0,
        kind: str = "dev",
    ) -> None:
        if kind not in ("dev", "iwcv", "source"):
            raise ValueError(f"kind must be 'dev', 'iwcv' or 'source'; got {kind!r}")
        if len(val_x) != len(val_y):
            raise ValueError(f"val_x has {len(val_x)} rows but val_y has {len(val_y)}")
        self.source_fit = source_fit
        self.target = target
        self.val_x = val_x
        self.val_y = val_y
        self.reg = reg
        self.kind = kind

    def __call__(self, model: nn.Module) -> float:
        features, head = getattr(model, "features", None), getattr(model, "head", None)
        if not isinstance(features, nn.Module) or not isinstance(head, nn.Module):
            raise TypeError(f"DEVCriterion needs a model with `features` and `head`; got "
                            f"{type(model).__name__}")
        device = next(model.parameters()).device

        def embed(m: nn.Module) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
            f_val = features(self.val_x.to(device))
            losses = F.cross_entropy(head(f_val), self.val_y.to(device), reduction="none")
            if self.kind == "source":  # needs no density ratio
                return f_val, losses, None, None
            return (f_val, losses, features(self.source_fit.to(device)),
                    features(self.target.to(device)))

        f_val, losses, f_source, f_target = evaluating(model, embed)
        if f_source is None or f_target is None:
            return source_risk(losses)
        w = domain_importance_weights(f_source, f_target, f_val, reg=self.reg)
        if self.kind == "iwcv":
            return importance_weighted_risk(losses, w)
        return deep_embedded_validation_risk(losses, w)
