"""What ``finetune``, ``adapt`` and ``predict`` share on the user's images: opening and checking
the image sets, building the backbone, the run folder, evaluation, the saved model and plots.

A saved model is a folder with ``model.json`` (architecture, classes, input spec, how it was
trained) and the weights, ``model.safetensors`` when the ``safetensors`` package is there
and ``model.pt`` (a state dict) otherwise; :func:`load_model` rebuilds it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._io import atomic_write, atomic_write_json, atomic_write_text, check_writable_dir
from .._text import duration
from ..data.folder import open_images
from ..distributed import from_rank_zero, local_device, rank_and_world_size
from ..nets import (
    InputSpec,
    MissingExtraError,
    SplitNet,
    TextSpec,
    create_backbone,
    from_checkpoint,
    spec_from_dict,
)
from ..train import CheckpointError, Trainer
from ..train.interface import Callback
from .labelshift import InputError

__all__ = ["MIN_STEPS", "EpochLines", "ResultWarning", "RunFolder", "TrainingOptions",
           "evaluate", "load_model", "open_image_set", "predict_proba", "resolve_device",
           "result_warnings", "save_model"]

MIN_STEPS = 100
"""Fewer optimiser steps than this, and a workflow warns that its numbers mean little."""

MODEL_FILE = "model.json"


PRECISIONS = ("float32", "bf16")
"""Training precisions of the workflows (``--precision``)."""


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The dtype a workflow trains under :func:`torch.autocast` with ``--precision``
    (``bf16``: bfloat16 matrix products, float32 weights; see
    ``benchmarks/bench_cpu_precision.py`` for when it pays), or None; a bad value is an
    :class:`InputError` naming the choices."""
    if precision not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}; got "
                         f"{precision!r}")
    return torch.bfloat16 if precision == "bf16" else None


@dataclass
class TrainingOptions:
    """What ``finetune`` and ``adapt`` share (recorded in ``settings.json``; ``--resume``
    needs the same).

    Examples
    --------
    >>> TrainingOptions(method="x", epochs=0).check_common(["x"])
    Traceback (most recent call last):
    ...
    transferkit.workflows.labelshift.InputError: --epochs must be >= 1; got 0
    """

    backbone: str = "auto"
    checkpoint: str | None = None
    method: str = ""
    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 32
    image_size: int | None = None
    seed: int = 0
    val_fraction: float = 0.2
    text_column: str = "text"
    label_column: str = "label"
    max_length: int = 128
    precision: str = "float32"

    def autocast(self) -> torch.dtype | None:
        """The dtype training runs under :func:`torch.autocast` (:func:`autocast_dtype`)."""
        return autocast_dtype(self.precision)

    def backbone_for(self, texts: bool) -> str:
        """The backbone to build: ``auto`` is efficientnet-lite0 for images and minilm-l6
        for texts; a folder (a Hugging Face encoder) or a registered name as given."""
        if self.backbone == "auto":
            return "minilm-l6" if texts else "efficientnet-lite0"
        return self.backbone

    def columns(self) -> dict[str, str]:
        """The text and label columns (recorded with a text model for ``predict``)."""
        return {"text_column": self.text_column, "label_column": self.label_column}

    def build(self, texts: bool, n_classes: int | None = None) -> SplitNet:
        """The backbone for images or texts (see :func:`build_backbone`)."""
        return build_backbone(self.backbone_for(texts), self.checkpoint, self.image_size,
                              n_classes, max_length=self.max_length if texts else None)

    def open(self, path: str | os.PathLike[str], what: str, **kwargs: Any) -> Any:
        """:func:`open_image_set` with this run's text and label columns."""
        return open_image_set(path, what, text_column=self.text_column,
                              label_column=self.label_column, **kwargs)

    def check_common(self, methods: Sequence[str], counts: Sequence[str] = ()) -> None:
        if self.method not in methods:
            raise InputError(f"--method must be one of {', '.join(methods)}; got "
                             f"{self.method!r}")
        for name in ("epochs", "batch_size", *counts):
            if int(getattr(self, name)) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be >= 1; got "
                                 f"{getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"--lr must be a finite number > 0; got {self.lr}")
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise InputError(f"the momentum must be in [0, 1); got {self.momentum}")
        if self.image_size is not None and int(self.image_size) < 1:
            raise InputError(f"--image-size must be >= 1; got {self.image_size}")
        if int(self.max_length) < 2:
            raise InputError(f"--max-length must be >= 2; got {self.max_length}")
        autocast_dtype(self.precision)  # checks it
        if not 0 < self.val_fraction < 1:
            raise InputError(f"the validation fraction must be in (0, 1); got "
                             f"{self.val_fraction}")


