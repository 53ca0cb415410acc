"""Meta-learning, model-agnostic: MAML (second and first order, Meta-SGD, ANIL), Reptile,
task samplers with support/query splits, and adaptation of a meta-learned model.

The meta-learners are registered (:func:`create_meta_learner`, :func:`list_meta_learners`,
:func:`register_meta_learner`)."""

from .maml import BATCH_NORM_POLICIES, MAML, maml_step
from .registry import create_meta_learner, list_meta_learners, register_meta_learner
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
    "create_meta_learner",
    "list_meta_learners",
    "maml_step",
    "register_meta_learner",
    "reptile_step",
    "split_classes",
]
