"""RLLS: regularised BBSE (Azizzadenesheli et al., ICLR 2019)."""

from __future__ import annotations

import numpy as np

from ._base import register_estimator
from ._bbse import BBSE


@register_estimator("rlls")
class RLLS(BBSE):
    """RLLS: regularised BBSE (Azizzadenesheli, Liu, Yang, Anandkumar, ICLR 2019,
    https://arxiv.org/abs/1903.09734).

    Solves ``min_theta ||C theta - b||_2 + reg * ||theta||_2`` subject to ``theta >= -1``,
    with ``b = mu_target - mu_holdout`` and weights ``w = 1 + theta``. The norm penalty
    pulls the weights towards 1 when the confusion matrix is estimated poorly. Solved
    with L-BFGS-B on a smoothed objective (no cvxpy).

    Parameters
    ----------
    reg : float or "auto", default "auto"
        Penalty. "auto" is ``0.01 * 3 * Delta_C``, as in the authors' public code
        (``alpha = 0.01`` times ``compute_3deltaC``), with the confusion matrix's
        concentration width ``Delta_C = 2 log(2k/0.05) / (3 m) + sqrt(2 log(2k/0.05) / m)``
        for m holdout examples and k classes (the paper's bound). The factor 0.01 matters:
        the unscaled bound exceeds the smallest singular value of a 10-class joint confusion
        matrix for holdouts of a few thousand, and the (exact) penalty then returns w = 1
        whatever the target. 0 gives (clipped) BBSE.
    soft, max_condition, n_classes, interval, confidence, n_bootstrap, random_state, simultaneous
        As :class:`BBSE`. The delta-method interval is BBSE's linearisation evaluated at
        the RLLS solution (it ignores the penalty's shrinkage).

    Attributes
    ----------
    reg_ : float
        The penalty used.

    Examples
    --------
    >>> y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    >>> pred = np.array([0, 0, 1, 1, 1, 1, 2, 2, 2, 0])
    >>> est = RLLS(reg=0.0).fit(pred, y).estimate(np.array([0, 0, 1, 2, 2, 2]))
    >>> est.prior.round(2).tolist()
    [0.25, 0.08, 0.67]
    """

    _method = "rlls"
    _regularised = True

    def __init__(
        self,
        reg: float | str = "auto",
        soft: bool = False,
        max_condition: float = 100.0,
        n_classes: int | None = None,
        interval: str = "delta",
        confidence: float = 0.95,
        n_bootstrap: int = 200,
        random_state: int | None = None,
        simultaneous: bool = False,
    ) -> None:
        self.reg = reg
        super().__init__(soft, max_condition, n_classes, interval, confidence, n_bootstrap,
                         random_state, simultaneous)

    def _fit(self, X: np.ndarray, y: np.ndarray, is_proba: bool) -> None:
        if self.reg == "auto":
            k, m = self.n_classes_, len(y)
            t = np.log(2 * k / 0.05)
            self.reg_ = 0.01 * 3 * float(2 * t / (3 * m) + np.sqrt(2 * t / m))
        elif isinstance(self.reg, (int, float)) and self.reg >= 0:
            self.reg_ = float(self.reg)
        else:
            raise ValueError(f"reg must be 'auto' or a float >= 0; got {self.reg!r}")
        super()._fit(X, y, is_proba)

    def _solve(self, mu: np.ndarray) -> np.ndarray:
        c = self.confusion_
        b = mu - self.holdout_marginal_
        reg, eps = self.reg_, 1e-18

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            r = c @ theta - b
            nr = np.sqrt(r @ r + eps)
            nt = np.sqrt(theta @ theta + eps)
            return float(nr + reg * nt), c.T @ r / nr + reg * theta / nt

        k = len(mu)
        # start from the clipped BBSE solution (the answer when reg = 0)
        try:
            start = np.maximum(np.linalg.solve(c, mu), 0.0) - 1.0
        except np.linalg.LinAlgError:
            start = np.zeros(k)
        from scipy.optimize import minimize

        res = minimize(objective, start, jac=True, method="L-BFGS-B",
                       bounds=[(-1.0, None)] * k, options={"maxiter": 1000, "ftol": 1e-15,
                                                           "gtol": 1e-12})
        return np.asarray(1.0 + res.x, dtype=np.float64)