class EpochLines(Callback):
    """A training-loop callback that writes one line per epoch to standard error, whether
    or not it is a terminal (a log file, ``nohup``, a CI job): the epoch, the mean of the
    epoch's training losses, the metrics an evaluation logged at that step (``metrics``:
    history key -> name), the time spent and an estimate of the time left. Rank 0 only.

    Examples
    --------
    >>> import io
    >>> from transferkit.train import Evaluate, Phase, Stream, Trainer, classification_step
    >>> net = nn.Linear(3, 2)
    >>> x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    >>> phase = Phase(classification_step(), torch.optim.SGD(net.parameters(), lr=0.1),
    ...               {"train": Stream(x, y, batch_size=8, seed=0)})
    >>> log = io.StringIO()
    >>> lines = EpochLines("demo", per_epoch=2, epochs=3, metrics={"val/acc": "val accuracy"},
    ...                    stream=log)
    >>> check = Evaluate(lambda m: {"val/acc": 0.5}, every=2)
    >>> _ = Trainer(net, phase, 6, callbacks=[check, lines], seed=0, progress=False).fit()
    >>> log.getvalue().splitlines()[0].split(",")[:2]     # doctest: +ELLIPSIS
    ['[demo] epoch 1/3: loss ...', ' val accuracy 0.5000']
    """

    def __init__(self, label: str, per_epoch: int, epochs: int,
                 metrics: Mapping[str, str] | None = None, stream: Any = None) -> None:
        self.label, self.per_epoch, self.epochs = label, int(per_epoch), int(epochs)
        self.every = self.per_epoch
        self.metrics = dict(metrics or {})
        self.stream = stream
        self._start = 0.0
        self._first = 0

    def on_fit_start(self, trainer: Any) -> None:
        self._start = time.monotonic()
        self._first = trainer.step  # a resumed run estimates from its own epochs

    def on_step_end(self, trainer: Any, ctx: Any) -> None:
        step = ctx.step + 1
        if step % self.per_epoch or rank_and_world_size()[0] != 0:
            return
        epoch = step // self.per_epoch
        records = [r for r in trainer.history.records
                   if step - self.per_epoch < r["step"] <= step]
        losses = [sum(v for k, v in r.items() if k.startswith("loss/")) for r in records
                  if any(k.startswith("loss/") for k in r)]
        parts = [f"[{self.label}] epoch {epoch}/{self.epochs}: loss "
                 + (f"{sum(losses) / len(losses):.4f}" if losses else "n/a")]
        last: Mapping[str, float] = next((r for r in reversed(records) if r["step"] == step), {})
        parts += [f" {name} {last[key]:.4f}" for key, name in self.metrics.items()
                  if key in last]
        spent = time.monotonic() - self._start
        done = step - self._first
        left = spent / done * (self.epochs * self.per_epoch - step) if done > 0 else 0.0
        parts.append(f" {duration(spent)} elapsed" + (f", about {duration(left)} left"
                                                       if epoch < self.epochs else ""))
        print(",".join(parts), file=self.stream or sys.stderr, flush=True)


class ResultWarning(UserWarning):
    """A workflow's result may mean nothing: a collapsed model, accuracy within noise of
    chance, too few optimiser steps (see :func:`result_warnings`).

    Examples
    --------
    To stop on such a result instead of going on:

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", ResultWarning)
    ...     result_warnings("validation", torch.eye(2), torch.arange(2), ["a", "b"], steps=3)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    transferkit.workflows.images.ResultWarning: validation: accuracy 1.000 is within noise ...
    """


