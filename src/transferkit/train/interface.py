"""What the library's pieces may use of the training loop: the loop's published interface.

A piece (``multitask``, ``adaptation``, ``curriculum``, ``meta``, ...) that trains through
the loop writes a step function, a combiner, an update or a callback against the names
below, and imports nothing else of :mod:`transferkit.train` (a test checks this). Everything
else in ``train`` (the :class:`~transferkit.train.Trainer`, streams, checkpoints, the
progress bar) is for recipes, workflows and users.

- :data:`Batches`, :data:`StepFn`, :data:`Combiner`: the types of a step function
  ``(model, batches, ctx) -> {name: loss}`` and of a combiner ``(losses, ctx) -> scalar``;
- :class:`StepContext`: what a step function, combiner, update or callback may know about
  the current step;
- :class:`Update`: the replaceable part of a step between the combined loss and the next
  step (backward, clipping, accumulation, mixed precision, the optimiser step), and
  :func:`finite_or_policy`, the trainer's non-finite-loss policy that an update applies;
- :class:`Callback`: things that run between steps (evaluation, control steps);
- :func:`evaluating`: run a function with the model in eval mode and gradients off.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import Tensor, nn

from ..distributed import average_gradients, is_distributed, sum_across_ranks

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Phase, Trainer

__all__ = ["NONFINITE_POLICIES", "Batches", "Callback", "Compute", "NonFiniteLossError",
           "StepContext", "StepFn", "Update", "derived_generator", "evaluating",
           "finite_or_policy", "progress_wanted"]

Batches = dict[str, tuple[Tensor, ...]]
"""This step's batch of each stream of the phase, by stream name."""
StepFn = Callable[[nn.Module, Batches, "StepContext"], Mapping[str, Tensor]]
"""``step_fn(model, batches, ctx) -> {name: loss}``: the forward pass of one step."""
Combiner = Callable[[Mapping[str, Tensor], "StepContext"], Tensor]
"""``combiner(losses, ctx) -> scalar``: turns the named losses into what is back-propagated."""
Compute = Callable[[], "tuple[Mapping[str, Tensor], Tensor]"]
"""What an :class:`Update` calls for one (micro-)batch: draws it, runs the step function
and the combiner, and returns ``(losses, total)``."""

T = TypeVar("T")


@dataclass
class StepContext:
    """What a step function, combiner, update or callback may know about the current step.

    Attributes
    ----------
    step : int
        The optimiser step being taken, counted from 0 over all phases.
    max_steps : int
        The run's total number of steps.
    phase : str
        Name of the active :class:`~transferkit.train.Phase`.
    trainer : Trainer
        The running trainer (its ``model``, ``history``, ``log``, ``should_stop``).
    extra : dict
        Scratch space for one step: a step function may leave something here for the
        update (a meta-learner's adapted weights, say); cleared every step.

    Examples
    --------
    >>> from transferkit.train.interface import StepContext
    >>> ctx = StepContext(step=25, max_steps=100, phase="train", trainer=None)
    >>> ctx.progress
    0.25
    """

    step: int
    max_steps: int
    phase: str
    trainer: Trainer
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def progress(self) -> float:
        """Training progress p in [0, 1) (used by DANN's schedules)."""
        return self.step / max(self.max_steps, 1)

    @property
    def model(self) -> nn.Module:
        """The model being trained."""
        return self.trainer.model


class NonFiniteLossError(FloatingPointError):
    """A step's combined loss was NaN or infinite (the default ``nonfinite="raise"``).

    Examples
    --------
    >>> from torch import nn
    >>> from transferkit.train import Phase, Stream, Trainer
    >>> net = nn.Linear(2, 1)
    >>> def step(model, batches, ctx):
    ...     return {"loss": model(batches["train"][0]).sum() * float("nan")}
    >>> phase = Phase(step, torch.optim.SGD(net.parameters(), lr=0.1),
    ...               {"train": Stream(torch.randn(8, 2), batch_size=4, seed=0)})
    >>> Trainer(net, phase, 2, seed=0, progress=False).fit()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    transferkit.train.interface.NonFiniteLossError: ...
    """


