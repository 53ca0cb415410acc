"""Fine-tune a pretrained backbone on the user's labelled images; predict with the result.

``transferkit finetune`` and ``transferkit predict`` are thin wrappers over
:func:`run_finetune` and :func:`run_predict`. The methods are those of
:func:`transferkit.finetune.prepare_finetune` (Li, Grandvalet, Davoine, ICML 2018): SGD with
momentum 0.9 and no optimiser weight decay, the penalty applied by
:class:`~transferkit.finetune.PenaltyUpdate`, a fixed number of epochs.

``alpha="auto"`` chooses among the grid (0.001 .. 1; times 0.01 for the non-quadratic
L1-SP and Group-Lasso-SP), ``alpha=(0.01, 0.1)`` among that list, on validation: the best
accuracy, then the lower cross-entropy, then the smaller alpha. By default
(``search="grid"``) every alpha trains to the end. ``search="halving"`` chooses by
successive halving instead: every alpha trains for a short share of the epochs, the
better half by that rule trains on, and so on until one trains to the end
(:func:`~transferkit.finetune.halving_rungs`; with four alphas it costs twice one model's
training instead of four times). It is not the default because it chose worse alphas on
the claims' settings (``benchmarks/bench_alpha_search.py``: the grid's alpha in 3 of 5
seeds on ``l2sp``, 1 of 5 on ``l2sp-imagenet``, where its test accuracy fell by 0.11 on
average): a strong penalty keeps the network near its pretrained start and looks best
after a few steps, then loses to a weaker one. The cost is said on standard error at the
start. The validation set is
``val`` or, without it, a stratified 20% of ``train``. The test set, when given, is only
reported.

The ``out`` folder: ``settings.json``; ``runs/alpha=<a>/`` (the loop's checkpoint at every
epoch, then that run's weights, removed at the end for every alpha but the chosen one
unless ``keep_runs``, and ``result.json`` with its curve up to the epoch it stopped at);
and at the end the model (``model.json`` + weights, see
:mod:`transferkit.workflows.images`), ``metrics.json``, ``confusion.png`` and
``learning_curve.png``. A killed run started again with ``resume=True`` continues from the
last epoch of the unfinished alpha and skips the finished ones (and finished rungs).
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write, atomic_write_json, check_writable_dir
from ..data.splits import split_images
from ..data.text import TextTable
from ..distributed import barrier, rank_and_world_size
from ..finetune import (
    PenaltyUpdate,
    alpha_grid,
    create_finetune_method,
    halving_cost,
    list_finetune_methods,
    prepare_finetune,
    regularizer_class,
    search_alpha,
)
from ..nets import TextSpec
from ..train import (
    DatasetStream,
    Evaluate,
    Phase,
    Stream,
    Trainer,
    classification_step,
)
from ..train.interface import progress_wanted
from .images import (
    MIN_STEPS,
    EpochLines,
    RunFolder,
    TrainingOptions,
    accuracy_text,
    architecture,
    check_labelled,
    check_workers,
    epoch_curve,
    evaluate,
    fit_or_refuse,
    load_model,
    loader,
    open_image_set,
    plot_confusion,
    plot_curves,
    predict_proba,
    resolve_device,
    result_warnings,
    save_model,
    steps_for,
    write_probabilities,
)
from .labelshift import InputError

__all__ = ["FinetuneOptions", "FinetuneResult", "run_finetune", "run_predict"]

SEARCHES = ("grid", "halving")
"""How several alphas are chosen among: the full grid (the default) or successive halving."""


@dataclass
class FinetuneOptions(TrainingOptions):
    """How to fine-tune: :class:`~transferkit.workflows.images.TrainingOptions` and the
    method's penalty.

    Examples
    --------
    >>> FinetuneOptions(method="l1sp", alpha="auto").alphas()   # L1-SP's grid is scaled
    (1e-05, 0.0001, 0.001, 0.01)
    >>> FinetuneOptions(alpha=(0.01, 0.1)).alphas()              # a grid of one's own
    (0.01, 0.1)
    >>> FinetuneOptions(method="nope").check()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    transferkit.workflows.labelshift.InputError: --method must be one of finetune, ...; got 'nope'
    """

    method: str = "l2sp"
    alpha: float | str | tuple[float, ...] = 0.1
    beta: float = 0.01
    freeze: int = 0
    keep_runs: bool = False
    search: str = "grid"

    def check(self) -> None:
        self.check_common(list_finetune_methods())
        values = self.alpha if isinstance(self.alpha, (tuple, list)) else (self.alpha,)
        if self.alpha != "auto" and (not values or any(
                isinstance(a, bool) or not isinstance(a, (int, float))
                or not (math.isfinite(a) and a >= 0) for a in values)):
            raise InputError("--alpha must be a number >= 0, a list of them (0.01,0.1) or "
                             f"'auto'; got {self.alpha!r}")
        if self.freeze < 0:
            raise InputError(f"--freeze must be >= 0; got {self.freeze}")
        if self.search not in SEARCHES:
            raise InputError(f"--search must be one of {', '.join(SEARCHES)}; "
                             f"got {self.search!r}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise InputError(f"beta must be a finite number >= 0; got {self.beta}")

    def alphas(self) -> tuple[float, ...]:
        """The alphas to train: the one given, the list given, or with ``"auto"`` the
        method's grid (:func:`~transferkit.finetune.alpha_grid`); more than one is chosen
        among on validation."""
        if isinstance(self.alpha, (tuple, list)):
            return tuple(float(a) for a in self.alpha)
        if self.alpha != "auto":
            return (float(self.alpha),)
        return alpha_grid(self.method)


@dataclass
class FinetuneResult:
    """What :func:`run_finetune` wrote and measured.

    Examples
    --------
    >>> metrics = {"method": "l2sp", "backbone": "mobilenet-v2", "alpha_sweep": [{}],
    ...            "validation": {"accuracy": 0.9, "accuracy_interval": [0.77, 0.96], "n": 40},
    ...            "test": None}
    >>> FinetuneResult(Path("run"), 0.1, metrics).lines()[1]
    'validation accuracy 0.9000 (95% interval 0.770-0.960, 40 images)'

    """

    out: Path
    alpha: float
    metrics: dict[str, Any]
    written: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        m = self.metrics
        out = [f"method {m['method']} on {m['backbone']}, alpha {self.alpha:g}"
               + (" (chosen on validation)" if len(m["alpha_sweep"]) > 1 else "")]
        for part in ("validation", "test"):
            if m.get(part):
                out.append(f"{part} {accuracy_text(m[part], m.get('input', 'images'))}")
        return out


def _say(msg: str) -> None:
    """A progress line on standard error (rank 0 only), terminal or not."""
    if rank_and_world_size()[0] == 0:
        print(msg, file=sys.stderr, flush=True)


@torch.no_grad()
def _features(part: torch.nn.Module, ds: Any, device: torch.device,
              workers: int) -> torch.utils.data.TensorDataset:
    """The outputs of the frozen ``part`` (the feature extractor, or its first blocks) on
    every item (in eval mode: held batch norms, no dropout), with the labels, as a dataset
    on the CPU."""
    was = part.training
    part.eval()
    feats, labels = [], []
    try:
        for x, y in loader(ds, 128, workers):
            feats.append(part(x.to(device)).float().cpu())
            labels.append(y)
    finally:
        part.train(was)
    return torch.utils.data.TensorDataset(torch.cat(feats), torch.cat(labels))


CACHE_BYTES = 2 << 30
"""The largest cache of a frozen prefix's outputs (train + validation) ``--freeze N`` keeps
in memory; beyond it the images go through the frozen blocks at every step."""


class _Rest(torch.nn.Module):
    """The blocks after the frozen first ``k`` and the head: the network on the cached
    outputs of the first ``k`` blocks (the same parameter objects as ``net``'s)."""

    def __init__(self, net: Any, k: int) -> None:
        super().__init__()
        self.blocks, self.head = net.features[k:], net.head

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(z))


