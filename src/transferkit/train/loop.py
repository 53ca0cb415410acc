"""The one training loop every deep recipe uses.

A run is a list of :class:`Phase` objects cycled in order (one phase for plain training;
two with their own optimisers for alternating schedules such as DSMT-Nets'). At each step
the active phase's :class:`~.interface.Update` asks for the step's losses (the loop draws
the next batch of each of the phase's streams, the ``step_fn`` returns a dict of named
losses and the ``combiner`` turns them into the scalar that is back-propagated: the plain
sum by default; a loss-weighting strategy such as GradNorm plugs in here), back-propagates
and steps the optimiser; then callbacks run (evaluation, control steps between blocks of
steps, early stopping).

What this gives every method without copying:

- two or more data streams per step (labelled source + unlabelled target): ``streams``,
  in memory (:class:`~.streams.Stream`) or any map-style ``Dataset``
  (:class:`~.streams.DatasetStream`);
- per-example weights: a third tensor in a stream, used by the step function;
- samplers that change over time (curricula), checkpointed with their state;
- periodic control steps: :class:`~.interface.Callback` with ``every``;
- alternating phases with their own optimisers: several :class:`Phase` objects;
- gradient clipping, accumulation and mixed precision: the phase's ``update``; a
  meta-learner's outer step: a subclass of :class:`~.interface.Update`;
- ``torch.distributed`` (e.g. under ``torchrun``; the trainer joins the process group the
  environment describes): each rank trains on its shard of every batch, the gradients are
  averaged over the ranks after each backward, rank 0's parameters and buffers are
  broadcast when ``fit`` starts, the logged losses are averaged over the ranks (so the
  history describes the whole batch), and only rank 0 writes checkpoints and shows
  progress (see :mod:`transferkit.distributed`).

Runs are repeatable bit for bit on the CPU (each stream's batches are a function of its
seed and its own draw count, the loop's random state is seeded and saved) and resumable:
with ``checkpoint=path`` the state (model, optimisers, schedulers, combiners, updates,
callbacks, draw counts and sampler state, random state, history) is written atomically
every ``checkpoint_every`` steps and at the end, and a new :class:`Trainer` pointed at the
same path continues where the killed one stopped, giving the same numbers as an
uninterrupted run.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._io import atomic_write
from ..distributed import (
    broadcast_module,
    init_from_env,
    is_distributed,
    rank_and_world_size,
    sum_across_ranks,
)
from .interface import (
    NONFINITE_POLICIES,
    Batches,
    Callback,
    Combiner,
    StepContext,
    StepFn,
    Update,
    progress_wanted,
)
from .streams import Stream

__all__ = [
    "Batches", "Callback", "CheckpointError", "Combiner", "History", "Phase", "StepContext",
    "StepFn", "Trainer", "Update", "fit", "sum_losses",
]


def sum_losses(losses: Mapping[str, Tensor], ctx: StepContext) -> Tensor:
    """The default combiner: the plain sum of the named losses.

    Examples
    --------
    >>> float(sum_losses({"ce": torch.tensor(0.5), "reg": torch.tensor(0.25)}, None))
    0.75
    """
    total = None
    for value in losses.values():
        total = value if total is None else total + value
    if total is None:
        raise ValueError("the step function returned no losses")
    return total


@dataclass
class Phase:
    """One kind of update: a step function, its optimiser, its streams, its share of steps.

    Parameters
    ----------
    step_fn : callable(model, batches, ctx) -> dict of losses
        ``batches`` maps each stream's name to the tuple of tensors of this step's batch.
    optimizer : torch.optim.Optimizer
    streams : dict of name -> Stream
        Each stream is drawn once per (micro-)batch of this phase; a stream shared with
        another phase keeps one draw count, so it walks through its epochs whoever draws.
    steps : int
        Consecutive steps of this phase in each cycle through the phases.
    name : str
    scheduler : learning-rate scheduler, optional
        Stepped after every optimiser step of this phase.
    combiner : callable(losses, ctx) -> scalar tensor, optional
        Combines the named losses; the plain sum by default. Objects with a
        ``state_dict`` (e.g. loss-weighting strategies) are checkpointed.
    update : Update, optional
        Backward and optimiser step (clipping, accumulation, mixed precision, or a
        subclass's own update); the plain ``Update()`` by default. Checkpointed.
    first_steps : int, optional
        Steps of this phase in the first cycle only (a burn-in, as DSMT-Nets' five
        auxiliary epochs before alternating); ``steps`` by default. 0 skips the phase in
        the first cycle.

    Examples
    --------
    Two alternating phases, as in semi-supervised schedules: three supervised steps, then
    one on unlabelled data with its own optimiser:

    >>> import torch
    >>> from torch import nn
    >>> from transferkit.train import Phase, Stream, Trainer, classification_step
    >>> x, y = torch.randn(40, 4), torch.randint(0, 2, (40,))
    >>> net = nn.Linear(4, 2)
    >>> entropy = lambda m, b, ctx: {"ent": -(m(b["u"][0]).softmax(1)
    ...                                       * m(b["u"][0]).log_softmax(1)).sum(1).mean()}
    >>> sup = Phase(classification_step(), torch.optim.SGD(net.parameters(), lr=0.1),
    ...             {"train": Stream(x, y, batch_size=8, seed=0)}, steps=3, name="sup")
    >>> uns = Phase(entropy, torch.optim.SGD(net.parameters(), lr=0.01),
    ...             {"u": Stream(x, batch_size=8, seed=1)}, name="unsup")
    >>> hist = Trainer(net, [sup, uns], max_steps=8, seed=0).fit()
    >>> hist.series("loss/ent")[0]
    [4, 8]
    """

    step_fn: StepFn
    optimizer: torch.optim.Optimizer
    streams: Mapping[str, Stream]
    steps: int = 1
    name: str = "train"
    scheduler: Any = None
    combiner: Combiner = sum_losses
    update: Update = field(default_factory=Update)
    first_steps: int | None = None


class CheckpointError(ValueError):
    """A checkpoint the loop refuses to load (it holds more than tensors).

    Examples
    --------
    >>> issubclass(CheckpointError, ValueError)
    True
    """


@dataclass
class History:
    """Metrics per step: ``records`` is a list of dicts, each with a ``"step"`` key.

    Examples
    --------
    >>> h = History([{"step": 1, "loss/ce": 0.9}, {"step": 2, "loss/ce": 0.7, "val/acc": 0.6}])
    >>> h.series("loss/ce"), h.last("val/acc")
    (([1, 2], [0.9, 0.7]), 0.6)
    """

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
        Seeds the loop's own random state (dropout, noise layers); under
        ``torch.distributed`` rank r uses ``seed + r``, so the ranks draw different masks for
        their different rows. The caller's global random state is left as it was.
    checkpoint : path, optional
        Where to write the state; if the file exists when ``fit`` starts, the run resumes.
        Under ``torch.distributed`` only rank 0 writes it; every rank reads it.
    checkpoint_every : int, optional
        Steps between checkpoints (default: only at the end).
    progress : bool, optional
        Show a tqdm bar; by default only on rank 0, when stderr is a terminal and the
        environment variable ``TRANSFERKIT_QUIET`` is unset (``transferkit reproduce
        --quiet`` sets it).
    desc : str
        Label of the progress bar.
    log_losses_every : int
        Record the losses in the history every this many steps (0: never). The values
        are kept on the device and read in bulk when the history is read (or every 256
        records), so logging every step does not wait for the device every step.
    nonfinite : {"raise", "skip", "warn", "ignore"}
        What a step with a NaN or infinite combined loss does: stop with
        :class:`~transferkit.train.interface.NonFiniteLossError` naming the step and the
        losses (default); be dropped without touching the model, the optimiser or the
        scheduler; warn and go on; or go unchecked. Loss weightings and MSTN's centroids
        never fold a non-finite value into their state, whatever the policy.

    Attributes
    ----------
    step : int
        Steps taken so far (restored on resume).
    history : History
        Logged losses and metrics.
    should_stop : bool
        Set by a callback to end training after the current step.
    ended : set of str
        Names of the phases ended by :meth:`end_phase` (restored on resume).
    device : torch.device
        The model's device.
    rank : int
        This process's rank under ``torch.distributed`` (0 alone).

    Examples
    --------
    A run killed after its checkpoint at step 10 resumes to the same final weights:

    >>> import tempfile, pathlib, torch
    >>> from torch import nn
    >>> from transferkit.train import Phase, Stream, Trainer, classification_step, seeded
    >>> x, y = torch.randn(48, 4), torch.randint(0, 2, (48,))
    >>> def run(ckpt, steps):
    ...     with seeded(0):
    ...         net = nn.Linear(4, 2)
    ...     phase = Phase(classification_step(), torch.optim.SGD(net.parameters(), lr=0.1),
    ...                   {"train": Stream(x, y, batch_size=8, seed=0)})
    ...     Trainer(net, phase, steps, seed=0, checkpoint=ckpt).fit()
    ...     return net.weight.detach().clone()
    >>> with tempfile.TemporaryDirectory() as d:
    ...     ckpt = pathlib.Path(d) / "run.pt"
    ...     _ = run(ckpt, 10)            # "killed" at step 10, checkpoint on disk
    ...     resumed = run(ckpt, 20)      # a new trainer continues from step 10
    >>> bool(torch.equal(resumed, run(None, 20)))
    True
    """

    _FLUSH_EVERY = 256

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
        nonfinite: str = "raise",
    ) -> None:
        if nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}; got {nonfinite!r}")
        self.nonfinite = nonfinite
        self.model = model
        self.phases = [phases] if isinstance(phases, Phase) else list(phases)
        if not self.phases:
            raise ValueError("at least one Phase is needed")
        for ph in self.phases:
            if ph.steps < 1:
                raise ValueError(f"phase {ph.name!r} has steps={ph.steps}; need >= 1")
            if ph.first_steps is not None and ph.first_steps < 0:
                raise ValueError(f"phase {ph.name!r} has first_steps={ph.first_steps}; "
                                 f"need >= 0")
            if not isinstance(ph.update, Update):
                raise TypeError(
                    f"phase {ph.name!r}: update must be a transferkit.train.Update; "
                    f"got a {type(ph.update).__name__}"
                )
        if max_steps < 0:
            raise ValueError(f"max_steps must be >= 0; got {max_steps}")
        self.max_steps = max_steps
        self.callbacks = list(callbacks)
        self.seed = seed
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.checkpoint_every = checkpoint_every
        init_from_env()
        self.rank, self._world = rank_and_world_size()
        if progress is None:
            progress = progress_wanted()
        self.progress = bool(progress) and self.rank == 0
        self.desc = desc
        self.log_losses_every = log_losses_every
        self._history = History()
        self._shown: dict[str, float] = {}  # the last logged metrics, for the progress bar
        self._pending: list[tuple[int, dict[str, Tensor]]] = []
        self.step = 0
        self.should_stop = False
        self.ended: set[str] = set()
        self._cursor = 0  # position in the phase schedule; == step until a phase ends
        self.device = _model_device(model)
        self._cycle = [i for i, ph in enumerate(self.phases) for _ in range(ph.steps)]
        self._first_cycle = [
            i for i, ph in enumerate(self.phases)
            for _ in range(ph.steps if ph.first_steps is None else ph.first_steps)
        ]
        # every distinct stream, in order of first appearance, with its own draw count;
        # for each phase, (name, position in that list) of its streams
        self._streams: list[Stream] = []
        self._phase_streams: list[list[tuple[str, int]]] = []
        for ph in self.phases:
            slots = []
            for name, st in ph.streams.items():
                pos = next((k for k, known in enumerate(self._streams) if known is st), None)
                if pos is None:
                    pos = len(self._streams)
                    self._streams.append(st)
                slots.append((name, pos))
            self._phase_streams.append(slots)
        self._draws = [0] * len(self._streams)

    # ------------------------------------------------------------------ history
    @property
    def history(self) -> History:
        """The metrics logged so far (pending loss values are read from the device first)."""
        self._flush()
        return self._history

    @history.setter
    def history(self, value: History) -> None:
        self._pending.clear()
        self._history = value

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for step, losses in pending:
            values = _stacked(losses).tolist()
            self._merge(step, dict(zip(losses, values, strict=True)))

    def _merge(self, step: int, values: dict[str, float]) -> None:
        records = self._history.records
        if records and records[-1]["step"] == step:
            records[-1].update(values)
        else:
            records.append({"step": step, **values})

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Add metrics at ``step`` to the history (merged with a record of the same step)."""
        self._flush()
        values = {k: float(v) for k, v in metrics.items()}
        self._merge(step, values)
        self._shown.update(values)

    def draws(self, stream: Stream) -> int:
        """How many batches ``stream`` has served in this run (restored on resume)."""
        for i, known in enumerate(self._streams):
            if known is stream:
                return self._draws[i]
        raise KeyError("this stream belongs to no phase of the trainer")

    # -------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (see the module docstring for the list)."""
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "phases": [
                {
                    "optimizer": ph.optimizer.state_dict(),
                    "scheduler": _state_of(ph.scheduler),
                    "combiner": _state_of(ph.combiner),
                    "update": ph.update.state_dict(),
                }
                for ph in self.phases
            ],
            "streams": [
                {"draws": d, "sampler": st.state_dict()}
                for st, d in zip(self._streams, self._draws, strict=True)
            ],
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "ended": sorted(self.ended),
            "cursor": self._cursor,
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device)
            if self.device.type == "cuda"
            else None,
            "history": self.history.records,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` into this trainer's objects."""
        if len(state["phases"]) != len(self.phases):
            raise ValueError(
                f"checkpoint has {len(state['phases'])} phases; this trainer has {len(self.phases)}"
            )
        if "streams" not in state:
            raise ValueError(
                "the checkpoint was written by an older transferkit (no stream draw counts); "
                "it cannot resume exactly: delete it to start afresh"
            )
        streams = state["streams"]
        if len(streams) != len(self._streams):
            raise ValueError(
                f"checkpoint has {len(streams)} streams; this trainer has {len(self._streams)}"
            )
        self.model.load_state_dict(state["model"])
        for ph, s in zip(self.phases, state["phases"], strict=True):
            ph.optimizer.load_state_dict(s["optimizer"])
            _load_state(ph.scheduler, s["scheduler"])
            _load_state(ph.combiner, s["combiner"])
            _load_state(ph.update, s.get("update"))
        for i, (st, s) in enumerate(zip(self._streams, streams, strict=True)):
            st.load_state_dict(s["sampler"])
            self._draws[i] = int(s["draws"])
        # callbacks are matched in order; ones added since the checkpoint start fresh
        for cb, s in zip(self.callbacks, state["callbacks"], strict=False):
            cb.load_state_dict(s)
        rank_rngs = state.get("rank_rngs")
        rank, world = rank_and_world_size()
        own = rank_rngs[rank] if rank_rngs is not None and len(rank_rngs) == world else None
        torch.set_rng_state(own if own is not None else state["rng"])
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.history = History([dict(r) for r in state["history"]])
        self.step = int(state["step"])
        self.ended = set(state.get("ended", ()))
        self._cursor = int(state.get("cursor", self.step))

    def end_phase(self, name: str) -> None:
        """Skip the phase ``name`` from now on (e.g. when its own early stopping fires);
        the other phases go on in their order. Ending every phase stops training.

        Examples
        --------
        >>> import torch
        >>> from torch import nn
        >>> from transferkit.train import Phase, Stream, Trainer, classification_step
        >>> x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
        >>> net = nn.Linear(3, 2)
        >>> make = lambda name: Phase(classification_step(),
        ...                           torch.optim.SGD(net.parameters(), lr=0.1),
        ...                           {"train": Stream(x, y, batch_size=4)}, name=name)
        >>> trainer = Trainer(net, [make("a"), make("b")], max_steps=6, seed=0)
        >>> trainer.end_phase("b")
        >>> trainer.fit().series("loss/ce")[0], sorted(trainer.ended)
        ([1, 2, 3, 4, 5, 6], ['b'])
        """
        names = [ph.name for ph in self.phases]
        if name not in names:
            raise ValueError(f"no phase named {name!r}; the phases are {names}")
        self.ended.add(name)
        if all(ph.name in self.ended for ph in self.phases):
            self.should_stop = True

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the full training state atomically (a killed write leaves the old file).

        Under ``torch.distributed`` every rank must call it (each rank's random state is
        gathered into the file); only rank 0 writes.
        """
        rank_rngs = None
        if is_distributed():
            rank_rngs = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(rank_rngs, torch.get_rng_state())
        if self.rank != 0:
            return
        state = self.state_dict()
        if rank_rngs is not None:
            state["rank_rngs"] = rank_rngs
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write(path, lambda f: f.write(buf.getvalue()))

    def load(self, path: str | os.PathLike[str]) -> None:
        """Restore a state written by :meth:`save` (loaded with ``weights_only=True``); a
        file holding code or other objects is refused with a :class:`CheckpointError`."""
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except pickle.UnpicklingError:
            what = ("holds code or Python objects besides tensors and is refused"
                    if zipfile.is_zipfile(path) else "is not a torch file")
            raise CheckpointError(f"checkpoint {str(path)!r} {what}: it is not one this loop "
                                  "wrote; delete it to start the run again") from None
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
                torch.manual_seed(self.seed + self.rank)
            broadcast_module(self.model)  # every rank starts from rank 0's model
            self._run()
        return self.history

    def _run(self) -> None:
        self.model.train()
        for cb in self.callbacks:
            cb.on_fit_start(self)
        # a terminal that reports 0 columns (some CI consoles) would get no bar at all
        width = shutil.get_terminal_size(fallback=(80, 24)).columns
        bar = tqdm(
            total=self.max_steps,
            initial=self.step,
            desc=self.desc,
            disable=not self.progress,
            leave=False,
            dynamic_ncols=width > 0,
            ncols=None if width > 0 else 80,
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
            for st in self._streams:
                st.close()
        for cb in self.callbacks:
            cb.on_fit_end(self)
        if self.checkpoint is not None:
            self.save(self.checkpoint)

    def _draw(self, slots: list[tuple[str, int]]) -> Batches:
        batches: Batches = {}
        for name, i in slots:
            batches[name] = self._streams[i].batch(self._draws[i], self.device)
            self._draws[i] += 1
        return batches

    def _next_phase(self) -> int:
        """The index of the phase that takes this step, skipping ended phases."""
        first = len(self._first_cycle)
        while True:
            pos = self._cursor
            index = (self._first_cycle[pos] if pos < first
                     else self._cycle[(pos - first) % len(self._cycle)])
            self._cursor += 1
            if self.phases[index].name not in self.ended:
                return index

    def _one_step(self, bar: Any) -> None:
        index = self._next_phase()
        phase, slots = self.phases[index], self._phase_streams[index]
        ctx = StepContext(self.step, self.max_steps, phase.name, self)

        def compute() -> tuple[Mapping[str, Tensor], Tensor]:
            losses = phase.step_fn(self.model, self._draw(slots), ctx)
            return losses, phase.combiner(losses, ctx)

        losses = phase.update(compute, phase, ctx)
        if self.log_losses_every and (self.step + 1) % self.log_losses_every == 0:
            named = {f"loss/{k}": v.detach() for k, v in losses.items()}
            if self._world > 1:
                named = _mean_over_ranks(named)
            self._pending.append((self.step + 1, named))
            if len(self._pending) >= self._FLUSH_EVERY:
                self._flush()
        self.step += 1
        last = self.step == self.max_steps
        for cb in self.callbacks:
            if self.step % cb.every == 0 or last:
                cb.on_step_end(self, ctx)
        bar.update(1)
        if self.progress and (self.step % 50 == 0 or last):
            shown = {k: f"{v.detach().item():.3g}" for k, v in losses.items()}
            shown.update({k.rsplit("/", 1)[-1]: f"{v:.3g}" for k, v in self._shown.items()})
            bar.set_postfix(shown)


def _stacked(losses: Mapping[str, Tensor]) -> Tensor:
    """The scalar losses in one vector, float64 where the device has it (MPS has not),
    so that every loss's value is kept exactly."""
    wide = torch.float32 if any(v.device.type == "mps" for v in losses.values()) \
        else torch.float64
    return torch.stack([v.reshape(()).to(wide) for v in losses.values()])


def _mean_over_ranks(losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Each logged loss averaged over the ranks (one all-reduce), so that the history,
    the progress lines and every figure drawn from them describe the whole batch rather
    than rank 0's shard of it."""
    mean = sum_across_ranks(_stacked(losses)) / rank_and_world_size()[1]
    return dict(zip(losses, mean.unbind(), strict=True))


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
