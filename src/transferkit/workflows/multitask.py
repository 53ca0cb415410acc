"""Multi-task learning on the user's own table: one input (a text column, or numeric
feature columns) and several targets (classes, numbers, and for texts per-word tags),
trained together on a shared encoder with any registered loss weighting.

``run_multitask`` reads the table (:mod:`transferkit.data.tasks`), holds out a random
validation share (or reads ``val``), builds :func:`~transferkit.multitask.text.text_multitask`
over the text backbone (``minilm-l6`` by default, or a Hugging Face folder) or
:func:`~transferkit.multitask.text.features_multitask` over the feature columns, and
trains with SGD and momentum, the task losses combined by the weighting (``gradnorm`` by
default; ``equal``, ``uncertainty``, ``dwa`` or any registered one). ``out`` receives:

- ``metrics.json``: per task on the validation rows, accuracy (class), RMSE (regression),
  or token accuracy and the micro F1 of the tags other than ``O`` (tags); the weights at
  the end; per epoch each task's mean training loss and weight; ``warnings`` when a
  result cannot mean much (a class task at chance, a tagger that tags no entity, too few
  steps; also printed);
- ``curves.png``: those losses and weights by epoch;
- ``model.safetensors`` (or ``model.pt``) and ``model.json``: the weights, tasks and
  vocabularies.

A killed run resumes with ``resume=True`` (the loop's checkpoint, every epoch).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .._io import atomic_write_json
from ..data.tasks import MultitaskTable, read_multitask_table
from ..distributed import rank_and_world_size
from ..multitask import create_weighting, list_weightings, multitask_step
from ..multitask.text import (
    TaskHead,
    entity_f1,
    features_multitask,
    tag_counts,
    text_multitask,
)
from ..train import Phase, Stream, Trainer, Update
from ..train.interface import Callback, progress_wanted
from .images import (
    EpochLines,
    RunFolder,
    architecture,
    autocast_dtype,
    build_backbone,
    chance_warning,
    fit_or_refuse,
    resolve_device,
    save_model,
    warn_results,
)
from .labelshift import InputError

__all__ = ["MultitaskOptions", "MultitaskResult", "run_multitask"]


@dataclass
class MultitaskOptions:
    """How to train: the tasks (``name:kind:column``), the input, the weighting and the
    loop (recorded in ``settings.json``; ``--resume`` needs the same).

    Examples
    --------
    >>> MultitaskOptions(tasks=("a:class",), weighting="nope").check()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    transferkit.workflows.labelshift.InputError: --weighting must be one of ...; got 'nope'
    """

    tasks: tuple[str, ...] = ()
    weighting: str = "gradnorm"
    backbone: str = "auto"
    text_column: str = "text"
    features: tuple[str, ...] = ()
    hidden: tuple[int, ...] = (128, 128)
    epochs: int = 5
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 16
    max_length: int = 128
    gradnorm_alpha: float = 1.5
    seed: int = 0
    val_fraction: float = 0.2
    precision: str = "float32"

    def check(self) -> None:
        if not self.tasks:
            raise InputError("give at least one --task name:kind[:column]")
        autocast_dtype(self.precision)  # checks it
        if self.weighting not in list_weightings():
            raise InputError(f"--weighting must be one of {', '.join(list_weightings())}; "
                             f"got {self.weighting!r}")
        for name in ("epochs", "batch_size", "max_length"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be >= 1; got "
                                 f"{getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"--lr must be a finite number > 0; got {self.lr}")
        if not 0 < self.val_fraction < 1:
            raise InputError(f"the validation fraction must be in (0, 1); got "
                             f"{self.val_fraction}")


@dataclass
class MultitaskResult:
    """What :func:`run_multitask` wrote and measured.

    Examples
    --------
    >>> m = {"tasks": {"mood": {}}, "backbone": "minilm-l6", "weighting": "gradnorm",
    ...      "validation": {"mood": {"n": 40, "accuracy": 0.85}}}
    >>> MultitaskResult(Path("run"), m).lines()
    ['1 tasks on minilm-l6, weighting gradnorm', 'mood: accuracy 0.8500 (40 validation rows)']
    """

    out: Path
    metrics: dict[str, Any]
    written: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        m = self.metrics
        out = [f"{len(m['tasks'])} tasks on {m['backbone']}, weighting {m['weighting']}"]
        for name, v in m["validation"].items():
            shown = ", ".join(f"{k} {x:.4f}" for k, x in v.items()
                              if k != "n" and isinstance(x, float))
            out.append(f"{name}: {shown} ({v['n']} validation rows)")
        return out


def _read(path: Any, what: str, opts: MultitaskOptions,
          vocab: dict[str, list[str]] | None = None) -> MultitaskTable:
    try:
        return read_multitask_table(path, opts.tasks, text_column=opts.text_column,
                                    feature_columns=opts.features, vocab=vocab)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        raise InputError(f"{what}: {exc}") from None


def _heads(table: MultitaskTable) -> dict[str, TaskHead]:
    return {t.name: TaskHead(t.kind, 1 if t.kind == "regression" else len(table.vocab[t.name]))
            for t in table.tasks}


def _split(n: int, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = max(1, round(n * fraction))
    if n - k < 1:
        raise InputError(f"--train has {n} row(s): too few to hold out a validation share")
    return order[:k].sort().values, order[k:].sort().values


@torch.no_grad()
def _outputs(model: Any, x: Tensor, device: torch.device, batch: int = 64) -> dict[str, Any]:
    was = model.training
    model.eval()
    parts: dict[str, list[Tensor]] = {}
    try:
        for i in range(0, len(x), batch):
            for k, v in model(x[i:i + batch].to(device)).items():
                parts.setdefault(k, []).append(v.float().cpu())
    finally:
        model.train(was)
    return parts


def _scale(y: Tensor) -> tuple[float, float]:
    """Mean and standard deviation of a regression target's present values (1 when they
    do not vary)."""
    ok = y[~torch.isnan(y)].double()
    if len(ok) == 0:
        return 0.0, 1.0
    sd = float(ok.std()) if len(ok) > 1 else 0.0
    return float(ok.mean()), sd if sd > 0 else 1.0


def evaluate_tasks(model: Any, x: Tensor, targets: dict[str, Tensor], table: MultitaskTable,
                   device: torch.device,
                   scales: dict[str, tuple[float, float]] | None = None,
                   ) -> dict[str, dict[str, Any]]:
    """Per task: accuracy (class), RMSE in the column's units (regression; the model
    predicts standardised values, ``scales`` maps them back), token accuracy and the micro
    F1 of the tags other than ``O`` (tags), on the rows that carry the task's target."""
    parts = _outputs(model, x, device)
    out: dict[str, dict[str, Any]] = {}
    for t in table.tasks:
        y = targets[t.name]
        if t.kind == "tags":
            outside = table.vocab[t.name].index("O") if "O" in table.vocab[t.name] else -1
            counts = {"right": 0, "total": 0, "tp": 0, "fp": 0, "fn": 0}
            for chunk, start in zip(parts[t.name], range(0, len(x), 64), strict=True):
                tags = y[start:start + len(chunk), :chunk.shape[1]]
                for k, v in tag_counts(chunk.argmax(-1), tags, outside).items():
                    counts[k] += v
            total = counts["total"]
            out[t.name] = {"n": int((y >= 0).any(1).sum()), "tokens": total,
                           "token_accuracy": counts["right"] / total if total else math.nan,
                           "entity_tag_f1": entity_f1(counts)}
            continue
        pred = torch.cat(parts[t.name])
        if t.kind == "class":
            ok = y >= 0
            acc = float((pred.argmax(1)[ok] == y[ok]).double().mean()) if ok.any() else math.nan
            out[t.name] = {"n": int(ok.sum()), "accuracy": acc}
        else:
            ok = ~torch.isnan(y)
            mean, sd = (scales or {}).get(t.name, (0.0, 1.0))
            err = (pred.reshape(-1)[ok] * sd + mean - y[ok]).double()
            out[t.name] = {"n": int(ok.sum()),
                           "rmse": float(err.pow(2).mean().sqrt()) if ok.any() else math.nan}
    return out