@torch.no_grad()
def _cacheable_prefix(net: Any, k: int, ds: Any, device: torch.device, n_items: int) -> bool:
    """Whether the frozen first ``k`` blocks can be replaced by their outputs computed once:
    they give, on a sample batch, in training mode twice, exactly their eval-mode outputs
    (held batch norms, no dropout or drop-path among them), and the outputs for the
    training and validation sets fit in :data:`CACHE_BYTES`."""
    prefix = net.features[:k]
    x = torch.stack([ds[i][0] for i in range(min(len(ds), 8))]).to(device)
    was = prefix.training
    try:
        prefix.train()
        a, b = prefix(x), prefix(x)
        prefix.eval()
        c = prefix(x)
    finally:
        prefix.train(was)
    per_item = a[0].numel() * 4
    return bool(torch.equal(a, b) and torch.equal(a, c)) and per_item * n_items <= CACHE_BYTES


def _run_one(
    alpha: float, opts: FinetuneOptions, train_ds: Any, val_ds: Any, classes: list[str],
    run_dir: Path, device: torch.device, workers: int, progress: bool, texts: bool,
    epochs: int | None = None,
) -> dict[str, Any]:
    """Train with one alpha to ``epochs`` (default ``opts.epochs``), resuming from its
    checkpoint; its result. At ``opts.epochs`` the weights are written and the checkpoint
    goes; before it (a rung of successive halving) the checkpoint stays, for the run to
    continue from if the alpha survives. Training to epoch e and then on to E gives the
    weights a run straight to E gives (the learning rate is constant; the loop resumes
    exactly)."""
    epochs = opts.epochs if epochs is None else epochs
    done = run_dir / "result.json"
    if done.exists():
        result = dict(json.loads(done.read_text()))
        if result.get("epochs", opts.epochs) >= epochs:
            return result
    net = opts.build(texts)
    fisher = None
    if regularizer_class(create_finetune_method(opts.method).penalty).needs_fisher:
        n = min(len(train_ds), 256)
        fisher = torch.stack([train_ds[i][0] for i in range(n)]).to(device)
    net.to(device)
    try:
        setup = prepare_finetune(net, len(classes), opts.method, alpha, beta=opts.beta,
                                 freeze_blocks=opts.freeze, fisher_data=fisher,
                                 seed=opts.seed)
    except ValueError as exc:
        raise InputError(f"--freeze/--method: {exc}") from None
    per_epoch, steps = steps_for(len(train_ds), opts.batch_size, epochs)
    # frozen layers on inputs that are never augmented give the same outputs every epoch:
    # they are computed once and the rest trains on them (a linear probe: the head on the
    # features; --freeze N on images: the later blocks and the head on block N's outputs)
    frozen = not any(p.requires_grad for p in net.features.parameters())
    k = opts.freeze
    trained: torch.nn.Module = net
    prefix: torch.nn.Module | None = None
    if frozen:
        trained, prefix = net.head, net.features
    elif k and not texts and _cacheable_prefix(net, k, train_ds, device,
                                               len(train_ds) + len(val_ds)):
        trained, prefix = _Rest(net, k), net.features[:k]
    if prefix is not None:
        train_ds, val_ds = (_features(prefix, d, device, workers) for d in (train_ds, val_ds))
        stream: Any = Stream(*train_ds.tensors, batch_size=opts.batch_size, seed=opts.seed)
    else:
        stream = DatasetStream(train_ds, batch_size=opts.batch_size, seed=opts.seed,
                               num_workers=workers)
    opt = torch.optim.SGD(setup.params, lr=opts.lr, momentum=opts.momentum)
    phase = Phase(classification_step(), opt, {"train": stream},
                  update=PenaltyUpdate(setup.penalty, autocast=opts.autocast()))

    def on_val(model: torch.nn.Module) -> dict[str, float]:
        probs, labels = predict_proba(model, val_ds, device, workers=workers)
        m = evaluate(probs, labels, classes)
        return {"val/accuracy": m["accuracy"], "val/cross_entropy": m["cross_entropy"]}

    lines = EpochLines(f"finetune {opts.method} alpha={alpha:g}", per_epoch, opts.epochs,
                       {"val/accuracy": "val accuracy", "val/cross_entropy": "val cross-entropy"})
    trainer = Trainer(trained, phase, steps,
                      callbacks=[Evaluate(on_val, every=per_epoch), lines],
                      seed=opts.seed, checkpoint=run_dir / "checkpoint.pt",
                      checkpoint_every=per_epoch, progress=progress,
                      desc=f"finetune {opts.method} alpha={alpha:g}",
                      log_losses_every=1)
    fit_or_refuse(trainer)
    probs, labels = predict_proba(trained, val_ds, device, workers=workers)
    val = evaluate(probs, labels, classes)
    final = epochs >= opts.epochs
    if final:
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        atomic_write(run_dir / "weights.pt", lambda f: torch.save(state, f))
    result = {"alpha": alpha, "epochs": epochs, "validation": val,
              "curve": epoch_curve(trainer.history, per_epoch, epochs,
                                   {"val_accuracy": "val/accuracy"})}
    atomic_write_json(done, result)
    if final:
        (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    return result


def run_finetune(
    train: str | os.PathLike[str], out: str | os.PathLike[str], *,
    val: str | os.PathLike[str] | None = None, test: str | os.PathLike[str] | None = None,
    options: FinetuneOptions | None = None, device: str = "auto", workers: int = 0,
    resume: bool = False, skip_bad: bool = False, progress: bool | None = None,
    force: bool = False,
) -> FinetuneResult:
    """Fine-tune on the labelled images ``train`` (a folder of class folders, a CSV or an
    ``.npz``) and write the model and its reports to ``out``; see the module docstring.

    Bad input raises :class:`InputError` before anything is written to ``out``.

    Examples
    --------
    >>> import shutil, tempfile
    >>> import numpy as np
    >>> tmp = Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], 8)
    >>> images = rng.random((24, 3, 32, 32)) * 60 + 60 * labels[:, None, None, None]
    >>> images = images.astype("uint8")                  # three classes of brightness
    >>> np.savez(tmp / "train.npz", images=images, labels=labels)
    >>> opts = FinetuneOptions(method="l2sp", alpha="auto", epochs=1, batch_size=8,
    ...                        image_size=32)
    >>> result = run_finetune(tmp / "train.npz", tmp / "run", options=opts, device="cpu")
    >>> [a["alpha"] for a in result.metrics["alpha_sweep"]], result.alpha in opts.alphas()
    ([0.001, 0.01, 0.1, 1.0], True)
    >>> sorted(p.name for p in result.written)
    ['confusion.png', 'learning_curve.png', 'metrics.json', 'model.json']
    >>> csv, metrics = run_predict(tmp / "run", tmp / "train.npz", tmp / "probs.csv")
    >>> csv.read_text().splitlines()[0]
    'path,label,p_0,p_1,p_2'
    >>> shutil.rmtree(tmp)
    """
    opts = options or FinetuneOptions()
    opts.check()
    check_workers(workers)
    dev = resolve_device(device)
    show = progress_wanted() if progress is None else progress
    train_ds = opts.open(train, "--train", skip_bad=skip_bad, progress=show)
    check_labelled(train_ds, "--train")
    classes = list(train_ds.classes)
    texts = isinstance(train_ds, TextTable)
    items = "texts" if texts else "images"
    backbone = opts.backbone_for(texts)
    val_ds = (opts.open(val, "--val", classes=classes, skip_bad=skip_bad, progress=show)
              if val is not None else None)
    if val_ds is not None:
        check_labelled(val_ds, "--val", min_classes=1)
    test_ds = (opts.open(test, "--test", classes=classes, skip_bad=skip_bad, progress=show)
               if test is not None else None)
    skipped = sum(len(d.skipped) for d in (train_ds, val_ds, test_ds) if d is not None)
    probe = opts.build(texts)
    spec = probe.input_spec.with_size(opts.image_size)
    n_blocks = len(probe.features)
    del probe
    if opts.freeze > n_blocks:
        raise InputError(f"--freeze {opts.freeze}: {backbone} has {n_blocks} feature "
                         "blocks")
    if val_ds is None:
        try:
            val_ds, train_ds = split_images(train_ds, opts.val_fraction, seed=opts.seed)
        except ValueError as exc:
            raise InputError(f"--train: cannot carve a validation split ({exc}); give "
                             "--val") from None
    train_ds, val_ds = train_ds.with_transform(spec), val_ds.with_transform(spec)
    settings = {**asdict(opts), "train": str(train), "val": None if val is None else str(val),
                "skip_bad": skip_bad}
    folder = RunFolder(out, settings, resume, force)
    grid = opts.alphas()
    if len(grid) > 1:
        halving = halving_cost(len(grid), opts.epochs)
        full = len(grid) * opts.epochs
        how = ("successive halving" if opts.search == "halving" else "the full grid")
        _say(f"finetune: --alpha {opts.alpha if opts.alpha == 'auto' else 'list'} chooses "
             f"among {len(grid)} values ({opts.method}, alpha "
             f"{', '.join(f'{a:g}' for a in grid)}) by {how} on {len(val_ds)} validation "
             f"{items}: {halving if opts.search == 'halving' else full} epochs of "
             f"{len(train_ds)} {items} in all (one model: {opts.epochs}; "
             + (f"the full grid: {full})" if opts.search == "halving" else
                f"--search halving: {halving}, with worse choices on the l2sp settings)"))

    def train_alpha(a: float, epochs: int) -> dict[str, Any]:
        return _run_one(a, opts, train_ds, val_ds, classes, folder.sub(f"runs/alpha={a:g}"),
                        dev, workers, show, texts, epochs)

    def say_rung(i: int, rungs: list[int], alive: list[float]) -> None:
        if len(rungs) > 1:
            _say(f"finetune: {'successive halving, ' if i == 0 else ''}rung {i + 1} of "
                 f"{len(rungs)}: alpha {', '.join(f'{a:g}' for a in alive)} to epoch "
                 f"{rungs[i]}")

    last, alpha = search_alpha(
        grid, opts.epochs, train_alpha,
        lambda r: (r["validation"]["accuracy"], r["validation"]["cross_entropy"]),
        halving=opts.search == "halving", on_rung=say_rung)
    runs = list(last.values())
    best = grid.index(alpha)
    barrier()  # under torch.distributed: rank 0 has written every run's weights
    net = opts.build(texts, n_classes=len(classes))
    state = torch.load(folder.path / f"runs/alpha={alpha:g}" / "weights.pt",
                       map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    net.to(dev)
    metrics: dict[str, Any] = {
        "backbone": backbone, "method": opts.method, "alpha": alpha,
        "alpha_search": opts.search if len(grid) > 1 else None,
        "alpha_sweep": [{"alpha": r["alpha"], "epochs": r.get("epochs", opts.epochs),
                         "val_accuracy": r["validation"]["accuracy"],
                         "val_cross_entropy": r["validation"]["cross_entropy"]} for r in runs],
        "classes": classes, "input": items, "train_images": len(train_ds),
        "skipped_files": skipped,
        "validation": runs[best]["validation"], "test": None,
        "curves": {f"alpha={r['alpha']:g}": r["curve"] for r in runs},
    }
    prior = torch.bincount(torch.as_tensor(train_ds.targets), minlength=len(classes)).double()
    prior /= prior.sum()
    steps = steps_for(len(train_ds), opts.batch_size, opts.epochs)[1]
    probs, labels = predict_proba(net, val_ds, dev, workers=workers)
    metrics["warnings"] = result_warnings("validation", probs, labels, classes, steps, prior)
    if test_ds is not None:
        test_ds = test_ds.with_transform(spec)
        probs, labels = predict_proba(net, test_ds, dev, workers=workers)
        if test_ds.labelled:
            metrics["test"] = evaluate(probs, labels, classes)
        metrics["warnings"] += result_warnings(
            "test", probs, labels if test_ds.labelled else None, classes, MIN_STEPS, prior)
    written = [folder.path / "metrics.json"]
    atomic_write_json(written[0], metrics)
    shown = metrics["test"] or metrics["validation"]
    written.append(plot_confusion(folder.path / "confusion.png", shown["confusion"], classes,
                                  f"{opts.method} alpha={alpha:g}: "
                                  f"{'test' if metrics['test'] else 'validation'} accuracy "
                                  f"{shown['accuracy']:.3f}"))
    written.append(plot_curves(folder.path / "learning_curve.png",
                               metrics["curves"],
                               f"{opts.method} on {backbone}",
                               chosen=f"alpha={alpha:g}" if len(runs) > 1 else None))
    meta = {"architecture": architecture(backbone, texts), "classes": classes,
            "input_spec": spec.to_dict(), **({"columns": opts.columns()} if texts else {}),
            "trained_by": "finetune", "method": opts.method, "alpha": alpha,
            "epochs": opts.epochs}
    written.insert(0, save_model(folder.path, net.cpu(), meta))
    if not opts.keep_runs:  # the chosen model is saved: the others' weights go
        for r in runs:
            if r["alpha"] != alpha:
                for name in ("weights.pt", "checkpoint.pt"):  # (halving's stopped runs)
                    (folder.path / f"runs/alpha={r['alpha']:g}" / name).unlink(
                        missing_ok=True)
    return FinetuneResult(folder.path, alpha, metrics, written)


def run_predict(
    model: str | os.PathLike[str], images: str | os.PathLike[str],
    out: str | os.PathLike[str], *, device: str = "auto", workers: int = 0,
    skip_bad: bool = False, batch_size: int = 128, columns: dict[str, str] | None = None,
) -> tuple[Path, dict[str, Any] | None]:
    """Per-image (or per-text) class probabilities of the saved ``model`` on ``images``,
    as a CSV. A model trained on texts reads a table of texts, by default in the columns
    it was trained with (``columns``: ``text_column`` / ``label_column`` to override).

    The CSV has ``path`` (texts: ``row``), ``label`` (when labelled) and ``p_<class>`` for
    every class, which ``transferkit labelshift`` reads as a holdout (with labels) or a
    target (without). Returns the CSV's path and, for labelled images, their metrics.

    Examples
    --------
    See :func:`run_finetune`'s example: ``run_predict(model_folder, images, "probs.csv")``
    returns the CSV's path and, for labelled images, their metrics.

    >>> run_predict("no-such-model", "images.npz", "probs.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    transferkit.workflows.labelshift.InputError: --model 'no-such-model' holds no model.json: ...
    """
    check_workers(workers)
    if batch_size < 1:
        raise InputError(f"the batch size must be >= 1; got {batch_size}")
    net, meta = load_model(model)
    classes = list(meta["classes"])
    columns = {**meta.get("columns", {}), **(columns or {})}
    ds = open_image_set(images, "--images", classes=classes, skip_bad=skip_bad,
                        text_column=columns.get("text_column", "text"),
                        label_column=columns.get("label_column", "label"))
    held, taken = (("texts" if t else "images") for t in (isinstance(ds, TextTable),
                                                          isinstance(net.input_spec, TextSpec)))
    if held != taken:
        raise InputError(f"--images {str(images)!r} holds {held}, but the model in "
                         f"{str(model)!r} takes {taken}")
    ds = ds.with_transform(net.input_spec)
    dev = resolve_device(device)
    out_path = Path(out)
    if out_path.suffix.lower() != ".csv":
        raise InputError(f"--out must be a .csv file; got {str(out)!r}")
    try:
        check_writable_dir(out_path.parent)
    except OSError as exc:
        raise InputError(f"--out {str(out)!r} cannot be written: {exc}") from None
    probs, labels = predict_proba(net.to(dev), ds, dev, batch_size=batch_size, workers=workers)
    write_probabilities(out_path, ds, probs, classes)
    return out_path, ({**evaluate(probs, labels, classes), "input": held} if ds.labelled
                      else None)
