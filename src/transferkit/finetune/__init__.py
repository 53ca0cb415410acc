"""Fine-tuning: freezing, per-group learning rates, and the L2-SP family of penalties."""

from .freezing import freeze, param_groups, trainable, unfreeze

__all__ = ["freeze", "param_groups", "trainable", "unfreeze"]
from .regularizers import (
    L1SP,
    L2,
    L2SP,
    WEIGHT_MODULES,
    FinetuneRegularizer,
    GroupLassoSP,
    L2SPFisher,
    PenaltyUpdate,
    create_regularizer,
    fisher_diagonal,
    list_regularizers,
    penalized_parameters,
    register_regularizer,
    regularizer_class,
)

__all__ += [
    "L1SP",
    "L2",
    "L2SP",
    "WEIGHT_MODULES",
    "FinetuneRegularizer",
    "GroupLassoSP",
    "L2SPFisher",
    "PenaltyUpdate",
    "create_regularizer",
    "fisher_diagonal",
    "list_regularizers",
    "penalized_parameters",
    "register_regularizer",
    "regularizer_class",
]
from .setup import FINETUNE_METHODS, FinetuneSetup, hold_batchnorm, prepare_finetune  # noqa: E402

__all__ += ["FINETUNE_METHODS", "FinetuneSetup", "hold_batchnorm", "prepare_finetune"]
