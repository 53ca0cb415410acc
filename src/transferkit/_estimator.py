"""The scikit-learn estimator contract without importing scikit-learn (it takes seconds).

:class:`Params` gives ``get_params``/``set_params``/``repr`` from the ``__init__`` signature,
which is all :func:`sklearn.base.clone`, grid searches and pipelines need of an estimator;
:func:`clone` copies an unfitted estimator, and :func:`check_fitted` raises scikit-learn's
own ``NotFittedError`` (imported only then).
"""

from __future__ import annotations

import inspect
from typing import Any


class Params:
    """``get_params``/``set_params`` from the parameters of ``__init__`` (stored as attributes).

    Examples
    --------
    >>> class Est(Params):
    ...     def __init__(self, alpha=1.0, tol=1e-3):
    ...         self.alpha, self.tol = alpha, tol
    >>> Est(alpha=2.0).set_params(tol=0.1).get_params()
    {'alpha': 2.0, 'tol': 0.1}
    >>> Est(), Est(tol=0.5)
    (Est(), Est(tol=0.5))
    """

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(
            p.name for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The estimator's parameters by name (scikit-learn's contract)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Any:
        """Set parameters by name; an unknown name is an error naming the valid ones."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {name!r}; valid: {valid}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:  # like scikit-learn's: only what differs from the defaults
        defaults = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
        }
        args = ", ".join(
            f"{k}={v!r}" for k, v in self.get_params().items()
            if not (type(v) is type(defaults.get(k)) and v == defaults.get(k))
        )
        return f"{type(self).__name__}({args})"


def clone(est: Params) -> Any:
    """A new, unfitted estimator with the same parameters (like ``sklearn.base.clone``)."""
    return type(est)(**est.get_params())


def check_fitted(obj: Any, attribute: str) -> None:
    """Raise scikit-learn's ``NotFittedError`` unless ``obj`` has ``attribute``."""
    if not hasattr(obj, attribute):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(
            f"this {type(obj).__name__} is not fitted yet: call fit before using it"
        )