def _warnings(validation: dict[str, dict[str, Any]], targets: dict[str, Tensor],
              table: MultitaskTable, steps: int) -> list[str]:
    """Say, per task, when a validation metric cannot mean much, and warn for each
    (:class:`~transferkit.workflows.images.ResultWarning`): a class task within two binomial
    standard errors of always predicting its most common class, a tagging task whose model
    tags no entity that the validation rows hold, too few optimiser steps."""
    out = []
    for t in table.tasks:
        v, y = validation[t.name], targets[t.name]
        if t.kind == "class" and v["n"]:
            out += chance_warning(t.name, v["accuracy"], torch.bincount(
                y[y >= 0], minlength=len(table.vocab[t.name])), "rows")
        if t.kind == "tags" and not v["entity_tag_f1"] > 0 and bool((y > 0).any()):
            out.append(f"{t.name}: the model tags none of the validation rows' entities "
                       "(entity-tag F1 0): it has learned the outside tag only")
    return warn_results(out, steps, stacklevel=3)


class _EpochWeights(Callback):
    """Logs the weighting's current task weights at the end of every epoch."""

    def __init__(self, strategy: Any, tasks: list[str], per_epoch: int) -> None:
        self.strategy, self.tasks, self.every = strategy, tasks, per_epoch

    def on_step_end(self, trainer: Any, ctx: Any) -> None:
        step = ctx.step + 1
        records = [r for r in trainer.history.records if step - self.every < r["step"] <= step]
        means = [[r[f"loss/{t}"] for r in records if f"loss/{t}" in r] for t in self.tasks]
        vec = torch.tensor([sum(m) / len(m) if m else math.nan for m in means])
        with torch.no_grad():
            weights = self.strategy.forward(vec).tolist()
        trainer.log(step, {f"weight/{t}": float(w)
                           for t, w in zip(self.tasks, weights, strict=True)})


