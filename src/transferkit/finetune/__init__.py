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
from .methods import (  # noqa: E402
    ALPHA_GRID,
    FinetuneMethod,
    alpha_grid,
    create_finetune_method,
    halving_cost,
    halving_rungs,
    list_finetune_methods,
    rank_alphas,
    register_finetune_method,
    search_alpha,
    select_alpha,
)
from .setup import FinetuneSetup, hold_batchnorm, prepare_finetune  # noqa: E402

__all__ += ["ALPHA_GRID", "FinetuneMethod", "FinetuneSetup", "alpha_grid",
            "create_finetune_method", "halving_cost", "halving_rungs", "hold_batchnorm",
            "list_finetune_methods", "prepare_finetune", "rank_alphas",
            "register_finetune_method", "search_alpha", "select_alpha"]
