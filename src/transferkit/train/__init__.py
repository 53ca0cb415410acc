"""The training loop shared by every deep recipe, its streams, callbacks and helpers.

Pieces of the library import only :mod:`transferkit.train.interface` (step-function types,
:class:`StepContext`, :class:`Update`, :class:`Callback`, :func:`evaluating`); the rest is
for recipes, workflows and users.
"""

from .callbacks import BestCheckpoint, Evaluate
from .interface import Callback, NonFiniteLossError, StepContext, Update, evaluating
from .loop import CheckpointError, History, Phase, Trainer, fit, sum_losses
from .seeding import seeded
from .steps import accuracy, classification_step, predict_logits, weighted_cross_entropy
from .streams import (
    DatasetStream,
    EpochSampler,
    GeneratedStream,
    Sampler,
    Stream,
    rank_and_world_size,
)

__all__ = [
    "BestCheckpoint",
    "Callback",
    "CheckpointError",
    "DatasetStream",
    "EpochSampler",
    "Evaluate",
    "GeneratedStream",
    "History",
    "NonFiniteLossError",
    "Phase",
    "Sampler",
    "StepContext",
    "Stream",
    "Trainer",
    "Update",
    "accuracy",
    "classification_step",
    "evaluating",
    "fit",
    "predict_logits",
    "rank_and_world_size",
    "seeded",
    "sum_losses",
    "weighted_cross_entropy",
]
