"""Pseudo-task augmentation (Meyerson & Miikkulainen, ICML 2018, arXiv 1803.04062).

A shared trunk feeds D decoders per task (linear output layers); training minimises the
sum of the losses of every (task, decoder) pair, each pair a "pseudo-task" of the trunk.
Training runs in meta-iterations of M steps; after each, a control step scores every
decoder on a validation split and changes the decoders; predictions use each task's best
decoder (by that score). The paper's control methods are interchangeable
:class:`DecoderControl` strategies, made by name with :func:`create_decoder_control`:

- ``"pta-i"``: independent initialisation only (the decoders start different; nothing
  else);
- ``"pta-f"``: each decoder is frozen with probability ``p_freeze`` for the next
  meta-iteration (a frozen decoder still sends its loss to the trunk, but does not move);
- ``"pta-p"``: every decoder but the best of its task gets Gaussian noise of standard
  deviation ``noise`` added to its weights;
- ``"pta-hgd"``: each decoder has its own dropout rate on its input; the greedy step
  copies the best decoder (weights and dropout rate) over all the others, then the
  others' dropout rates are hyper-perturbed by Gaussian noise of standard deviation
  ``rate_noise`` (clipped to [0, ``max_rate``]).

No public code exists. The defaults here (D = 4, M = 50 steps, ``p_freeze`` = 0.5,
``noise`` = 0.1 x the decoder weights' initial scale, dropout rates starting uniform in
[0, 0.5], ``rate_noise`` = 0.1, ``max_rate`` = 0.9) are our choices, not the paper's: its
experimental section could not be read here (the stored copies of arXiv 1803.04062 hold
its opening only), so no value is claimed to be sourced. The ``pta`` claim uses these
defaults but M = 40, for its run time.

Works for one task (intratask sharing) or several, with any trunk:

Examples
--------
>>> import torch
>>> from torch import nn
>>> from transferkit.multitask import DecoderControlCallback, PseudoTaskModel, pta_step
>>> from transferkit.train import Phase, Stream, Trainer
>>> x, y = torch.randn(120, 6), torch.randint(0, 3, (120,))
>>> model = PseudoTaskModel(nn.Sequential(nn.Linear(6, 16), nn.ReLU()), 16,
...                         {"digit": 3}, n_decoders=4, seed=0)
>>> control = DecoderControlCallback("pta-hgd", x[:30], {"digit": y[:30]}, every=10, seed=0)
>>> phase = Phase(pta_step(), torch.optim.Adam(model.parameters(), 1e-2),
...               {"train": Stream(x[30:], y[30:], batch_size=16, seed=0)})
>>> _ = Trainer(model, phase, 40, callbacks=[control], seed=0).fit()
>>> model.predict(x[:5])["digit"].shape     # the best decoder's logits
torch.Size([5, 3])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._errors import shape_errors
from .._registry import Registry
from ..train.interface import Batches, Callback, StepContext, StepFn, evaluating

__all__ = [
    "DecoderControl",
    "DecoderControlCallback",
    "PseudoTaskModel",
    "create_decoder_control",
    "list_decoder_controls",
    "pta_step",
    "register_decoder_control",
]


class PseudoTaskModel(nn.Module):
    """A trunk with ``n_decoders`` linear decoders per classification task.

    Parameters
    ----------
    trunk : nn.Module
        Shared model, input -> representation of ``in_features`` values.
    in_features : int
    tasks : mapping of task name -> number of classes
    n_decoders : int
        D; 1 is plain (multi-task) training.
    seed : int, optional
        Seeds the decoders' independent initialisation and dropout rates.

    Buffers (checkpointed with the model): ``dropout`` (tasks, D) rates, ``frozen`` (tasks,
    D) flags and ``best`` (tasks,) index of each task's best decoder.

    Examples
    --------
    >>> model = PseudoTaskModel(nn.Sequential(nn.Linear(5, 16), nn.ReLU()), 16,
    ...                         {"sign": 2, "digit": 10}, n_decoders=4, seed=0)
    >>> outs = model.decoder_outputs(torch.randn(3, 5))     # every decoder: (D, n, classes)
    >>> outs["digit"].shape, model(torch.randn(3, 5))["digit"].shape   # forward: the best one
    (torch.Size([4, 3, 10]), torch.Size([3, 10]))
    """

    dropout: Tensor
    frozen: Tensor
    best: Tensor

    def __init__(self, trunk: nn.Module, in_features: int, tasks: Mapping[str, int],
                 n_decoders: int = 4, seed: int | None = None) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("a PseudoTaskModel needs at least one task")
        if isinstance(n_decoders, bool) or int(n_decoders) != n_decoders or n_decoders < 1:
            raise ValueError(f"n_decoders must be an integer >= 1; got {n_decoders!r}")
        bad = {t: c for t, c in tasks.items() if int(c) < 2}
        if bad:
            raise ValueError(f"every task needs >= 2 classes; got {bad}")
        self.trunk = trunk
        self.tasks = tuple(tasks)
        self.n_decoders = int(n_decoders)
        g = torch.Generator().manual_seed(0 if seed is None else int(seed))
        self.decoders = nn.ModuleDict()
        for t, classes in tasks.items():
            layers = nn.ModuleList()
            for _ in range(self.n_decoders):
                layer = nn.Linear(in_features, int(classes))
                bound = 1.0 / math.sqrt(in_features)  # nn.Linear's own init, seeded here
                with torch.no_grad():
                    layer.weight.uniform_(-bound, bound, generator=g)
                    layer.bias.uniform_(-bound, bound, generator=g)
                layers.append(layer)
            self.decoders[t] = layers
        shape = (len(self.tasks), self.n_decoders)
        self.register_buffer("dropout", torch.zeros(shape))
        self.register_buffer("frozen", torch.zeros(shape, dtype=torch.bool))
        self.register_buffer("best", torch.zeros(len(self.tasks), dtype=torch.long))
        self.init_scale = 1.0 / math.sqrt(in_features)
        self.in_features = int(in_features)

    def _features(self, x: Tensor) -> Tensor:
        """The trunk's output, checked against the decoders' input width."""
        with shape_errors(f"the trunk cannot take input of shape {tuple(x.shape)}"):
            z = self.trunk(x)
        if z.ndim != 2 or z.shape[1] != self.in_features:
            raise ValueError(f"the trunk gives features of shape {tuple(z.shape)}; the "
                             f"decoders take (n, {self.in_features}) (in_features)")
        return z

    def layers(self, task: str) -> list[nn.Linear]:
        """The D decoders of ``task``."""
        layers = self.decoders[task]
        assert isinstance(layers, nn.ModuleList)
        return [m for m in layers if isinstance(m, nn.Linear)]

    def decoder_outputs(self, x: Tensor) -> dict[str, Tensor]:
        """``{task: logits of every decoder, shape (D, n, classes)}``.

        A frozen decoder's weights are constants (its loss still trains the trunk); while
        training, each decoder drops its input at its own rate (inverted dropout, one mask
        per decoder). The D decoders of a task run as one batched product.
        """
        z = self._features(x)
        out: dict[str, Tensor] = {}
        for i, t in enumerate(self.tasks):
            layers = self.layers(t)
            weights = torch.stack([lay.weight.detach() if bool(self.frozen[i, j]) else lay.weight
                                   for j, lay in enumerate(layers)])
            biases = torch.stack([lay.bias.detach() if bool(self.frozen[i, j]) else lay.bias
                                  for j, lay in enumerate(layers)])
            rates = self.dropout[i]
            if self.training and bool((rates > 0).any()):
                keep = (1.0 - rates).clamp_min(1e-6)[:, None, None]
                mask = torch.rand((len(layers), *z.shape), device=z.device) < keep
                inp = z.unsqueeze(0) * mask / keep
                out[t] = torch.baddbmm(biases.unsqueeze(1), inp, weights.transpose(1, 2))
            else:
                out[t] = torch.einsum("ni,doi->dno", z, weights) + biases.unsqueeze(1)
        return out

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``{task: logits of its best decoder}``."""
        return self.predict(x)

    def predict(self, x: Tensor, best: Tensor | None = None) -> dict[str, Tensor]:
        """``{task: logits of one decoder}``: each task's ``best[task index]`` decoder
        (default ``self.best``)."""
        chosen = self.best if best is None else torch.as_tensor(best)
        if chosen.shape != (len(self.tasks),) or bool(
                ((chosen < 0) | (chosen >= self.n_decoders)).any()):
            raise ValueError(f"best must name one decoder in 0..{self.n_decoders - 1} per task "
                             f"({len(self.tasks)}); got {chosen.tolist()}")
        z = self._features(x)
        return {t: self.layers(t)[int(chosen[i])](z) for i, t in enumerate(self.tasks)}

    def pseudo_task_losses(self, x: Tensor, targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"task/dj": cross-entropy}`` for every (task, decoder) pair; rows whose label
        is negative (missing) are left out of that task."""
        outputs = self.decoder_outputs(x)
        losses: dict[str, Tensor] = {}
        for t in self.tasks:
            y = targets[t]
            keep = y >= 0
            if not bool(keep.any()):
                continue
            logits = outputs[t][:, keep]  # (D, n, classes)
            d, n, c = logits.shape
            per_row = F.cross_entropy(logits.reshape(d * n, c), y[keep].repeat(d),
                                      reduction="none")
            for j, loss in enumerate(per_row.view(d, n).mean(dim=1)):
                losses[f"{t}/d{j}"] = loss
        return losses

    @torch.no_grad()
    def decoder_scores(self, x: Tensor, targets: Mapping[str, Tensor]) -> Tensor:
        """Validation accuracy of every decoder, shape (tasks, D), in eval mode."""
        def score(model: nn.Module) -> Tensor:
            outputs = self.decoder_outputs(x)
            rows = []
            for t in self.tasks:
                y = targets[t]
                keep = y >= 0
                hits = outputs[t][:, keep].argmax(dim=2) == y[keep]
                rows.append(hits.float().mean(dim=1))
            return torch.stack(rows)
        return evaluating(self, score)

    @torch.no_grad()
    def select_best(self, x: Tensor, targets: Mapping[str, Tensor]) -> Tensor:
        """Make each task's decoder with the best validation accuracy on ``(x, targets)``
        the one that predicts (``self.best``, the first on ties); returns it, shape (tasks,).

        Examples
        --------
        >>> import torch
        >>> from torch import nn
        >>> from transferkit.train import Phase, Stream, Trainer
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(64, 5, generator=g)
        >>> y = {"sign": (x[:, 0] > 0).long(), "big": (x[:, 1] > 1).long()}
        >>> model = PseudoTaskModel(nn.Sequential(nn.Linear(5, 16), nn.ReLU()), 16,
        ...                         {"sign": 2, "big": 2}, n_decoders=3, seed=0)
        >>> opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        >>> stream = Stream(x[:48], y["sign"][:48], y["big"][:48], batch_size=16, seed=0)
        >>> _ = Trainer(model, Phase(pta_step(), opt, {"train": stream}), 30, seed=0,
        ...             progress=False).fit()
        >>> best = model.select_best(x[48:], {t: v[48:] for t, v in y.items()})
        >>> best.shape, model.predict(x[48:])["sign"].shape   # predicts with the best decoders
        (torch.Size([2]), torch.Size([16, 2]))
        """
        best = self.decoder_scores(x, targets).argmax(dim=1)
        self.best.copy_(best)
        return best


def pta_step(stream: str = "train") -> StepFn:
    """Step function for :class:`PseudoTaskModel`: the stream holds ``(x, y_task1, ...)`` in
    ``model.tasks`` order; the losses are the (task, decoder) pairs, summed by the default
    combiner.

    Examples
    --------
    >>> model = PseudoTaskModel(nn.Linear(5, 8), 8, {"sign": 2}, n_decoders=3, seed=0)
    >>> x = torch.randn(6, 5)
    >>> losses = pta_step()(model, {"train": (x, (x[:, 0] > 0).long())}, None)
    >>> sorted(losses)                               # one loss per (task, decoder)
    ['sign/d0', 'sign/d1', 'sign/d2']
    """

    def step(model: nn.Module, batches: Batches, ctx: StepContext) -> dict[str, Tensor]:
        x, *ys = batches[stream]
        inner = model
        if not isinstance(inner, PseudoTaskModel):
            raise TypeError(f"pta_step needs a PseudoTaskModel; got {type(inner).__name__}")
        if len(ys) != len(inner.tasks):
            raise ValueError(f"the stream holds {len(ys)} targets for {len(inner.tasks)} tasks")
        return inner.pseudo_task_losses(x, dict(zip(inner.tasks, ys, strict=True)))

    return step


class DecoderControl:
    """A control method: what happens to the decoders after each meta-iteration.

    ``start(model, generator)`` runs once before training; ``control(model, scores,
    generator)`` after each meta-iteration, with ``scores`` (tasks, D) validation scores
    (higher is better); the best decoder per task has already been recorded in
    ``model.best``.

    Examples
    --------
    A control that re-initialises every decoder but the best one after each meta-iteration:

    >>> class Restart(DecoderControl):
    ...     @torch.no_grad()
    ...     def control(self, model, scores, generator):
    ...         for i, t in enumerate(model.tasks):
    ...             for j, layer in enumerate(model.layers(t)):
    ...                 if j != int(model.best[i]):
    ...                     layer.weight.uniform_(-0.1, 0.1, generator=generator)
    >>> with DECODER_CONTROLS.temporary("restart-demo", Restart):
    ...     type(create_decoder_control("restart-demo")).__name__
    'Restart'
    """

    def start(self, model: PseudoTaskModel, generator: torch.Generator) -> None:
        """Before training (nothing by default)."""

    def control(self, model: PseudoTaskModel, scores: Tensor, generator: torch.Generator) -> None:
        """After a meta-iteration (nothing by default: PTA-I)."""


DECODER_CONTROLS: Registry[type[DecoderControl]] = Registry("decoder control", base=DecoderControl)


def register_decoder_control(name: str) -> Callable[[type[DecoderControl]], type[DecoderControl]]:
    """Class decorator: make a :class:`DecoderControl` available to
    :func:`create_decoder_control` under ``name``.

    Examples
    --------
    >>> @register_decoder_control("nothing-demo")
    ... class Nothing(DecoderControl):
    ...     'Leaves the decoders alone (as PTA-I).'
    >>> "nothing-demo" in list_decoder_controls()
    True
    >>> DECODER_CONTROLS.unregister("nothing-demo")
    """
    return DECODER_CONTROLS.decorator(name)


def create_decoder_control(name: str, **kwargs: Any) -> DecoderControl:
    """A registered control method by name, e.g. ``create_decoder_control("pta-f",
    p_freeze=0.5)``; ``list_decoder_controls()`` names them.

    Examples
    --------
    >>> type(create_decoder_control("pta-hgd")).__name__
    'HyperperturbedGreedyDropout'
    """
    return DECODER_CONTROLS.get(name)(**kwargs)


def list_decoder_controls() -> list[str]:
    """Names of the registered control methods.

    Examples
    --------
    >>> list_decoder_controls()
    ['pta-f', 'pta-hgd', 'pta-i', 'pta-p']
    """
    return DECODER_CONTROLS.names()


@register_decoder_control("pta-i")
class IndependentInit(DecoderControl):
    """PTA-I: the decoders start independently initialised; nothing more."""


@register_decoder_control("pta-f")
class RandomFreeze(DecoderControl):
    """PTA-F: each decoder frozen with probability ``p_freeze`` for the next meta-iteration."""

    def __init__(self, p_freeze: float = 0.5) -> None:
        if not 0 <= p_freeze < 1:
            raise ValueError(f"p_freeze must be in [0, 1); got {p_freeze}")
        self.p_freeze = p_freeze

    def control(self, model: PseudoTaskModel, scores: Tensor, generator: torch.Generator) -> None:
        draw = torch.rand(tuple(model.frozen.shape), generator=generator)
        model.frozen.copy_(draw < self.p_freeze)


@register_decoder_control("pta-p")
class Perturb(DecoderControl):
    """PTA-P: Gaussian noise (std ``noise`` x the decoders' initial weight scale) on every
    decoder but the best of its task."""

    def __init__(self, noise: float = 0.1) -> None:
        if not noise >= 0:
            raise ValueError(f"noise must be >= 0; got {noise}")
        self.noise = noise

    @torch.no_grad()
    def control(self, model: PseudoTaskModel, scores: Tensor, generator: torch.Generator) -> None:
        std = self.noise * model.init_scale
        for i, t in enumerate(model.tasks):
            for j, layer in enumerate(model.layers(t)):
                if j == int(model.best[i]):
                    continue
                for p in (layer.weight, layer.bias):
                    p.add_(std * torch.randn(p.shape, generator=generator).to(p))


@register_decoder_control("pta-hgd")
class HyperperturbedGreedyDropout(DecoderControl):
    """PTA-HGD: per-decoder dropout rates; greedy copy of the best decoder (weights and
    rate) over the others, whose rates are then hyper-perturbed."""

    def __init__(self, initial_rates: tuple[float, float] = (0.0, 0.5),
                 rate_noise: float = 0.1, max_rate: float = 0.9) -> None:
        lo, hi = initial_rates
        if not 0 <= lo <= hi <= max_rate < 1:
            raise ValueError(f"need 0 <= initial rates <= max_rate < 1; got {initial_rates}, "
                             f"max_rate {max_rate}")
        self.initial_rates, self.rate_noise, self.max_rate = (lo, hi), rate_noise, max_rate

    def start(self, model: PseudoTaskModel, generator: torch.Generator) -> None:
        lo, hi = self.initial_rates
        draw = torch.rand(tuple(model.dropout.shape), generator=generator)
        model.dropout.copy_(lo + (hi - lo) * draw)

    @torch.no_grad()
    def control(self, model: PseudoTaskModel, scores: Tensor, generator: torch.Generator) -> None:
        for i, t in enumerate(model.tasks):
            b = int(model.best[i])
            best = model.layers(t)[b]
            for j, layer in enumerate(model.layers(t)):
                if j == b:
                    continue
                layer.weight.copy_(best.weight)
                layer.bias.copy_(best.bias)
                rate = float(model.dropout[i, b]) + self.rate_noise * float(
                    torch.randn((), generator=generator))
                model.dropout[i, j] = min(max(rate, 0.0), self.max_rate)


class DecoderControlCallback(Callback):
    """Runs a control method every ``every`` steps (a meta-iteration of M steps).

    Scores every decoder on the validation split ``(val_x, val_targets)``, records each
    task's best decoder in ``model.best`` (ties go to the lowest index), then applies the
    control. The history gets ``"pta/val_best"``, the mean over tasks of the best score.

    Parameters
    ----------
    control : str or DecoderControl
        A registered name (``list_decoder_controls()``) or an instance.
    val_x, val_targets : Tensor, mapping task -> Tensor
        The validation split; it must not overlap the test data.
    every : int
        M, the steps of a meta-iteration.
    seed : int
        Seeds the control's random choices (checkpointed).

    Examples
    --------
    >>> from transferkit.train import Phase, Stream, Trainer
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(90, 6, generator=g), torch.randint(0, 3, (90,), generator=g)
    >>> model = PseudoTaskModel(nn.Sequential(nn.Linear(6, 16), nn.ReLU()), 16, {"y": 3},
    ...                         n_decoders=4, seed=0)
    >>> control = DecoderControlCallback("pta-f", x[:30], {"y": y[:30]}, every=10, seed=0)
    >>> phase = Phase(pta_step(), torch.optim.Adam(model.parameters(), 1e-2),
    ...               {"train": Stream(x[30:], y[30:], batch_size=20, seed=0)})
    >>> hist = Trainer(model, phase, 30, callbacks=[control], seed=0, progress=False).fit()
    >>> len(hist.series("pta/val_best")[1])      # one validation score per meta-iteration
    3
    """

    def __init__(self, control: str | DecoderControl, val_x: Tensor,
                 val_targets: Mapping[str, Tensor], every: int = 50, seed: int = 0) -> None:
        if isinstance(every, bool) or int(every) < 1:
            raise ValueError(f"every must be an integer >= 1; got {every!r}")
        self.control = create_decoder_control(control) if isinstance(control, str) else control
        self.val_x, self.val_targets = val_x, dict(val_targets)
        self.every = int(every)
        self.generator = torch.Generator().manual_seed(int(seed))
        self._started = False

    def _model(self, trainer: Any) -> PseudoTaskModel:
        model = getattr(trainer.model, "module", trainer.model)
        if not isinstance(model, PseudoTaskModel):
            raise TypeError(f"DecoderControlCallback needs a PseudoTaskModel; got "
                            f"{type(model).__name__}")
        return model

    def on_fit_start(self, trainer: Any) -> None:
        if not self._started:
            self.control.start(self._model(trainer), self.generator)
            self._started = True

    def on_step_end(self, trainer: Any, ctx: StepContext) -> None:
        model = self._model(trainer)
        device = next(model.parameters()).device
        targets = {t: v.to(device) for t, v in self.val_targets.items()}
        scores = model.decoder_scores(self.val_x.to(device), targets)
        model.best.copy_(scores.argmax(dim=1))
        trainer.log(ctx.step + 1, {"pta/val_best": float(scores.max(dim=1).values.mean())})
        if ctx.step + 1 < ctx.max_steps:
            self.control.control(model, scores, self.generator)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "started": self._started}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self._started = bool(state["started"])
