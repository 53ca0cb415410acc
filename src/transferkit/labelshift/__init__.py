"""Label shift: detect, estimate and correct a change of class balance with a black box.

Lipton, Wang, Smola, "Detecting and Correcting for Label Shift with Black Box Predictors"
(ICML 2018, https://proceedings.mlr.press/v80/lipton18a.html), plus RLLS and MLLS/EM.

- Estimate: :class:`BBSE`, :class:`RLLS`, :class:`MLLS` (scikit-learn estimators fitted on
  a labelled holdout's predictions; ``estimate(target_predictions)`` returns a
  :class:`LabelShiftEstimate` with weights, target prior and intervals); registered by
  name (:func:`create_estimator`, :func:`list_estimators`, :func:`register_estimator`).
- Detect: :func:`chi2_shift_test`, :func:`ks_shift_test`.
- Correct: :func:`reweight_posteriors`, :func:`importance_weights`.
- Simulate: :mod:`transferkit.data` (``tweak_one_prior``, ``dirichlet_prior``,
  ``knock_out_prior``, ``sample_with_prior``).
"""

from .calibration import apply_bcts, fit_bcts
from .correction import importance_weights, reweight_posteriors
from .detection import ShiftTestResult, chi2_shift_test, ks_shift_test, mmd_shift_test
from .estimators import (
    BBSE,
    MLLS,
    RLLS,
    IllConditionedWarning,
    LabelShiftEstimate,
    LabelShiftEstimator,
)
from .registry import create_estimator, list_estimators, register_estimator

__all__ = [
    "BBSE",
    "MLLS",
    "RLLS",
    "IllConditionedWarning",
    "LabelShiftEstimate",
    "LabelShiftEstimator",
    "ShiftTestResult",
    "apply_bcts",
    "chi2_shift_test",
    "create_estimator",
    "fit_bcts",
    "importance_weights",
    "ks_shift_test",
    "mmd_shift_test",
    "list_estimators",
    "register_estimator",
    "reweight_posteriors",
]
