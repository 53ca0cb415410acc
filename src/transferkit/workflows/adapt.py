"""Unsupervised domain adaptation of a pretrained backbone on the user's images.

``transferkit adapt`` is a thin wrapper over :func:`run_adapt`: a labelled ``source`` set
and an unlabelled ``target`` set, one registered objective of
:mod:`transferkit.adaptation` (``dann``, ``mstn``, ``mmd``, ``coral``, or one the user
registers) on the backbone's pooled features, trained with
:func:`~transferkit.adaptation.adaptation_step` (cross-entropy on the source plus the
objective, DANN's schedule) and SGD with momentum.

The checkpoint is chosen without target labels, by deep embedded validation (DEV, You et
al., ICML 2019) after every epoch: a stratified 20% of the source is held out for it, and
the domain classifier of its density ratio is fitted on up to ``dev_images`` source and
target images (held in memory). A target set with class folders (or labels in its CSV)
is accepted, and its accuracy reported, but its labels are never used for training or
selection; its classes must be among the source's.

The ``out`` folder holds the same files as ``transferkit finetune``'s (``model.json`` and
weights, ``metrics.json``, ``confusion.png``, ``learning_curve.png``; the loop's
checkpoint while training), and ``resume=True`` continues a killed run.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write_json
from ..adaptation import (
    AdaptationModel,
    DEVCriterion,
    adaptation_step,
    create_adaptation,
    list_adaptations,
)
from ..data.splits import split_images
from ..data.text import TextTable
from ..nets import replace_head
from ..train import (
    BestCheckpoint,
    DatasetStream,
    Evaluate,
    Phase,
    Trainer,
    Update,
    seeded,
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
    plot_confusion,
    plot_curves,
    predict_proba,
    resolve_device,
    result_warnings,
    save_model,
    steps_for,
)
from .labelshift import InputError

__all__ = ["AdaptOptions", "AdaptResult", "run_adapt"]


@dataclass
class AdaptOptions(TrainingOptions):
    """How to adapt: :class:`~transferkit.workflows.images.TrainingOptions`, the objective's
    weight and the images DEV holds in memory.

    Examples
    --------
    >>> AdaptOptions(method="mstn", weight=0.5).check()     # any registered objective
    >>> AdaptOptions(weight=float("nan")).check()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    transferkit.workflows.labelshift.InputError: the adaptation weight must be ...; got nan
    """

    method: str = "dann"
    weight: float = 1.0
    dev_images: int = 256

    def check(self) -> None:
        self.check_common(list_adaptations(), counts=("dev_images",))
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise InputError(f"the adaptation weight must be a finite number >= 0; got "
                             f"{self.weight}")


@dataclass
class AdaptResult:
    """What :func:`run_adapt` wrote and measured: the ``out`` folder, the metrics of
    ``metrics.json`` and the files written.

    Examples
    --------
    >>> m = {"method": "dann", "backbone": "mobilenet-v2", "chosen_epoch": 3, "dev_risk": 0.41,
    ...      "source_validation": {"accuracy": 0.88, "accuracy_interval": [0.8, 0.93], "n": 90},
    ...      "target": None}
    >>> AdaptResult(Path("run"), m, []).lines()[0]
    'dann on mobilenet-v2: epoch 3 chosen by DEV (risk 0.4100, no target labels)'
    """

    out: Path
    metrics: dict[str, Any]
    written: list[Path]

    def lines(self) -> list[str]:
        m = self.metrics
        items = m.get("input", "images")
        out = [f"{m['method']} on {m['backbone']}: epoch {m['chosen_epoch']} chosen by DEV "
               f"(risk {m['dev_risk']:.4f}, no target labels)",
               f"source validation {accuracy_text(m['source_validation'], items)}"]
        if m.get("target"):
            out.append(f"target {accuracy_text(m['target'], 'labelled target ' + items)}; "
                       "reported only")
        return out


def _stack(ds: Any, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n]
    items = [ds[int(i)] for i in idx]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def run_adapt(
    source: str | os.PathLike[str], target: str | os.PathLike[str],
    out: str | os.PathLike[str], *, options: AdaptOptions | None = None,
    device: str = "auto", workers: int = 0, resume: bool = False, skip_bad: bool = False,
    progress: bool | None = None, force: bool = False,
) -> AdaptResult:
    """Adapt from labelled ``source`` images to unlabelled ``target`` images; see the module
    docstring. Bad input raises :class:`InputError` before anything is written.

    Examples
    --------
    >>> import shutil, tempfile
    >>> import numpy as np
    >>> tmp = Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 12)
    >>> source = (rng.random((24, 3, 32, 32)) * 80 + 100 * labels[:, None, None, None])
    >>> np.savez(tmp / "source.npz", images=source.astype("uint8"), labels=labels)
    >>> np.save(tmp / "target.npy", (255 - source[::-1]).astype("uint8"))  # unlabelled, shifted
    >>> opts = AdaptOptions(method="dann", epochs=1, batch_size=8, image_size=32, dev_images=16)
    >>> result = run_adapt(tmp / "source.npz", tmp / "target.npy", tmp / "run", options=opts,
    ...                    device="cpu")
    >>> result.metrics["chosen_epoch"], result.metrics["target"]   # no target labels given
    (1, None)
    >>> shutil.rmtree(tmp)
    """
    opts = options or AdaptOptions()
    opts.check()
    check_workers(workers)
    dev = resolve_device(device)
    show = progress_wanted() if progress is None else progress
    src = opts.open(source, "--source", skip_bad=skip_bad, progress=show)
    check_labelled(src, "--source")
    classes = list(src.classes)
    texts = isinstance(src, TextTable)
    tgt = opts.open(target, "--target", classes=classes, skip_bad=skip_bad, progress=show)
    if isinstance(tgt, TextTable) != texts:
        raise InputError(f"--source holds {'texts' if texts else 'images'} but --target "
                         f"does not: both must be {'texts' if texts else 'images'}")
    backbone = opts.backbone_for(texts)
    net = opts.build(texts)
    spec = net.input_spec.with_size(opts.image_size)
    try:
        val, fit_part = split_images(src, opts.val_fraction, seed=opts.seed)
    except ValueError as exc:
        raise InputError(f"--source: cannot hold out a validation split for DEV ({exc})"
                         ) from None
    fit_part, val, tgt = (d.with_transform(spec) for d in (fit_part, val, tgt))
    folder = RunFolder(out, {**asdict(opts), "source": str(source), "target": str(target),
                             "skip_bad": skip_bad}, resume, force)
    with seeded(opts.seed + 1):
        replace_head(net, len(classes))
        objective = create_adaptation(opts.method, in_features=net.feature_dim,
                                      n_classes=len(classes))
    model = AdaptationModel(net, objective).to(dev)
    per_epoch, steps = steps_for(len(fit_part), opts.batch_size, opts.epochs)
    streams = {"source": DatasetStream(fit_part, batch_size=opts.batch_size, seed=opts.seed,
                                       num_workers=workers),
               "target": DatasetStream(tgt, batch_size=opts.batch_size, seed=opts.seed + 1,
                                       num_workers=workers)}
    xs, _ = _stack(fit_part, opts.dev_images, opts.seed)
    xt, _ = _stack(tgt, opts.dev_images, opts.seed + 1)
    xv, yv = _stack(val, len(val), opts.seed)
    selection = BestCheckpoint(DEVCriterion(xs, xt, xv, yv), every=per_epoch, name="dev")

    def on_val(m: torch.nn.Module) -> dict[str, float]:
        probs, labels = predict_proba(m, val, dev, workers=workers)
        return {"val/accuracy": evaluate(probs, labels, classes)["accuracy"]}

    opt = torch.optim.SGD(model.parameters(), lr=opts.lr, momentum=opts.momentum)
    phase = Phase(adaptation_step(weight=opts.weight), opt, streams,
                  update=Update(autocast=opts.autocast()))
    lines = EpochLines(f"adapt {opts.method}", per_epoch, opts.epochs,
                       {"val/accuracy": "source val accuracy", "selection/dev": "DEV risk"})
    trainer = Trainer(model, phase, steps, callbacks=[Evaluate(on_val, every=per_epoch),
                                                      selection, lines],
                      seed=opts.seed, checkpoint=folder.path / "checkpoint.pt",
                      checkpoint_every=per_epoch, progress=show,
                      desc=f"adapt {opts.method}")
    fit_or_refuse(trainer)
    curve = epoch_curve(trainer.history, per_epoch, opts.epochs,
                        {"val_accuracy": "val/accuracy", "dev_risk": "selection/dev"})
    probs, labels = predict_proba(model, val, dev, workers=workers)
    metrics: dict[str, Any] = {
        "backbone": backbone, "method": opts.method, "classes": classes, "input":
        "texts" if texts else "images",
        "chosen_epoch": selection.best_step // per_epoch, "dev_risk": selection.best_score,
        "source_validation": evaluate(probs, labels, classes), "target": None,
        "curve": curve,
    }
    prior = torch.bincount(torch.as_tensor(fit_part.targets), minlength=len(classes)).double()
    prior /= prior.sum()
    metrics["warnings"] = result_warnings("source validation", probs, labels, classes, steps,
                                          prior)
    probs, labels = predict_proba(model, tgt, dev, workers=workers)
    if tgt.labelled:
        metrics["target"] = evaluate(probs, labels, classes)
    metrics["warnings"] += result_warnings("target", probs, None, classes, MIN_STEPS, prior)
    written = [atomic_write_json(folder.path / "metrics.json", metrics)]
    shown = metrics["target"] or metrics["source_validation"]
    written.append(plot_confusion(folder.path / "confusion.png", shown["confusion"], classes,
                                  f"{opts.method}: "
                                  f"{'target' if metrics['target'] else 'source validation'}"
                                  f" accuracy {shown['accuracy']:.3f}"))
    written.append(plot_curves(folder.path / "learning_curve.png", {opts.method: curve},
                               f"adapt {opts.method} on {backbone}", metric="dev_risk",
                               metric_label="DEV risk (lower is better)"))
    meta = {"architecture": architecture(backbone, texts), "classes": classes,
            "input_spec": spec.to_dict(), **({"columns": opts.columns()} if texts else {}),
            "trained_by": "adapt", "method": opts.method,
            "chosen_epoch": metrics["chosen_epoch"]}
    written.insert(0, save_model(folder.path, net.cpu(), meta))
    (folder.path / "checkpoint.pt").unlink(missing_ok=True)
    return AdaptResult(folder.path, metrics, written)
