"""Callbacks that ship with the loop: periodic evaluation and best-checkpoint selection."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from .interface import Callback, StepContext, evaluating

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Trainer

__all__ = ["BestCheckpoint", "Evaluate"]


class Evaluate(Callback):
    """Every ``every`` steps, record ``fn(model) -> dict of metrics`` in the history.

    The model is put in eval mode and gradients are off while ``fn`` runs.

    Examples
    --------
    >>> import torch
    >>> from transferkit.train import Phase, Stream, Trainer, accuracy, classification_step
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(64, 4, generator=g)
    >>> y = (x[:, 0] > 0).long()
    >>> net = nn.Linear(4, 2)
    >>> phase = Phase(classification_step(), torch.optim.SGD(net.parameters(), lr=0.5),
    ...               {"train": Stream(x, y, batch_size=16, seed=0)})
    >>> check = Evaluate(lambda m: {"val/accuracy": accuracy(m, x, y)}, every=5)
    >>> hist = Trainer(net, phase, 20, callbacks=[check], seed=0, progress=False).fit()
    >>> hist.series("val/accuracy")[0]                  # recorded every 5 steps
    [5, 10, 15, 20]
    """

    def __init__(self, fn: Callable[[nn.Module], Mapping[str, float]], every: int = 100) -> None:
        self.fn = fn
        self.every = every

    def on_step_end(self, trainer: Trainer, ctx: StepContext) -> None:
        trainer.log(ctx.step + 1, dict(evaluating(trainer.model, self.fn)))


class BestCheckpoint(Callback):
    """Keep the model state with the lowest ``criterion(model)`` and restore it at the end.

    Every ``every`` steps from ``start`` on (and after the last step) the criterion is
    computed in eval mode without gradients and logged as ``"selection/<name>"``; at the
    end of training the model is loaded with the best state (the whole module, so an
    :class:`~transferkit.adaptation.AdaptationModel` restores its objective too). The
    model-selection criteria of :mod:`transferkit.adaptation` (e.g. ``DEVCriterion``) plug in
    here.

    Parameters
    ----------
    criterion : callable(model) -> float
        Lower is better (e.g. :class:`transferkit.adaptation.DEVCriterion`); for
        unsupervised adaptation it must not use target labels.
    every : int
    start : int
        Steps before which checkpoints are not considered.
    name : str
        Key suffix in the history.
    patience : int, optional
        Early stopping: stop training after this many evaluations in a row without a new
        best (the best state is still restored at the end).
    after_phase : str, optional
        Evaluate only at steps taken by the phase of this name (with several phases: e.g.
        after each main-task epoch, not after the auxiliary ones).
    ends : str, optional
        What running out of ``patience`` ends: the whole training (None) or only the
        phase of this name (:meth:`Trainer.end_phase`; the others go on), as DSMT-Nets'
        auxiliary tasks stop on their own validation loss.
    restore : bool
        Load the best state at the end (False: only stop, as Keras' ``EarlyStopping``).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from transferkit.train import Stream, fit, classification_step
    >>> x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    >>> model = nn.Linear(3, 2)
    >>> sel = BestCheckpoint(lambda m: float(m.weight.norm()), every=2)
    >>> _ = fit(model, classification_step(), {"train": Stream(x, y, batch_size=8)},
    ...         torch.optim.SGD(model.parameters(), lr=0.1), 6, callbacks=[sel], seed=0)
    >>> sel.best_step in (2, 4, 6)
    True
    """

    def __init__(
        self, criterion: Callable[[nn.Module], float], every: int = 100, start: int = 0,
        name: str = "criterion", patience: int | None = None, after_phase: str | None = None,
        ends: str | None = None, restore: bool = True,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1; got {every}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 or None; got {patience}")
        self.patience = patience
        self.after_phase = after_phase
        self.ends, self.restore = ends, restore
        self.since_best = 0
        self.criterion = criterion
        self.every = every
        self.start = start
        self.name = name
        self.best_score = float("inf")
        self.best_step = -1
        self.best_state: dict[str, Tensor] | None = None

    def on_step_end(self, trainer: Trainer, ctx: StepContext) -> None:
        step = ctx.step + 1
        if step < self.start or (self.after_phase is not None and ctx.phase != self.after_phase):
            return
        model = trainer.model
        score = float(evaluating(model, self.criterion))
        trainer.log(step, {f"selection/{self.name}": score})
        if score < self.best_score:
            self.best_score, self.best_step = score, step
            if self.restore:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.since_best = 0
        else:
            self.since_best += 1
            if self.patience is not None and self.since_best >= self.patience:
                self._stop(trainer)

    def _stop(self, trainer: Trainer) -> None:
        if self.ends is None:
            trainer.should_stop = True
        else:
            trainer.end_phase(self.ends)

    def on_fit_start(self, trainer: Trainer) -> None:
        # a run resumed after it stopped early stays stopped
        if self.patience is not None and self.since_best >= self.patience:
            self._stop(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.restore and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_step": self.best_step,
                "best_state": self.best_state, "since_best": self.since_best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_score = float(state["best_score"])
        self.best_step = int(state["best_step"])
        self.best_state = state["best_state"]
        self.since_best = int(state.get("since_best", 0))
