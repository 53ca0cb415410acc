"""Reptile: first-order meta-learning by moving towards adapted weights (Nichol, Achiam,
Schulman 2018, https://arxiv.org/abs/1803.02999).

For each task of a meta-batch, ``inner_steps`` steps of SGD on the task's data from the
shared parameters theta give phi; the outer update is ``theta <- theta + eps * (mean phi -
theta)`` (the paper's batched version, algorithm 2). In the loop this is an
:class:`~transferkit.train.Update` subclass: :func:`reptile_step` computes the direction
``theta - mean phi`` and leaves it in the step's context, and :class:`ReptileUpdate` writes
it into the parameters' ``.grad`` and steps the phase's optimiser, so plain SGD at learning
rate eps is exactly Reptile's update and any other optimiser (the paper mentions Adam) uses
the direction as a gradient.

The inner loop is plain SGD on the whole support set per step (the paper's inner loop
takes mini-batches with Adam on its few-shot tasks; for tasks of a few points full-batch
SGD is the same thing without its noise). Weights are adapted with the same functional
inner loop as :class:`~transferkit.meta.MAML` (first order, so nothing is kept).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import vmap

from ..train.interface import Compute, StepContext, Update, finite_or_policy
from .maml import MAML, LossFn, _frozen_batch_norm

__all__ = ["Reptile", "ReptileUpdate", "reptile_step"]

DIRECTION = "reptile_direction"


class Reptile(MAML):
    """Reptile on the task interface of :class:`MAML` (same ``adapt``, same samplers).

    Parameters are those of :class:`MAML`, without ``first_order`` (always first order) and
    ``learn_inner_lr``, and ``train_on_query``: whether meta-training adapts on each task's
    query points as well as its support points when the meta-batch has them (default; see
    :func:`reptile_step`). :meth:`forward` returns the mean support loss after adaptation
    (a number to watch; Reptile has no meta-loss to differentiate) and :meth:`direction`
    the outer direction.

    Examples
    --------
    Meta-training in the loop (step function and update from the learner itself):

    >>> from transferkit.meta import SinusoidTasks
    >>> from transferkit.train import GeneratedStream, Phase, Trainer
    >>> net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))
    >>> reptile = Reptile(net, nn.functional.mse_loss, inner_lr=0.02, inner_steps=3)
    >>> tasks = SinusoidTasks(k_support=10, k_query=10)
    >>> stream = GeneratedStream(lambda g: tasks.meta_batch(4, g), seed=0)
    >>> phase = Phase(reptile.training_step(), torch.optim.SGD(reptile.parameters(), lr=0.1),
    ...               {"tasks": stream}, update=reptile.update_rule())
    >>> _ = Trainer(reptile, phase, 5, seed=0, progress=False).fit()
    >>> task = tasks.sample(torch.Generator().manual_seed(1))
    >>> reptile.adapt(task.support_x, task.support_y)(task.query_x).shape
    torch.Size([10, 1])
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, inner_lr: float = 0.01,
                 inner_steps: int = 5, adapt: Any = None, batch_norm: str = "transductive",
                 vectorize: bool = True, train_on_query: bool = True) -> None:
        super().__init__(model, loss_fn, inner_lr=inner_lr, inner_steps=inner_steps,
                         first_order=True, adapt=adapt, batch_norm=batch_norm,
                         vectorize=vectorize)
        self.train_on_query = bool(train_on_query)

    def direction(self, support_x: Tensor, support_y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """``(mean support loss after adaptation, {name: theta - mean over tasks of phi})``
        for tasks stacked along the first dimension."""
        if len(support_x) != len(support_y) or support_x.ndim < 2:
            raise ValueError("support_x and support_y must be stacked over the same tasks; got "
                             f"shapes {tuple(support_x.shape)} and {tuple(support_y.shape)}")
        theta = dict(self.model.named_parameters())

        def one_task(sx: Tensor, sy: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
            phi = self.adapted_weights(sx, sy, create_graph=False)
            fast = {n: phi[n] for n in self.adapted_names}
            return self.loss_fn(self._call(phi, sx, self.inner_steps), sy), fast

        with torch.no_grad(), _frozen_batch_norm(self.model, self.batch_norm == "frozen"):
            if self.vectorize:
                losses, fast = vmap(one_task, randomness="different")(support_x, support_y)
                mean_phi = {n: v.mean(dim=0) for n, v in fast.items()}
            else:
                results = [one_task(sx, sy) for sx, sy in zip(support_x, support_y, strict=True)]
                losses = torch.stack([r[0] for r in results])
                mean_phi = {n: torch.stack([r[1][n] for r in results]).mean(dim=0)
                            for n in self.adapted_names}
            step = {n: theta[n].detach() - mean_phi[n] if n in mean_phi
                    else torch.zeros_like(theta[n]) for n in theta}
        return losses.mean(), step

    def outer_step(self, support_x: Tensor, support_y: Tensor,
                   optimizer: torch.optim.Optimizer) -> Tensor:
        """One Reptile meta-update outside the training loop: the direction of
        :meth:`direction` becomes the gradient of ``optimizer`` (over this learner's
        parameters), which then steps (SGD at lr eps is the paper's update). Returns the
        mean support loss after adaptation.

        Examples
        --------
        >>> import torch
        >>> from torch import nn
        >>> from transferkit.meta import Reptile, SinusoidTasks
        >>> g = torch.Generator().manual_seed(0)
        >>> net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))
        >>> reptile = Reptile(net, nn.functional.mse_loss, inner_lr=0.02, inner_steps=5)
        >>> outer = torch.optim.SGD(reptile.parameters(), lr=0.1)
        >>> tasks = SinusoidTasks(k_support=10, k_query=10)
        >>> for _ in range(3):
        ...     sx, sy, _, _ = tasks.meta_batch(8, g)
        ...     loss = reptile.outer_step(sx, sy, outer)
        >>> bool(torch.isfinite(loss))
        True
        """
        loss, direction = self.direction(support_x, support_y)
        optimizer.zero_grad(set_to_none=True)
        _set_direction(self, direction)
        optimizer.step()
        return loss

    def training_step(self, stream: str = "tasks") -> Callable[[nn.Module, Any, StepContext],
                                                               dict[str, Tensor]]:
        """The loop's step function that meta-trains this learner (:func:`reptile_step`)."""
        return reptile_step(stream)

    def update_rule(self) -> Update:
        """Reptile's outer step, :class:`ReptileUpdate`."""
        return ReptileUpdate()

    def forward(self, support_x: Tensor, support_y: Tensor, query_x: Tensor | None = None,
                query_y: Tensor | None = None) -> Tensor:
        return self.direction(support_x, support_y)[0]


def _unwrap(model: nn.Module) -> Reptile:
    """The :class:`Reptile` inside a DistributedDataParallel wrapper (or the model)."""
    inner = getattr(model, "module", model)
    if not isinstance(inner, Reptile):
        raise TypeError(f"reptile_step and ReptileUpdate need a Reptile model; got "
                        f"{type(inner).__name__}")
    return inner


def reptile_step(stream: str = "tasks") -> Callable[[nn.Module, Any, StepContext],
                                                    dict[str, Tensor]]:
    """A step function for a :class:`Reptile` model whose stream ``stream`` serves stacked
    meta-batches (support sets first): loss ``"support"``; the outer direction goes to
    ``ctx.extra`` for :class:`ReptileUpdate`.

    Reptile has no query set: when the meta-batch holds query points too (``(support_x,
    support_y, query_x, query_y)``, as MAML's do), the inner loop runs on each task's
    support and query points together, so that Reptile meta-trains on the same data per
    task as MAML (``Reptile(train_on_query=False)`` uses the support points only).

    Examples
    --------
    See :class:`Reptile` (``reptile.training_step()`` is ``reptile_step()``):

    >>> callable(reptile_step("tasks"))
    True
    """

    def step(model: nn.Module, batches: Any, ctx: StepContext) -> dict[str, Tensor]:
        reptile = _unwrap(model)
        batch = batches[stream]
        sx, sy = batch[:2]
        if reptile.train_on_query and len(batch) >= 4:
            sx, sy = torch.cat([sx, batch[2]], dim=1), torch.cat([sy, batch[3]], dim=1)
        loss, ctx.extra[DIRECTION] = reptile.direction(sx, sy)
        return {"support": loss}

    return step


class ReptileUpdate(Update):
    """The outer step of Reptile: the direction left by :func:`reptile_step` becomes the
    gradient of the phase's optimiser (``theta - mean phi``; SGD at lr eps is Reptile).
    Under ``torch.distributed`` the directions are averaged over ranks first.

    Examples
    --------
    See :class:`Reptile` (``reptile.update_rule()`` is a ``ReptileUpdate``); outside the loop,
    :meth:`Reptile.outer_step` does the same update.

    >>> isinstance(Reptile(nn.Linear(1, 1), nn.functional.mse_loss).update_rule(), ReptileUpdate)
    True
    """

    def __init__(self) -> None:
        super().__init__()

    def __call__(self, compute: Compute, phase: Any, ctx: StepContext) -> Mapping[str, Tensor]:
        losses, total = compute()
        phase.optimizer.zero_grad(set_to_none=True)
        if not finite_or_policy(total, losses, ctx):
            return losses
        direction: dict[str, Tensor] | None = ctx.extra.get(DIRECTION)
        if direction is None:
            raise RuntimeError("ReptileUpdate needs the step function reptile_step(...), which "
                               "leaves the outer direction in ctx.extra")
        _set_direction(_unwrap(ctx.model), direction)
        self._step(phase, None)
        return losses


def _set_direction(reptile: Reptile, direction: Mapping[str, Tensor]) -> None:
    """Put the outer direction into the parameters' ``.grad`` (averaged over the ranks
    under ``torch.distributed``)."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    for name, p in reptile.model.named_parameters():
        g = direction[name].clone()
        if distributed:
            torch.distributed.all_reduce(g)
            g /= torch.distributed.get_world_size()
        p.grad = g
