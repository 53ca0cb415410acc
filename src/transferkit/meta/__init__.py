"""Meta-learning, model-agnostic: MAML (second and first order, Meta-SGD, ANIL), Reptile,
task samplers with support/query splits, and adaptation of a meta-learned model."""

from .maml import BATCH_NORM_POLICIES, MAML, maml_step
from .reptile import Reptile, ReptileUpdate, reptile_step
from .tasks import FewShotTasks, SinusoidTasks, Task, TaskSampler, split_classes

__all__ = [
    "BATCH_NORM_POLICIES",
    "MAML",
    "FewShotTasks",
    "Reptile",
    "ReptileUpdate",
    "SinusoidTasks",
    "Task",
    "TaskSampler",
    "maml_step",
    "reptile_step",
    "split_classes",
]
