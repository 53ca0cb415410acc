"""The training loop shared by every deep recipe, its streams, callbacks and helpers."""

from .callbacks import BestCheckpoint, Evaluate, evaluating
from .loop import (
    Callback,
    History,
    Phase,
    StepContext,
    Trainer,
    fit,
    sum_losses,
)
from .seeding import seeded
from .steps import accuracy, classification_step, predict_logits, weighted_cross_entropy
from .streams import EpochSampler, Sampler, Stream

__all__ = [
    "BestCheckpoint",
    "Callback",
    "EpochSampler",
    "Evaluate",
    "History",
    "Phase",
    "Sampler",
    "StepContext",
    "Stream",
    "Trainer",
    "accuracy",
    "classification_step",
    "evaluating",
    "fit",
    "predict_logits",
    "seeded",
    "sum_losses",
    "weighted_cross_entropy",
]