def result_warnings(what: str, probs: Tensor, labels: Tensor | None, classes: Sequence[str],
                    steps: int, prior: Tensor | None = None) -> list[str]:
    """Say when a result cannot mean much, and warn (:class:`ResultWarning`) for each:

    - **collapse**: one class takes at least 80 % of the predictions, and twice its share
      of ``prior`` or 30 points more than it, whichever is less (``prior``: the labels'
      class shares, by default those of ``labels``);
    - **chance**: with labels, accuracy no more than two binomial standard errors above
      always predicting the most common class;
    - **too short**: fewer than :data:`MIN_STEPS` optimiser steps.

    Returns the messages (the workflows store them in ``metrics.json`` as ``warnings``).
    Under ``torch.distributed`` every rank returns them and rank 0 alone warns.

    Examples
    --------
    >>> import warnings
    >>> probs = torch.tensor([[0.9, 0.1]] * 45 + [[0.2, 0.8]] * 5)   # nearly all class a
    >>> labels = torch.tensor([0, 1] * 25)
    >>> with warnings.catch_warnings(record=True):
    ...     found = result_warnings("validation", probs, labels, ["a", "b"], steps=30)
    >>> [m.split(":")[0] for m in found]
    ['validation', 'validation', 'training']
    """
    out: list[str] = []
    k, n = len(classes), len(probs)
    if n == 0 or k < 2:
        return out
    pred = probs.argmax(1)
    counts = torch.bincount(pred, minlength=k).double()
    top = int(counts.argmax())
    share = float(counts[top] / n)
    known = labels is not None and bool((labels >= 0).all())
    ref = prior if prior is not None else (
        torch.bincount(labels, minlength=k).double() / n if known and labels is not None
        else None)
    expected = float(ref[top]) if ref is not None else 1.0 / k
    if n >= 20 and share >= 0.8 and share >= min(2 * expected, expected + 0.3):
        out.append(f"{what}: {int(counts[top])} of {n} predictions are {classes[top]!r} "
                   f"({share:.0%}; its share of the labels is {expected:.0%}): the model "
                   "may have collapsed onto one class")
    if known and labels is not None:
        out += chance_warning(what, float((pred == labels).double().mean()),
                              torch.bincount(labels, minlength=k))
    return warn_results(out, steps, stacklevel=2)


def chance_warning(what: str, accuracy: float, counts: Tensor,
                   items: str = "examples") -> list[str]:
    """``[message]`` when ``accuracy`` is no more than two binomial standard errors above
    always predicting the most common class of the labels' class ``counts``; else ``[]``.

    Examples
    --------
    >>> chance_warning("validation", 0.55, torch.tensor([10, 10]))[0][:45]
    'validation: accuracy 0.550 is within noise of'
    >>> chance_warning("validation", 0.95, torch.tensor([10, 10]))
    []
    """
    n = int(counts.sum())
    if n == 0:
        return []
    majority = float(counts.max()) / n
    margin = 2 * math.sqrt(majority * (1 - majority) / n)
    if accuracy > majority + margin:
        return []
    return [f"{what}: accuracy {accuracy:.3f} is within noise of always predicting the most "
            f"common class ({majority:.3f} + {margin:.3f} on {n} {items})"]


def warn_results(messages: list[str], steps: int, stacklevel: int = 2) -> list[str]:
    """``messages`` and, below :data:`MIN_STEPS` optimiser steps, the too-short one; each
    is warned as a :class:`ResultWarning` (by rank 0 alone under ``torch.distributed``).
    Returns them all, for ``metrics.json``."""
    out = list(messages)
    if steps < MIN_STEPS:
        out.append(f"training: only {steps} optimiser steps, too few for these numbers to "
                   "mean much; give more --epochs or a smaller --batch-size")
    for message in out if rank_and_world_size()[0] == 0 else []:
        warnings.warn(message, ResultWarning, stacklevel=stacklevel + 1)
    return out


