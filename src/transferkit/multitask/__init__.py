"""Multi-task learning: shared-trunk models and loss-weighting strategies.

:class:`SharedTrunk` (hard parameter sharing, masked per-task losses, the last shared
layer named) and the strategies behind :class:`Weighting`: ``equal``, ``uncertainty``
(Kendall et al. 2018), ``dwa`` (Liu et al. 2019) and ``gradnorm`` (Chen et al. ICML 2018,
https://arxiv.org/abs/1711.02257). Any strategy is the training loop's ``combiner``.
"""

from .model import SharedTrunk, masked_task_loss, multitask_step
from .weighting import (
    DWA,
    EqualWeighting,
    GradNorm,
    UncertaintyWeighting,
    Weighting,
    create_weighting,
    list_weightings,
    register_weighting,
)

__all__ = [
    "DWA",
    "EqualWeighting",
    "GradNorm",
    "SharedTrunk",
    "UncertaintyWeighting",
    "Weighting",
    "create_weighting",
    "list_weightings",
    "masked_task_loss",
    "multitask_step",
    "register_weighting",
]
