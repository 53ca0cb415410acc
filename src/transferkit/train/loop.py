"""The one training loop every deep recipe uses.

A run is a list of :class:`Phase` objects cycled in order (one phase for plain training;
two with their own optimisers for alternating schedules such as DSMT-Nets'). At each step
the active phase's ``step_fn`` returns a dict of named losses, its ``combiner`` turns them
into the scalar that is back-propagated (the plain sum by default; a loss-weighting
strategy such as GradNorm plugs in here and may update its own state), the optimiser steps,
and callbacks run (evaluation, control steps between blocks of steps, early stopping).

What this gives every method without copying:

- two or more data streams per step (labelled source + unlabelled target): ``streams``;
- per-example weights: a third tensor in a stream, used by the step function;
- samplers that change over time (curricula): a stream's :class:`~.streams.Sampler`;
- periodic control steps: :class:`Callback` with ``every``;
- alternating phases with their own optimisers: several :class:`Phase` objects;
- inner/outer meta-learning: a ``step_fn`` that adapts a functional copy of the model
  inside the step, the loop doing the outer update.

Runs are repeatable bit for bit on the CPU (batches are a function of the step, the loop's
random state is seeded and saved) and resumable: with ``checkpoint=path`` the state is
written atomically every ``checkpoint_every`` steps and at the end, and a new
:class:`Trainer` pointed at the same path continues where the killed one stopped, giving
the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._io import atomic_write
from .streams import Stream

Batches = dict[str, tuple[Tensor, ...]]
StepFn = Callable[[nn.Module, Batches, "StepContext"], Mapping[str, Tensor]]
Combiner = Callable[[Mapping[str, Tensor], "StepContext"], Tensor]


def sum_losses(losses: Mapping[str, Tensor], ctx: StepContext) -> Tensor:
    """The default combiner: the plain sum of the named losses."""
    total = None
    for value in losses.values():
        total = value if total is None else total + value
    if total is None:
        raise ValueError("the step function returned no losses")
    return total


@dataclass
class StepContext:
    """What a step function, combiner or callback may want to know about the current step."""

    step: int
    max_steps: int
    phase: str
    trainer: Trainer

    @property
    def progress(self) -> float:
        """Training progress p in [0, 1) (used by DANN's schedules)."""
        return self.step / max(self.max_steps, 1)

    @property
    def model(self) -> nn.Module:
        return self.trainer.model


@dataclass
class Phase:
    """One kind of update: a step function, its optimiser, its streams, its share of steps.

    Parameters
    ----------
    step_fn : callable(model, batches, ctx) -> dict of losses
        ``batches`` maps each stream's name to the tuple of tensors of this step's batch.
    optimizer : torch.optim.Optimizer
    streams : dict of name -> Stream
    steps : int
        Consecutive steps of this phase in each cycle through the phases.
    name : str
    scheduler : learning-rate scheduler, optional
        Stepped after every optimiser step of this phase.
    combiner : callable(losses, ctx) -> scalar tensor, optional
        Combines the named losses; the plain sum by default. Objects with a
        ``state_dict`` (e.g. loss-weighting strategies) are checkpointed.
    """

    step_fn: StepFn
    optimizer: torch.optim.Optimizer
    streams: Mapping[str, Stream]
    steps: int = 1
    name: str = "train"
    scheduler: Any = None
    combiner: Combiner = sum_losses


class Callback:
    """Base class of things that run between steps.

    ``every`` sets how often ``on_step_end`` runs (after steps every, 2*every, ...; and
    after the last step). Override ``state_dict``/``load_state_dict`` to survive a resume.
    """

    every: int = 1

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer, ctx: StepContext) -> None:
        pass

    def on_fit_end(self, trainer: Trainer) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@dataclass
