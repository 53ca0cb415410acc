"""The registry of meta-learners: ``maml``, ``fomaml``, ``meta-sgd``, ``anil``, ``reptile``.

A meta-learner is a :class:`~transferkit.meta.MAML` (or subclass) wrapping the user's
network; it knows the step function and the update the training loop needs to meta-train
it (:meth:`~transferkit.meta.MAML.training_step`, :meth:`~transferkit.meta.MAML.update_rule`),
so code that trains "any registered meta-learner" never tests its name::

    learner = create_meta_learner("reptile", net, F.cross_entropy, inner_lr=0.01)
    phase = Phase(learner.training_step(), opt, {"tasks": stream},
                  update=learner.update_rule())
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from .._registry import Registry
from .maml import MAML, LossFn
from .reptile import Reptile

__all__ = ["create_meta_learner", "list_meta_learners", "register_meta_learner"]

Factory = Callable[..., MAML]
META_LEARNERS: Registry[Factory] = Registry("meta-learner")


def register_meta_learner(name: str) -> Callable[[Factory], Factory]:
    """Decorator adding a factory ``f(model, loss_fn, **kwargs) -> MAML`` under ``name``.

    Examples
    --------
    >>> def two_step(model, loss_fn, **kw):
    ...     return MAML(model, loss_fn, inner_steps=2, **kw)
    >>> with META_LEARNERS.temporary("two-step-demo", two_step):
    ...     "two-step-demo" in list_meta_learners()
    True
    """
    return META_LEARNERS.decorator(name)


def create_meta_learner(name: str, model: nn.Module, loss_fn: LossFn, **kwargs: Any) -> MAML:
    """Wrap ``model`` in the registered meta-learner ``name`` (keywords go to it).

    Examples
    --------
    >>> import torch.nn.functional as F
    >>> learner = create_meta_learner("fomaml", nn.Linear(1, 1), F.mse_loss, inner_lr=0.1)
    >>> learner.first_order, type(learner).__name__
    (True, 'MAML')
    """
    return META_LEARNERS.get(name)(model, loss_fn, **kwargs)


def list_meta_learners() -> list[str]:
    """Names of the registered meta-learners.

    Examples
    --------
    >>> list_meta_learners()
    ['anil', 'fomaml', 'maml', 'meta-sgd', 'reptile']
    """
    return META_LEARNERS.names()


@register_meta_learner("maml")
def _maml(model: nn.Module, loss_fn: LossFn, **kwargs: Any) -> MAML:
    return MAML(model, loss_fn, **kwargs)


@register_meta_learner("fomaml")
def _fomaml(model: nn.Module, loss_fn: LossFn, **kwargs: Any) -> MAML:
    return MAML(model, loss_fn, first_order=True, **kwargs)


@register_meta_learner("meta-sgd")
def _meta_sgd(model: nn.Module, loss_fn: LossFn, **kwargs: Any) -> MAML:
    return MAML(model, loss_fn, learn_inner_lr=True, **kwargs)


@register_meta_learner("anil")
def _anil(model: nn.Module, loss_fn: LossFn, adapt: Any = ("head",), **kwargs: Any) -> MAML:
    """ANIL: only the parameters under ``adapt`` (the module ``head`` by default) adapt."""
    return MAML(model, loss_fn, adapt=adapt, **kwargs)


@register_meta_learner("reptile")
def _reptile(model: nn.Module, loss_fn: LossFn, **kwargs: Any) -> MAML:
    return Reptile(model, loss_fn, **kwargs)