def _curves(history: Any, tasks: list[str], per_epoch: int, epochs: int) -> dict[str, Any]:
    curves: dict[str, Any] = {"epoch": list(range(1, epochs + 1))}
    for t in tasks:
        loss, weight = [], []
        for e in range(1, epochs + 1):
            rows = [r for r in history.records if (e - 1) * per_epoch < r["step"] <= e * per_epoch]
            vals = [r[f"loss/{t}"] for r in rows if f"loss/{t}" in r]
            loss.append(sum(vals) / len(vals) if vals else math.nan)
            w = [r[f"weight/{t}"] for r in rows if f"weight/{t}" in r]
            weight.append(w[-1] if w else math.nan)
        curves[t] = {"train_loss": loss, "weight": weight}
    return curves


def _plot(path: Path, curves: dict[str, Any], tasks: list[str], title: str) -> Path:
    from matplotlib.ticker import MaxNLocator

    from .._plotting import figure

    with figure(path.parent, path.stem, figsize=(9.0, 3.4)) as (fig, saved):
        ax_loss, ax_w = fig.subplots(1, 2)
        for t in tasks:
            ax_loss.plot(curves["epoch"], curves[t]["train_loss"], marker="o", ms=3, label=t)
            ax_w.plot(curves["epoch"], curves[t]["weight"], marker="o", ms=3, label=t)
        ax_loss.set(xlabel="epoch", ylabel="mean training loss", yscale="log")
        ax_w.set(xlabel="epoch", ylabel="task weight")
        for ax in (ax_loss, ax_w):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        ax_w.legend(fontsize=8)
        fig.suptitle(title, fontsize=9)
    return saved