def check_workers(workers: int) -> int:
    """``--workers`` as given, or an :class:`InputError` when it is negative."""
    if isinstance(workers, bool) or int(workers) != workers or workers < 0:
        raise InputError(f"--workers must be a whole number >= 0; got {workers}")
    return int(workers)


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: the GPU when there is one, else the CPU; otherwise a torch device name.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("gpu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    transferkit.workflows.labelshift.InputError: --device must be auto, cpu, cuda ...; got 'gpu'
    """
    if name == "auto":  # under torchrun on GPUs: this process's GPU, cuda:LOCAL_RANK
        return local_device() or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"--device must be auto, cpu, cuda or cuda:N; got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA GPU is available here")
    return device


def open_image_set(
    path: str | os.PathLike[str], what: str, *, classes: Sequence[str] | None = None,
    labelled: bool | None = None, skip_bad: bool = False, progress: bool = False,
    text_column: str = "text", label_column: str = "label",
) -> Any:
    """Open one image set, check it and decode every file once (see ``ImageFiles.scan``);
    or, for a CSV / JSON Lines / Parquet file with the column ``text_column``, a table of
    texts (:func:`transferkit.data.text.open_texts`, labels in ``label_column``).

    ``classes`` (the training set's) fixes the label numbering; a set with a class the
    training set lacks is an error. Every problem is an :class:`InputError` naming ``what``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = Path(d) / "set.npz"
    ...     np.savez(path, images=np.zeros((4, 3, 8, 8), "uint8"), labels=[0, 1, 1, 0])
    ...     ds = open_image_set(path, "--train")
    ...     len(ds), list(ds.classes)
    (4, ['0', '1'])
    """
    from ..data.text import is_text_table, open_texts

    def read(fixed: Sequence[str] | None) -> Any:
        if is_text_table(path, text_column):
            return open_texts(path, text_column=text_column, label_column=label_column,
                              classes=fixed, labelled=labelled)
        return open_images(path, labelled=labelled, classes=fixed)

    try:
        ds = read(None)
        own = list(ds.classes)
        if classes is not None and own:
            extra = [c for c in own if c not in classes]
            if extra:
                raise InputError(f"{what} {str(path)!r} has class(es) {extra} that the "
                                 f"training set does not have ({list(classes)})")
            ds = read(list(classes))
        bad = ds.scan(skip_bad=skip_bad, progress=progress)
    except InputError:
        raise
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(f"{what}: {exc}") from None
    if bad:
        print(f"transferkit: skipped {len(bad)} unreadable file(s) in {what}, e.g. {bad[0]}")
    ds.skipped = bad
    return ds


def check_labelled(ds: Any, what: str, min_classes: int = 2) -> None:
    if not ds.labelled:
        n = int((ds.targets < 0).sum())
        raise InputError(f"{what} {ds.source!r} must be labelled; {n} of {len(ds)} images "
                         "have no label")
    present = torch.unique(ds.targets).numel()
    if present < min_classes:
        raise InputError(f"{what} {ds.source!r} has images of {present} class(es) only; "
                         f"need at least {min_classes} to learn to tell classes apart")


def build_backbone(name: str, checkpoint: str | os.PathLike[str] | None,
                   image_size: int | None, n_classes: int | None = None,
                   max_length: int | None = None) -> SplitNet:
    """The pretrained ``name`` (or the user's ``checkpoint`` in that architecture).

    With ``max_length`` the input is texts: ``name`` is a text backbone (``minilm-l6``) or
    the folder of a Hugging Face encoder; without it, an image backbone."""
    texts = max_length is not None
    kwargs: dict[str, Any] = {}
    if texts:
        kwargs["max_length"] = max_length
        if Path(name).is_dir():
            name, kwargs["path"] = "hf-encoder", name
    elif image_size is not None:
        kwargs["image_size"] = image_size
    if n_classes is not None:
        kwargs["n_classes"] = n_classes
    try:
        if checkpoint is not None:
            net = from_checkpoint(checkpoint, name, **kwargs)
        else:
            net = create_backbone(name, **kwargs)
    except (MissingExtraError, FileNotFoundError) as exc:
        raise InputError(str(exc)) from None
    except KeyError as exc:
        raise InputError(str(exc.args[0]) if exc.args else str(exc)) from None
    except TypeError as exc:
        if texts and "max_length" in str(exc):
            raise InputError(f"--backbone {name} takes images, but the input holds texts: "
                             "use minilm-l6 (the default for texts) or the folder of a "
                             "Hugging Face encoder") from None
        if not texts and "image_size" in str(exc):
            raise InputError(f"--backbone {name} takes texts, but the input holds images: "
                             "use an image backbone such as efficientnet-lite0 (the default "
                             "for images) or mobilenet-v2") from None
        raise InputError(f"--backbone {name}: {exc}") from None
    except ValueError as exc:
        raise InputError(f"--backbone {name}: {exc}") from None
    wanted = TextSpec if texts else InputSpec
    if not isinstance(getattr(net, "input_spec", None), wanted):
        raise InputError(
            f"--backbone {name} takes texts, but the input holds images: use an image "
            "backbone such as efficientnet-lite0 or mobilenet-v2" if not texts and
            isinstance(getattr(net, "input_spec", None), TextSpec) else
            f"--backbone {name} declares no input spec; use an image backbone such as "
            "efficientnet-lite0 or mobilenet-v2, or for texts minilm-l6")
    return net if texts else fast_layout(net)


def fit_or_refuse(trainer: Trainer) -> Any:
    """``trainer.fit()``, with a checkpoint the loop refuses (another run's, or holding
    objects) turned into the one-line :class:`InputError` of the commands."""
    try:
        return trainer.fit()
    except CheckpointError as exc:
        raise InputError(str(exc)) from None


def fast_layout(net: SplitNet) -> SplitNet:
    """An image network with its convolution weights stored ``channels_last`` (NHWC): the
    same function, and on the CPU 1.5-2x faster to train (EfficientNet-Lite0 and
    MobileNet-V2 at 32-96 px, one thread; ``benchmarks/bench_cpu_precision.py``), because
    the convolutions then run without layout conversions. Its outputs equal the NCHW
    network's to float rounding."""
    return net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def architecture(backbone: str, texts: bool) -> str:
    """The registered name a saved model is rebuilt from: ``hf-encoder`` for the folder of
    a Hugging Face encoder (its spec keeps the folder), else the backbone's name."""
    return "hf-encoder" if texts and Path(backbone).is_dir() else backbone


class RunFolder:
    """The ``--out`` folder of a run: refuses to mix runs, and resumes only the same one.

    ``settings.json`` records what the run was asked to do; a folder holding another run
    is an error unless ``resume`` and the settings agree, and a folder holding files that
    no run wrote is an error unless ``force``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = RunFolder(d, {"epochs": 2}, resume=False)
    ...     _ = RunFolder(d, {"epochs": 2}, resume=True)       # the same run: resumes
    ...     RunFolder(d, {"epochs": 5}, resume=True)           # another run: refused
    Traceback (most recent call last):
    ...
    transferkit.workflows.labelshift.InputError: ...
    """

    def __init__(self, out: str | os.PathLike[str], settings: Mapping[str, Any],
                 resume: bool, force: bool = False) -> None:
        self.force = bool(force)
        try:
            self.path = check_writable_dir(out)
        except OSError as exc:
            raise InputError(f"--out {str(out)!r} cannot be written: {exc}") from None
        self.settings = json.loads(json.dumps(dict(settings)))
        # under torch.distributed rank 0 checks and records; every rank gets its verdict
        problem = from_rank_zero(lambda: self._check_and_record(resume, out))
        if problem is not None:
            raise InputError(problem)

    def _check_and_record(self, resume: bool, out: str | os.PathLike[str]) -> str | None:
        try:
            self._record(resume, out)
        except InputError as exc:
            return str(exc)
        return None

    def _record(self, resume: bool, out: str | os.PathLike[str]) -> None:
        recorded = self.path / "settings.json"
        if recorded.exists():
            if not resume:
                raise InputError(f"--out {str(self.path)!r} already holds a run; pass "
                                 "--resume to continue it, or choose another folder")
            old = json.loads(recorded.read_text())
            diff = sorted(k for k in set(old) | set(self.settings)
                          if old.get(k) != self.settings.get(k))
            if diff:
                raise InputError(f"--resume: the run in {str(self.path)!r} was started with "
                                 f"other settings ({', '.join(diff)}); use another --out")
        elif resume and self.path.exists() and any(self.path.iterdir()):
            raise InputError(f"--resume: {str(self.path)!r} holds no run to resume")
        elif not self.force and self.path.exists() and any(self.path.iterdir()):
            names = sorted(p.name for p in self.path.iterdir())
            raise InputError(f"--out {str(self.path)!r} holds files that no run wrote "
                             f"({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}); "
                             "choose a new or empty folder, or pass --force to write into it")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write_json(recorded, self.settings)
        except OSError as exc:
            raise InputError(f"--out {str(out)!r} cannot be written: {exc}") from None

    def sub(self, name: str) -> Path:
        p = self.path / name
        p.mkdir(parents=True, exist_ok=True)
        return p


def loader(ds: Any, batch_size: int, workers: int) -> torch.utils.data.DataLoader[Any]:
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False,
                                       num_workers=workers)


@torch.no_grad()
def predict_proba(net: nn.Module, ds: Any, device: torch.device, batch_size: int = 128,
                  workers: int = 0) -> tuple[Tensor, Tensor]:
    """Class probabilities (in eval mode) and labels of every item of ``ds``.

    Examples
    --------
    >>> ds = torch.utils.data.TensorDataset(torch.randn(5, 4), torch.tensor([0, 1, 0, 1, 1]))
    >>> probs, labels = predict_proba(nn.Linear(4, 2), ds, torch.device("cpu"), batch_size=2)
    >>> probs.shape, labels.tolist()
    (torch.Size([5, 2]), [0, 1, 0, 1, 1])
    """
    was = net.training
    net.eval()
    probs, labels = [], []
    try:
        for x, y in loader(ds, batch_size, workers):
            probs.append(F.softmax(net(x.to(device)).float(), dim=1).cpu())
            labels.append(y)
    finally:
        net.train(was)
    return torch.cat(probs), torch.cat(labels)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a proportion: inside [0, 1] always, and honest at a few
    items and near 0 or 1 where the normal interval ``p +- z * se`` is not.

    Examples
    --------
    >>> [round(v, 3) for v in wilson_interval(10, 10)]      # 10 of 10 right: not [1, 1]
    [0.722, 1.0]
    >>> [round(v, 3) for v in wilson_interval(45, 100)]
    [0.356, 0.548]
    """
    from scipy.stats import norm

    if n <= 0:
        return (math.nan, math.nan)
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy_text(m: Mapping[str, Any], items: str = "images") -> str:
    """An :func:`evaluate` result's accuracy as the workflows print it, with its interval.

    Examples
    --------
    >>> accuracy_text({"accuracy": 0.9, "accuracy_interval": [0.7, 0.97], "n": 20})
    'accuracy 0.9000 (95% interval 0.700-0.970, 20 images)'
    """
    lo, hi = m.get("accuracy_interval") or (math.nan, math.nan)
    return f"accuracy {m['accuracy']:.4f} (95% interval {lo:.3f}-{hi:.3f}, {m['n']} {items})"


def evaluate(probs: Tensor, labels: Tensor, classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy (with its 95% Wilson interval), cross-entropy, per-class accuracy and the
    confusion matrix.

    Examples
    --------
    >>> m = evaluate(torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), torch.tensor([0, 1, 1]),
    ...              ["cat", "dog"])
    >>> round(m["accuracy"], 3), m["confusion"], m["per_class_accuracy"]["dog"]
    (0.667, [[1, 0], [1, 1]], 0.5)
    >>> [round(v, 3) for v in m["accuracy_interval"]]
    [0.208, 0.939]
    """
    k = len(classes)
    pred = probs.argmax(1)
    conf = torch.zeros(k, k, dtype=torch.int64)
    conf.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    per_class = {c: (float(conf[i, i] / conf[i].sum()) if conf[i].sum() else None)
                 for i, c in enumerate(classes)}
    ce = float(F.nll_loss(probs.clamp_min(1e-12).log(), labels))
    right = int((pred == labels).sum())
    return {"n": len(labels), "accuracy": float((pred == labels).float().mean()),
            "accuracy_interval": list(wilson_interval(right, len(labels))),
            "cross_entropy": ce, "per_class_accuracy": per_class,
            "confusion": conf.tolist()}


def save_model(folder: Path, net: nn.Module, meta: Mapping[str, Any]) -> Path:
    """Write the weights and ``model.json`` atomically (the JSON last: it marks completion).

    Examples
    --------
    >>> import tempfile
    >>> from transferkit.nets import create_backbone
    >>> net = create_backbone("efficientnet-lite0", image_size=32, n_classes=2)
    >>> meta = {"architecture": "efficientnet-lite0", "classes": ["a", "b"],
    ...         "input_spec": net.input_spec.to_dict()}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = save_model(Path(d), net, meta)
    ...     loaded, saved = load_model(d)
    ...     saved["classes"], type(loaded).__name__
    (['a', 'b'], 'SplitNet')
    """
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    try:
        from safetensors.torch import save as st_save

        name = "model.safetensors"
        blob = st_save(state)
        atomic_write(folder / name, lambda f: f.write(blob))
    except ModuleNotFoundError:
        name = "model.pt"
        atomic_write(folder / name, lambda f: torch.save(state, f))
    atomic_write_json(folder / MODEL_FILE, {**meta, "weights": name})
    return folder / MODEL_FILE


def load_model(folder: str | os.PathLike[str]) -> tuple[SplitNet, dict[str, Any]]:
    """The network saved by ``finetune``/``adapt`` in ``folder``, and its ``model.json``.

    Examples
    --------
    See :func:`save_model`; a folder without a finished run is refused:

    >>> load_model("no-such-run")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    transferkit.workflows.labelshift.InputError: --model 'no-such-run' holds no model.json: ...
    """
    folder = Path(folder)
    meta_path = folder / MODEL_FILE
    if not meta_path.is_file():
        raise InputError(f"--model {str(folder)!r} holds no {MODEL_FILE}: expected the --out "
                         "folder of a finished `transferkit finetune` or `adapt` run")
    where = f"--model {str(folder)!r}: {MODEL_FILE}"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{where} is not JSON ({exc}); the folder is damaged: train again "
                         "or restore it") from None
    if not isinstance(meta, dict):
        raise InputError(f"{where} holds {type(meta).__name__}, expected an object")
    needed = {"architecture": str, "classes": list, "input_spec": dict, "weights": str}
    wrong = [k for k, kind in needed.items() if not isinstance(meta.get(k), kind)]
    if wrong:
        raise InputError(f"{where} lacks {', '.join(wrong)} (expected "
                         f"{', '.join(needed)}); the folder is damaged")
    weights = (folder / meta["weights"]).resolve()
    if weights.parent != folder.resolve() or "/" in meta["weights"] or "\\" in meta["weights"]:
        raise InputError(f"{where} names weights {meta['weights']!r} outside the model "
                         "folder; only a file inside it is read")
    try:
        spec = spec_from_dict(meta["input_spec"])
        net = from_checkpoint(weights, meta["architecture"], n_classes=len(meta["classes"]),
                              **spec.backbone_kwargs())
    except KeyError as exc:
        raise InputError(f"{where}: {exc.args[0] if exc.args else exc}") from None
    except (ValueError, TypeError, FileNotFoundError, MissingExtraError) as exc:
        raise InputError(f"--model {str(folder)!r}: {exc}") from None
    net.input_spec = spec
    return net, meta


def write_probabilities(path: Path, ds: Any, probs: Tensor, classes: Sequence[str]) -> Path:
    """``path,[label,]p_<class>...`` per image (``row,...`` per text, the row of the
    text's file): the CSV ``transferkit labelshift`` reads."""
    import csv
    import io

    labelled = ds.labelled
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([getattr(ds, "id_column", "path"), *(["label"] if labelled else []),
                *(f"p_{c}" for c in classes)])
    labels = ds.targets.tolist()
    for i in range(len(ds)):
        row = [ds.name(i), *([classes[labels[i]]] if labelled else [])]
        w.writerow(row + [f"{v:.6g}" for v in probs[i].tolist()])
    return atomic_write_text(path, buf.getvalue())


def plot_confusion(path: Path, confusion: Sequence[Sequence[int]], classes: Sequence[str],
                   title: str) -> Path:
    from .._plotting import figure

    conf = np.asarray(confusion, dtype=float)
    rows = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    size = min(3 + 0.35 * len(classes), 14)
    with figure(path.parent, path.stem, figsize=(size + 1, size)) as (fig, out):
        ax = fig.subplots()
        im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if len(classes) <= 20:
            for i in range(len(classes)):
                for j in range(len(classes)):
                    if conf[i, j]:
                        ax.text(j, i, int(conf[i, j]), ha="center", va="center", fontsize=6,
                                color="white" if rows[i, j] > 0.5 else "black")
        fig.colorbar(im, ax=ax, label="fraction of the true class")
        ax.set_title(title, fontsize=9)
    return out


def plot_curves(path: Path, curves: Mapping[str, Mapping[str, Sequence[float]]],
                title: str, metric: str = "val_accuracy",
                metric_label: str = "validation accuracy", chosen: str | None = None) -> Path:
    """Training loss and ``metric`` per epoch, one line per run (e.g. per alpha), on whole
    epochs; the ``chosen`` run drawn thicker and marked in the legend; a run of one epoch
    is a marker."""
    from matplotlib.ticker import MaxNLocator

    from .._plotting import figure

    with figure(path.parent, path.stem, figsize=(9, 3.4)) as (fig, out):
        ax_loss, ax_acc = fig.subplots(1, 2)
        for label, c in curves.items():
            style = {"marker": "o", "ms": 4 if label == chosen else 3,
                     "lw": 2.4 if label == chosen else 1.2,
                     "label": f"{label} (chosen)" if label == chosen else label}
            ax_loss.plot(c["epoch"], c["train_loss"], **style)
            if c.get(metric):
                ax_acc.plot(c["epoch"], c[metric], **style)
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("training loss")
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylabel(metric_label)
        for ax in (ax_loss, ax_acc):
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_acc.legend(fontsize=7)
        fig.suptitle(title, fontsize=9)
    return out


def steps_for(n: int, batch_size: int, epochs: int) -> tuple[int, int]:
    """(steps per epoch, total steps) for ``epochs`` passes over ``n`` images."""
    per_epoch = max(1, math.ceil(n / batch_size))
    return per_epoch, per_epoch * epochs


def epoch_curve(history: Any, per_epoch: int, epochs: int,
                metrics: Mapping[str, str]) -> dict[str, list[Any]]:
    """Per epoch: the mean training loss (``loss/ce``) and each logged ``metrics`` key
    (curve name -> history key) at the epoch's last step (None where not logged)."""
    steps, loss = history.series("loss/ce")
    curve: dict[str, list[Any]] = {"epoch": list(range(1, epochs + 1)), "train_loss": []}
    for e in curve["epoch"]:
        part = [v for s, v in zip(steps, loss, strict=True)
                if (e - 1) * per_epoch < s <= e * per_epoch]
        curve["train_loss"].append(sum(part) / len(part) if part else None)
    for name, key in metrics.items():
        at = dict(zip(*history.series(key), strict=True))
        curve[name] = [at.get(e * per_epoch) for e in curve["epoch"]]
    return curve
