"""Registry of label-shift estimators (``register_*`` / ``create_*`` / ``list_*``).

Tests and the command line enumerate it, so a new estimator is tested by being registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._registry import Registry
from .estimators import BBSE, MLLS, RLLS

ESTIMATORS: Registry[Callable[..., Any]] = Registry("label-shift estimator")
ESTIMATORS.register("bbse", BBSE)
ESTIMATORS.register("rlls", RLLS)
ESTIMATORS.register("mlls", MLLS)


def register_estimator(name: str, factory: Callable[..., Any]) -> Callable[..., Any]:
    """Register a label-shift estimator class (or factory) under ``name``."""
    return ESTIMATORS.register(name, factory)


def create_estimator(name: str, **kwargs: Any) -> Any:
    """A fresh estimator registered as ``name``, built with ``kwargs``.

    Examples
    --------
    >>> create_estimator("bbse", soft=True)
    BBSE(soft=True)
    """
    return ESTIMATORS.get(name)(**kwargs)


def list_estimators() -> list[str]:
    """Names of the registered label-shift estimators.

    Examples
    --------
    >>> list_estimators()
    ['bbse', 'mlls', 'rlls']
    """
    return ESTIMATORS.names()
