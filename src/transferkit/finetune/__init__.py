"""Fine-tuning: freezing, per-group learning rates (and, with issue 3, the L2-SP family)."""

from .freezing import freeze, param_groups, trainable, unfreeze

__all__ = ["freeze", "param_groups", "trainable", "unfreeze"]
from .regularizers import (
    L1SP,
    L2,
    L2SP,
    WEIGHT_MODULES,
    GroupLassoSP,
    L2SPFisher,
    fisher_diagonal,
    penalized_parameters,
)

__all__ += [
    "L1SP",
    "L2",
    "L2SP",
    "WEIGHT_MODULES",
    "GroupLassoSP",
    "L2SPFisher",
    "fisher_diagonal",
    "penalized_parameters",
]
