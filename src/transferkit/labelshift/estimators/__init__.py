"""Label-shift estimators: BBSE, RLLS and MLLS (EM), with the scikit-learn contract.

Under label shift p(x | y) is the same in source and target while the class prior moves
from p(y) to q(y). Each estimator is fitted on a labelled holdout of the source (its
labels and a black-box model's predictions on it: hard labels or probabilities) and then
estimates, from the same model's predictions on unlabelled target data, the class weights
``w[y] = q(y) / p(y)`` and the target prior ``q``, each with a confidence interval.

Source prior ``p``: the holdout's label frequencies (the holdout must contain every class).

One module per estimator (``_bbse``, ``_rlls``, ``_mlls``) on a small base (``_base``: the
scikit-learn contract, the holdout's statistics, the intervals and the registry); import
them from here or from :mod:`transferkit.labelshift`.
"""

from ._base import (
    ESTIMATORS,
    MIN_ROWS_PER_CLASS,
    IllConditionedWarning,
    LabelShiftEstimate,
    LabelShiftEstimator,
    SmallSampleWarning,
    create_estimator,
    list_estimators,
    register_estimator,
)
from ._bbse import BBSE
from ._mlls import MLLS
from ._rlls import RLLS

__all__ = ["BBSE", "ESTIMATORS", "MIN_ROWS_PER_CLASS", "MLLS", "RLLS", "IllConditionedWarning",
           "LabelShiftEstimate", "LabelShiftEstimator", "SmallSampleWarning",
           "create_estimator", "list_estimators", "register_estimator"]