class History:
    """Metrics per step: ``records`` is a list of dicts, each with a ``"step"`` key."""

    records: list[dict[str, float]] = field(default_factory=list)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one metric, in order."""
        pairs = [(int(r["step"]), r[key]) for r in self.records if key in r]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def last(self, key: str) -> float:
        steps, values = self.series(key)
        if not values:
            raise KeyError(f"no metric {key!r} recorded")
        return values[-1]


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def _state_of(obj: Any) -> Any:
    fn = getattr(obj, "state_dict", None)
    return fn() if callable(fn) else None


def _load_state(obj: Any, state: Any) -> None:
    if state is not None:
        obj.load_state_dict(state)


class Trainer:
    """Runs phases of training steps with callbacks, checkpoints and a progress bar.

    Parameters
    ----------
    model : nn.Module
        Batches are moved to the device of its first parameter.
    phases : Phase or sequence of Phase
        Cycled in order, each for its ``steps``.
    max_steps : int
        Total optimiser steps over all phases.
    callbacks : sequence of Callback
    seed : int, optional
        Seeds the loop's own random state (dropout, noise layers). The caller's global
        random state is left as it was.
    checkpoint : path, optional
        Where to write the state; if the file exists when ``fit`` starts, the run resumes.
    checkpoint_every : int, optional
        Steps between checkpoints (default: only at the end).
    progress : bool, optional
        Show a tqdm bar; by default only when stderr is a terminal and the environment
        variable ``TRANSFERKIT_QUIET`` is unset (``transferkit reproduce --quiet`` sets it).
    desc : str
        Label of the progress bar.
    log_losses_every : int
        Record the losses in the history every this many steps (0: never).
    """

    def __init__(
        self,
        model: nn.Module,
        phases: Phase | Sequence[Phase],
        max_steps: int,
        callbacks: Sequence[Callback] = (),
        seed: int | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int | None = None,
        progress: bool | None = None,
        desc: str = "train",
        log_losses_every: int = 1,
    ) -> None:
        self.model = model
        self.phases = [phases] if isinstance(phases, Phase) else list(phases)
        if not self.phases:
            raise ValueError("at least one Phase is needed")
        for ph in self.phases:
            if ph.steps < 1:
                raise ValueError(f"phase {ph.name!r} has steps={ph.steps}; need >= 1")
        if max_steps < 0:
            raise ValueError(f"max_steps must be >= 0; got {max_steps}")
        self.max_steps = max_steps
        self.callbacks = list(callbacks)
        self.seed = seed
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.checkpoint_every = checkpoint_every
        if progress is None:  # a bar only for a person at a terminal, never under --quiet
            progress = sys.stderr.isatty() and not os.environ.get("TRANSFERKIT_QUIET")
        self.progress = progress
        self.desc = desc
        self.log_losses_every = log_losses_every
        self.history = History()
        self.step = 0
        self.should_stop = False
        self.device = _model_device(model)
        self._cycle = [ph for ph in self.phases for _ in range(ph.steps)]

    # ------------------------------------------------------------------ history
    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Add metrics at ``step`` to the history (merged with a record of the same step)."""
        values = {k: float(v) for k, v in metrics.items()}
        if self.history.records and self.history.records[-1]["step"] == step:
            self.history.records[-1].update(values)
        else:
            self.history.records.append({"step": step, **values})

    # -------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "phases": [
                {
                    "optimizer": ph.optimizer.state_dict(),
                    "scheduler": _state_of(ph.scheduler),
                    "combiner": _state_of(ph.combiner),
                }
                for ph in self.phases
            ],
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device)
            if self.device.type == "cuda"
            else None,
            "history": self.history.records,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if len(state["phases"]) != len(self.phases):
            raise ValueError(
                f"checkpoint has {len(state['phases'])} phases; this trainer has {len(self.phases)}"
            )
        self.model.load_state_dict(state["model"])
        for ph, s in zip(self.phases, state["phases"], strict=True):
            ph.optimizer.load_state_dict(s["optimizer"])
            _load_state(ph.scheduler, s["scheduler"])
            _load_state(ph.combiner, s["combiner"])
        # callbacks are matched in order; ones added since the checkpoint start fresh
        for cb, s in zip(self.callbacks, state["callbacks"], strict=False):
            cb.load_state_dict(s)
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.history = History([dict(r) for r in state["history"]])
        self.step = int(state["step"])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the full training state atomically (a killed write leaves the old file)."""
        buf = io.BytesIO()
        torch.save(self.state_dict(), buf)
        atomic_write(path, lambda f: f.write(buf.getvalue()))

    def load(self, path: str | os.PathLike[str]) -> None:
        """Restore a state written by :meth:`save` (loaded with ``weights_only=True``)."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.load_state_dict(state)

    # --------------------------------------------------------------------- fit
    def _devices(self) -> list[int]:
        return [self.device.index or 0] if self.device.type == "cuda" else []

    def fit(self) -> History:
        """Run until ``max_steps`` (or a callback sets ``should_stop``); return the history."""
        with torch.random.fork_rng(devices=self._devices()):
            if self.checkpoint is not None and self.checkpoint.exists():
                self.load(self.checkpoint)
            elif self.seed is not None:
                torch.manual_seed(self.seed)
            self._run()
        return self.history

    def _run(self) -> None:
        self.model.train()
        for cb in self.callbacks:
            cb.on_fit_start(self)
        bar = tqdm(
            total=self.max_steps,
            initial=self.step,
            desc=self.desc,
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
        )
        try:
            while self.step < self.max_steps and not self.should_stop:
                self._one_step(bar)
                if (
                    self.checkpoint is not None
                    and self.checkpoint_every
                    and self.step % self.checkpoint_every == 0
                    and self.step < self.max_steps
                ):
                    self.save(self.checkpoint)
        finally:
            bar.close()
        for cb in self.callbacks:
            cb.on_fit_end(self)
        if self.checkpoint is not None:
            self.save(self.checkpoint)

    def _one_step(self, bar: Any) -> None:
        phase = self._cycle[self.step % len(self._cycle)]
        ctx = StepContext(self.step, self.max_steps, phase.name, self)
        batches = {name: s.batch(self.step, self.device) for name, s in phase.streams.items()}
        losses = phase.step_fn(self.model, batches, ctx)
        total = phase.combiner(losses, ctx)
        phase.optimizer.zero_grad(set_to_none=True)
        total.backward()
        phase.optimizer.step()
        if phase.scheduler is not None:
            phase.scheduler.step()
        if self.log_losses_every and (self.step + 1) % self.log_losses_every == 0:
            self.log(self.step + 1, {f"loss/{k}": v.detach().item() for k, v in losses.items()})
        self.step += 1
        last = self.step == self.max_steps
        for cb in self.callbacks:
            if self.step % cb.every == 0 or last:
                cb.on_step_end(self, ctx)
        bar.update(1)
        if self.progress and self.step % 50 == 0:
            bar.set_postfix({k: f"{v.detach().item():.3g}" for k, v in losses.items()})


def fit(
    model: nn.Module,
    step_fn: StepFn,
    streams: Mapping[str, Stream],
    optimizer: torch.optim.Optimizer,
    max_steps: int,
    *,
    scheduler: Any = None,
    combiner: Combiner = sum_losses,
    **trainer_kwargs: Any,
) -> History:
    """Train ``model`` for ``max_steps`` steps of one phase; see :class:`Trainer` for the rest.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from transferkit.train import Stream, fit, classification_step
    >>> x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    >>> model = nn.Linear(5, 3)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> hist = fit(model, classification_step(), {"train": Stream(x, y, batch_size=16)},
    ...            opt, max_steps=20, seed=0)
    >>> len(hist.series("loss/ce")[1])
    20
    """
    phase = Phase(step_fn, optimizer, streams, scheduler=scheduler, combiner=combiner)
    return Trainer(model, phase, max_steps, **trainer_kwargs).fit()
