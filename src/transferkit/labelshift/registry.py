"""The registry of label-shift estimators; it lives with their base class in
:mod:`transferkit.labelshift.estimators` (``_base``), and is re-exported here."""

from .estimators import ESTIMATORS, create_estimator, list_estimators, register_estimator

__all__ = ["ESTIMATORS", "create_estimator", "list_estimators", "register_estimator"]
