"""Registry of label-shift estimators (``register_*`` / ``create_*`` / ``list_*``).

Tests and the command line enumerate it, so a new estimator is tested and offered by being
registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from .estimators import LabelShiftEstimator

ESTIMATORS: Registry[Any] = Registry("label-shift estimator")


def register_estimator(name: str) -> Callable[[type[Any]], type[Any]]:
    """Class decorator adding a :class:`LabelShiftEstimator` subclass under ``name``.

    Examples
    --------
    >>> from transferkit.labelshift import BBSE
    >>> @register_estimator("bbse-example")
    ... class MyBBSE(BBSE):
    ...     'BBSE under another name.'
    >>> create_estimator("bbse-example", soft=True)
    MyBBSE(soft=True)
    >>> _ = ESTIMATORS._items.pop("bbse-example")  # leave the registry as it was
    """

    return ESTIMATORS.decorator(name)  # estimators.py sets ESTIMATORS.base


def create_estimator(name: str, **kwargs: Any) -> LabelShiftEstimator:
    """A fresh estimator registered as ``name``, built with ``kwargs``.

    Examples
    --------
    >>> create_estimator("bbse", soft=True)
    BBSE(soft=True)
    """
    _load()
    return ESTIMATORS.get(name)(**kwargs)


def list_estimators() -> list[str]:
    """Names of the registered label-shift estimators.

    Examples
    --------
    >>> list_estimators()
    ['bbse', 'mlls', 'rlls']
    """
    _load()
    return ESTIMATORS.names()


def _load() -> None:
    from . import estimators  # noqa: F401  (registers the built-in estimators)
