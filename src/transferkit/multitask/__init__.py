"""Multi-task learning: shared-trunk models and loss-weighting strategies.

:class:`SharedTrunk` (hard parameter sharing, masked per-task losses, the last shared
layer named) and the strategies behind :class:`Weighting`: ``equal``, ``uncertainty``
(Kendall et al. 2018), ``dwa`` (Liu et al. 2019) and ``gradnorm`` (Chen et al. ICML 2018,
https://arxiv.org/abs/1711.02257). Any strategy is the training loop's ``combiner``.
:func:`text_multitask` puts sentence tasks and per-token tagging on one text encoder (the
survey's own example); :func:`features_multitask` the same over feature columns.
Pseudo-task augmentation (Meyerson & Miikkulainen, ICML 2018): :class:`PseudoTaskModel`
(D decoders per task) and the control methods behind :class:`DecoderControl` (``pta-i``,
``pta-f``, ``pta-p``, ``pta-hgd``), run between meta-iterations by
:class:`DecoderControlCallback`. DSMT-Nets (Schwab et al., ICML 2018): :class:`DSMTNet` and
:func:`train_dsmt` / :func:`fit_dsmt` (the authors' two-phase schedule, also in
:mod:`transferkit.workflows`), with auxiliary tasks chosen from a tsfresh feature bank by
:func:`select_auxiliary_tasks`.
"""

from .auxiliary import AuxiliaryTasks, FeatureBank, feature_bank, select_auxiliary_tasks
from .dsmt import (
    ChannelScaler,
    DSMTNet,
    Highway,
    dsmt_aux_step,
    dsmt_main_step,
    main_logits,
    predict_proba,
    youden_threshold,
)
from .dsmt_fit import DSMTModel, DSMTResult, fit_dsmt, train_dsmt
from .model import SharedTrunk, masked_task_loss, multitask_step
from .pta import (
    DecoderControl,
    DecoderControlCallback,
    PseudoTaskModel,
    create_decoder_control,
    list_decoder_controls,
    pta_step,
    register_decoder_control,
)
from .text import TaskHead, features_multitask, text_multitask
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
    "AuxiliaryTasks",
    "ChannelScaler",
    "DSMTModel",
    "DSMTNet",
    "DSMTResult",
    "DWA",
    "FeatureBank",
    "Highway",
    "dsmt_aux_step",
    "dsmt_main_step",
    "feature_bank",
    "fit_dsmt",
    "main_logits",
    "predict_proba",
    "select_auxiliary_tasks",
    "train_dsmt",
    "youden_threshold",
    "DecoderControl",
    "DecoderControlCallback",
    "EqualWeighting",
    "GradNorm",
    "PseudoTaskModel",
    "SharedTrunk",
    "UncertaintyWeighting",
    "Weighting",
    "create_decoder_control",
    "create_weighting",
    "list_decoder_controls",
    "list_weightings",
    "masked_task_loss",
    "multitask_step",
    "TaskHead",
    "features_multitask",
    "text_multitask",
    "pta_step",
    "register_decoder_control",
    "register_weighting",
]