NONFINITE_POLICIES = ("raise", "skip", "warn", "ignore")


def finite_or_policy(
    total: Tensor, losses: Mapping[str, Tensor], ctx: StepContext
) -> bool:
    """Apply the trainer's non-finite-loss policy to ``total``; True when the step goes on.

    ``"raise"`` (default): :class:`NonFiniteLossError` naming the step and the losses;
    ``"skip"``: the step is dropped (no backward, no optimiser or scheduler step);
    ``"warn"``: a ``RuntimeWarning`` and the step goes on; ``"ignore"``: no check at all
    (the check reads one number from the device per step). Under ``torch.distributed`` a
    non-finite loss on any rank counts on every rank, so the ranks skip or stop together.

    Examples
    --------
    What an :class:`Update` calls before its backward pass; with ``nonfinite="skip"`` a NaN
    step is dropped and training goes on:

    >>> from torch import nn
    >>> from transferkit.train import Phase, Stream, Trainer
    >>> net = nn.Linear(2, 1)
    >>> calls = []
    >>> def step(model, batches, ctx):
    ...     calls.append(1)
    ...     bad = float("nan") if len(calls) == 1 else 1.0
    ...     return {"loss": model(batches["train"][0]).pow(2).mean() * bad}
    >>> phase = Phase(step, torch.optim.SGD(net.parameters(), lr=0.1),
    ...               {"train": Stream(torch.randn(8, 2), batch_size=4, seed=0)})
    >>> _ = Trainer(net, phase, 3, seed=0, progress=False, nonfinite="skip").fit()
    >>> len(calls), bool(torch.isfinite(net.weight).all())
    (3, True)
    """
    policy = getattr(ctx.trainer, "nonfinite", "raise")
    if policy == "ignore":
        return True
    finite = (math.isfinite(total.item()) if total.numel() == 1  # ~0.2 us; isfinite() ~6 us
              else bool(torch.isfinite(total.detach()).all()))
    if is_distributed():  # the ranks must agree, or one would wait for the others' gradients
        flag = sum_across_ranks(torch.tensor([0.0 if finite else 1.0]))
        finite = float(flag[0]) == 0.0
    if finite:
        return True
    values = {k: float(v.detach().float().mean()) for k, v in losses.items()}
    message = (f"non-finite loss at step {ctx.step} (phase {ctx.phase!r}): total "
               f"{float(total.detach().float().mean())}, losses {values}")
    if policy == "raise":
        raise NonFiniteLossError(message + "; Trainer(nonfinite='skip') drops such steps")
    if policy == "warn":
        import warnings

        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return True
    return False  # skip


