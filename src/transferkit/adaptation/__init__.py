"""Unsupervised domain adaptation: gradient reversal, DANN, MSTN, MMD, CORAL, model selection.

Pieces (each usable with any feature extractor):

- :func:`grad_reverse` / :class:`GradientReversal`, :class:`DomainDiscriminator`, the
  schedules :func:`grl_lambda` (2/(1+exp(-10p))-1) and :func:`annealed_lr_scheduler`
  (lr0/(1+10p)^0.75);
- objectives over (source features, target features[, source labels, target logits]):
  :class:`DANN`, :class:`MSTN` (Xie et al., ICML 2018, semantic alignment of moving
  class centroids), :class:`MMD` (multi-kernel, DAN) and :class:`CORAL`, registered with
  :func:`register_adaptation` / :func:`create_adaptation` / :func:`list_adaptations`;
- training with the one loop: :class:`AdaptationModel` and :func:`adaptation_step`;
- choosing a checkpoint without target labels: :func:`deep_embedded_validation_risk`,
  :func:`importance_weighted_risk`, :func:`source_risk`, :class:`DEVCriterion`, used
  through :class:`transferkit.train.BestCheckpoint`.
"""

from .objectives import (
    CORAL,
    DANN,
    MMD,
    MSTN,
    AdaptationObjective,
    DANNOutput,
    MSTNOutput,
    adaptation_loss,
    batch_centroids,
    coral,
    create_adaptation,
    gaussian_kernel,
    list_adaptations,
    mmd2,
    register_adaptation,
    update_centroids,
)
from .reversal import (
    AnnealedLR,
    DomainDiscriminator,
    GradientReversal,
    annealed_lr_factor,
    annealed_lr_scheduler,
    grad_reverse,
    grl_lambda,
)
from .selection import (
    DEVCriterion,
    deep_embedded_validation_risk,
    domain_importance_weights,
    importance_weighted_risk,
    source_risk,
)
from .training import AdaptationModel, adaptation_step

__all__ = [
    "CORAL",
    "DANN",
    "MMD",
    "MSTN",
    "AdaptationModel",
    "AdaptationObjective",
    "AnnealedLR",
    "DANNOutput",
    "DEVCriterion",
    "DomainDiscriminator",
    "GradientReversal",
    "MSTNOutput",
    "adaptation_loss",
    "adaptation_step",
    "annealed_lr_factor",
    "annealed_lr_scheduler",
    "batch_centroids",
    "coral",
    "create_adaptation",
    "deep_embedded_validation_risk",
    "domain_importance_weights",
    "grad_reverse",
    "grl_lambda",
    "importance_weighted_risk",
    "list_adaptations",
    "gaussian_kernel",
    "mmd2",
    "register_adaptation",
    "source_risk",
    "update_centroids",
]