def run_multitask(
    train: str | os.PathLike[str], out: str | os.PathLike[str], *,
    val: str | os.PathLike[str] | None = None, options: MultitaskOptions | None = None,
    device: str = "auto", resume: bool = False, force: bool = False,
    progress: bool | None = None,
) -> MultitaskResult:
    """Train every task of ``options.tasks`` together on the table ``train``; see the
    module docstring. Bad input raises :class:`InputError` before anything is written.

    Examples
    --------
    >>> import tempfile
    >>> tmp = Path(tempfile.mkdtemp())
    >>> rows = ["x1,x2,kind,size"] + [f"{i % 3},{i % 5},{'ab'[i % 2]},{i % 7}" for i in range(40)]
    >>> _ = (tmp / "t.csv").write_text(chr(10).join(rows))
    >>> opts = MultitaskOptions(tasks=("kind:class", "size:regression"), features=("x1", "x2"),
    ...                         epochs=2, batch_size=8, lr=0.05)
    >>> result = run_multitask(tmp / "t.csv", tmp / "run", options=opts, device="cpu",
    ...                        progress=False)
    >>> sorted(result.metrics["validation"]), result.metrics["weighting"]
    (['kind', 'size'], 'gradnorm')
    >>> sorted(p.name for p in result.written)
    ['curves.png', 'metrics.json', 'model.json']
    """
    opts = options or MultitaskOptions()
    opts.check()
    dev = resolve_device(device)
    show = progress_wanted() if progress is None else progress
    table = _read(train, "--train", opts)
    texts = table.texts is not None
    backbone = (("minilm-l6" if opts.backbone == "auto" else opts.backbone) if texts
                else "mlp")
    net = build_backbone(backbone, None, None, max_length=opts.max_length) if texts else None
    spec = net.input_spec if net is not None else None
    try:
        x, targets = table.encode(spec)
    except ValueError as exc:
        raise InputError(f"--train: {exc}") from None
    if val is not None:
        vt = _read(val, "--val", opts, vocab=table.vocab)
        try:
            xv, yv = vt.encode(spec)
        except ValueError as exc:
            raise InputError(f"--val: {exc}") from None
    else:
        held, kept = _split(len(x), opts.val_fraction, opts.seed)
        xv, yv = x[held], {k: v[held] for k, v in targets.items()}
        x, targets = x[kept], {k: v[kept] for k, v in targets.items()}
    # regression targets are trained standardised by the training rows' mean and standard
    # deviation (a target in the thousands would otherwise swamp every other loss and the
    # shared encoder with it); metrics and predictions are in the column's own units
    scales = {t.name: _scale(targets[t.name]) for t in table.tasks if t.kind == "regression"}
    targets = {k: (v - scales[k][0]) / scales[k][1] if k in scales else v
               for k, v in targets.items()}
    folder = RunFolder(out, {**asdict(opts), "train": str(train),
                             "val": None if val is None else str(val)}, resume, force)
    heads = _heads(table)
    tasks = [t.name for t in table.tasks]
    torch.manual_seed(opts.seed)
    model = (text_multitask(net, heads) if net is not None
             else features_multitask(x.shape[1], heads, hidden=opts.hidden))
    model.to(dev)
    strategy = create_weighting(opts.weighting, tasks=tasks, alpha=opts.gradnorm_alpha,
                                shared=model.shared_parameters()) \
        if opts.weighting == "gradnorm" else create_weighting(opts.weighting, tasks=tasks)
    per_epoch = max(1, math.ceil(len(x) / opts.batch_size))
    steps = per_epoch * opts.epochs
    stream = Stream(x, *(targets[t] for t in tasks), batch_size=opts.batch_size,
                    seed=opts.seed)
    opt = torch.optim.SGD(model.parameters(), lr=opts.lr, momentum=opts.momentum)
    phase = Phase(multitask_step(), opt, {"train": stream}, combiner=strategy,
                  update=Update(autocast=autocast_dtype(opts.precision)))
    lines = EpochLines(f"multitask {opts.weighting}", per_epoch, opts.epochs)
    trainer = Trainer(model, phase, steps,
                      callbacks=[_EpochWeights(strategy, tasks, per_epoch), lines],
                      seed=opts.seed, checkpoint=folder.path / "checkpoint.pt",
                      checkpoint_every=per_epoch, progress=show,
                      desc=f"multitask {opts.weighting}")
    fit_or_refuse(trainer)
    curves = _curves(trainer.history, tasks, per_epoch, opts.epochs)
    with torch.no_grad():
        final = strategy.forward(torch.tensor(
            [curves[t]["train_loss"][-1] for t in tasks])).tolist()
    metrics: dict[str, Any] = {
        "tasks": {t.name: {"kind": t.kind, "column": t.column,
                           **({"vocab": table.vocab[t.name]} if t.name in table.vocab else {})}
                  for t in table.tasks},
        "backbone": backbone, "weighting": opts.weighting, "train_rows": len(x),
        "validation": evaluate_tasks(model, xv, yv, table, dev, scales),
        "regression_scales": {k: {"mean": m, "std": sd} for k, (m, sd) in scales.items()},
        "final_weights": dict(zip(tasks, final, strict=True)), "curves": curves,
    }
    metrics["warnings"] = _warnings(metrics["validation"], yv, table, steps)
    written: list[Path] = []
    if rank_and_world_size()[0] == 0:
        written.append(atomic_write_json(folder.path / "metrics.json", metrics))
        written.append(_plot(folder.path / "curves.png", curves, tasks,
                             f"{len(tasks)} tasks on {backbone}, {opts.weighting}"))
        meta = {"architecture": architecture(backbone, texts), "tasks": metrics["tasks"],
                "input_spec": spec.to_dict() if spec is not None else {"features":
                                                                        list(opts.features)},
                "trained_by": "multitask", "weighting": opts.weighting}
        written.insert(0, save_model(folder.path, model.cpu(), meta))
        (folder.path / "checkpoint.pt").unlink(missing_ok=True)
    return MultitaskResult(folder.path, metrics, written)