class Update:
    """The part of a step from the combined loss to the optimiser step, replaceable per phase.

    The loop calls ``update(compute, phase, ctx)`` once per step; ``compute()`` draws the
    next batch of each of the phase's streams, runs the step function and the combiner, and
    returns ``(losses, total)``. The update decides what happens around it. With the
    defaults it does exactly what a hand-written loop does::

        losses, total = compute()
        optimizer.zero_grad(set_to_none=True); total.backward(); optimizer.step()
        scheduler.step()  # when the phase has one

    Parameters
    ----------
    accumulate : int
        Micro-batches per optimiser step: ``compute`` is called this many times (each draws
        fresh batches), each ``total / accumulate`` is back-propagated, and the optimiser
        and scheduler step once. The batches are the same as those of ``accumulate`` plain
        steps, so the effective batch is ``accumulate`` times the streams' batch size. A
        DDP model's gradient all-reduce is skipped (``no_sync``) for all but the last
        micro-batch.
    max_norm : float, optional
        Clip the gradient norm of the optimiser's parameters to this before stepping;
        the norm before clipping is kept in ``last_grad_norm``.
    norm_type : float
        The norm used for clipping.
    autocast : torch.dtype, optional
        Mixed precision: run ``compute`` under :func:`torch.autocast` with this dtype on the
        model's device type (``torch.bfloat16`` works on the CPU; ``torch.float16`` on CUDA
        also scales the loss with a :class:`torch.amp.GradScaler`, whose state is
        checkpointed).

    Subclasses override :meth:`__call__` for other updates (a meta-learner's outer step);
    state they keep goes through ``state_dict``/``load_state_dict`` so a resumed run
    continues it.

    Examples
    --------
    Four micro-batches of 8 per optimiser step, gradients clipped to norm 1:

    >>> import torch
    >>> from torch import nn
    >>> from transferkit.train import Phase, Stream, Trainer, Update, classification_step
    >>> x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    >>> model = nn.Linear(5, 3)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> update = Update(accumulate=4, max_norm=1.0)
    >>> phase = Phase(classification_step(), opt, {"train": Stream(x, y, batch_size=8, seed=0)},
    ...               update=update)
    >>> _ = Trainer(model, phase, max_steps=5, seed=0).fit()
    >>> update.last_grad_norm is not None
    True
    """

    def __init__(
        self,
        accumulate: int = 1,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        autocast: torch.dtype | None = None,
    ) -> None:
        if isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 1:
            raise ValueError(f"accumulate must be an integer >= 1; got {accumulate!r}")
        if max_norm is not None and not (max_norm > 0 and math.isfinite(max_norm)):
            raise ValueError(f"max_norm must be a positive finite number; got {max_norm!r}")
        if autocast is not None and not isinstance(autocast, torch.dtype):
            raise TypeError(f"autocast must be a torch.dtype or None; got {autocast!r}")
        self.accumulate = accumulate
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.autocast = autocast
        self.last_grad_norm: Tensor | None = None
        self._scaler: Any = None

    # ----------------------------------------------------------------- the step
    def __call__(self, compute: Compute, phase: Phase, ctx: StepContext) -> Mapping[str, Tensor]:
        """Take one optimiser step; return the losses (the mean over micro-batches)."""
        scaler = self._grad_scaler(ctx)
        if self.accumulate == 1:  # the plain step, bit for bit a hand-written loop's
            with self._autocast(ctx):
                losses, total = compute()
            phase.optimizer.zero_grad(set_to_none=True)
            if not finite_or_policy(total, losses, ctx):
                return losses
            self._backward(total, scaler)
            self._average_gradients(phase, ctx)
            self._step(phase, scaler)
            return losses
        phase.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, Tensor] = {}
        for i in range(self.accumulate):
            last = i == self.accumulate - 1
            with self._sync(ctx.model, last):
                with self._autocast(ctx):
                    losses, total = compute()
                if not finite_or_policy(total, losses, ctx):
                    phase.optimizer.zero_grad(set_to_none=True)  # drop the whole step
                    return {k: v.detach() for k, v in losses.items()}
                self._backward(total / self.accumulate, scaler)
            for k, v in losses.items():
                v = v.detach()
                sums[k] = v if k not in sums else sums[k] + v
        self._average_gradients(phase, ctx)
        self._step(phase, scaler)
        return {k: v / self.accumulate for k, v in sums.items()}

    @staticmethod
    def _average_gradients(phase: Phase, ctx: StepContext) -> None:
        """Under ``torch.distributed``, average the gradients over the ranks (a model the
        user wrapped in ``DistributedDataParallel`` has done so itself)."""
        if is_distributed() and getattr(ctx.model, "no_sync", None) is None:
            average_gradients([p for g in phase.optimizer.param_groups for p in g["params"]])

    def _backward(self, total: Tensor, scaler: Any) -> None:
        (scaler.scale(total) if scaler is not None else total).backward()

    def _step(self, phase: Phase, scaler: Any) -> None:
        if self.max_norm is not None:
            if scaler is not None:
                scaler.unscale_(phase.optimizer)
            params = [p for g in phase.optimizer.param_groups for p in g["params"]]
            self.last_grad_norm = torch.nn.utils.clip_grad_norm_(
                params, self.max_norm, norm_type=self.norm_type
            ).detach()
        if scaler is not None:
            scaler.step(phase.optimizer)
            scaler.update()
        else:
            phase.optimizer.step()
        if phase.scheduler is not None:
            phase.scheduler.step()

    def _autocast(self, ctx: StepContext) -> contextlib.AbstractContextManager[Any]:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(ctx.trainer.device.type, dtype=self.autocast)

    @staticmethod
    def _sync(model: nn.Module, last: bool) -> contextlib.AbstractContextManager[Any]:
        no_sync = getattr(model, "no_sync", None)  # DistributedDataParallel
        return contextlib.nullcontext() if last or no_sync is None else no_sync()

    def _grad_scaler(self, ctx: StepContext) -> Any:
        if self.autocast is not torch.float16 or ctx.trainer.device.type != "cuda":
            return None
        if self._scaler is None:
            self._scaler = torch.amp.GradScaler("cuda")
        return self._scaler

    # ------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The loss scaler's state (empty without float16 on CUDA)."""
        return {"scaler": self._scaler.state_dict() if self._scaler is not None else None}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        scaler_state = state.get("scaler")
        if scaler_state is not None:
            self._scaler = torch.amp.GradScaler("cuda")
            self._scaler.load_state_dict(scaler_state)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(accumulate={self.accumulate}, max_norm={self.max_norm}, "
            f"autocast={self.autocast})"
        )


class Callback:
    """Base class of things that run between steps: evaluation, control steps, early stops.

    ``on_step_end`` runs after steps ``every``, ``2 * every``, ... and after the last step;
    ``ctx.step + 1`` is then the number of steps taken. A callback may log metrics
    (``trainer.log``), change the model, a sampler or a weighting between blocks of steps,
    or set ``trainer.should_stop``. Override ``state_dict``/``load_state_dict`` for state
    that must survive a resume (callbacks are matched by position).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from transferkit.train import Callback, Stream, classification_step, fit
    >>> class StopWhenLow(Callback):
    ...     every = 5
    ...     def on_step_end(self, trainer, ctx):
    ...         if trainer.history.last("loss/ce") < 10.0:
    ...             trainer.should_stop = True
    >>> x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    >>> net = nn.Linear(4, 2)
    >>> hist = fit(net, classification_step(), {"train": Stream(x, y, seed=0)},
    ...            torch.optim.SGD(net.parameters(), lr=0.1), 50,
    ...            callbacks=[StopWhenLow()], seed=0)
    >>> hist.records[-1]["step"]
    5
    """

    every: int = 1

    def on_fit_start(self, trainer: Trainer) -> None:
        """Called once when ``fit`` starts (also when it resumes)."""

    def on_step_end(self, trainer: Trainer, ctx: StepContext) -> None:
        """Called after every ``every``-th step and after the last one."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """Called once when training ends (not when it is interrupted)."""

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint; ``{}`` by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


def evaluating(model: nn.Module, fn: Callable[[nn.Module], T]) -> T:
    """``fn(model)`` with the model in eval mode and gradients off; the mode is restored.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Dropout(0.5)
    >>> evaluating(net, lambda m: m.training), net.training
    (False, True)
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return fn(model)
    finally:
        model.train(was_training)


def derived_generator(seed: int, index: int) -> torch.Generator:
    """The random generator of the ``index``-th draw (batch, epoch, ...) of a stream or
    sampler seeded with ``seed``: ``(seed * 1_000_003 + index) mod 2**63``, so draws are a
    pure function of the two and a resumed run repeats them.

    Examples
    --------
    >>> a = torch.rand(2, generator=derived_generator(7, 3))
    >>> bool(torch.equal(a, torch.rand(2, generator=derived_generator(7, 3))))
    True
    """
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(index)) % 2**63)


def progress_wanted() -> bool:
    """Whether a progress bar should show by default: only for a person at a terminal
    (stderr is a tty) and never when ``TRANSFERKIT_QUIET`` is set (``reproduce --quiet``).

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"TRANSFERKIT_QUIET": "1"}):
    ...     progress_wanted()                      # quiet, or not a terminal: no bars
    False
    """
    import os
    import sys

    return sys.stderr.isatty() and not os.environ.get("TRANSFERKIT_QUIET")
