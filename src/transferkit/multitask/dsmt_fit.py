"""Train a DSMT-Net with the authors' schedule in the one training loop.

The schedule is part of the method, so it lives with it: :func:`train_dsmt` (select the
auxiliary tasks on your windows, then train) and :func:`fit_dsmt` (the two-phase loop on
tensors) are the one implementation that ``transferkit.workflows`` re-exports and the
``dsmt`` claim runs. This is the one module of a piece that drives the loop
(:class:`~transferkit.train.Trainer`) rather than only its published interface.

Schwab et al., ICML 2018 (arXiv 1802.05027); the schedule of the authors' public code
(d909b/DSMT-Nets, ``model/model_trainer.py`` and ``train.py``): a burn-in of five
auxiliary epochs, then one auxiliary epoch (labelled + unlabelled windows) and one main
epoch (labelled windows) in turn, each phase with its own RMSprop; the main task's
validation BCE after each main epoch keeps the best state and stops after ``patience``
epochs without improvement; the auxiliary phase has an early stopping of its own (the
auxiliary MSE on the validation windows, patience 12), after which only main epochs run;
the decision threshold is chosen on validation.

An epoch, in the authors' ``train.py``, is as many steps as there are **labelled**
training windows, for both phases, with generators that yield one window per step.
:func:`train_dsmt` takes that count (``epoch="labelled"``, the default) with batches of
``batch_size`` windows (batch normalisation needs two or more; the authors' layers at one
window are discussed in :mod:`transferkit.multitask.dsmt`); ``epoch="pool"`` takes
``ceil(labelled + unlabelled windows / batch_size)`` steps instead, which shows the
networks many more auxiliary samples per epoch (transferkit's schedule before 2026-12-06).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..train import BestCheckpoint, Callback, Phase, StepContext, Stream, Trainer
from .dsmt import (
    DSMTNet,
    aux_outputs,
    dsmt_aux_step,
    dsmt_main_step,
    main_logits,
    predict_proba,
    youden_threshold,
)

__all__ = ["DSMTModel", "DSMTResult", "fit_dsmt", "train_dsmt"]


@dataclass
class DSMTResult:
    """What :func:`fit_dsmt` returns: the trained model (best validation state), the
    chosen threshold, the main epochs run, the best one, the validation curve, the
    optimiser steps taken (both phases) and the auxiliary epochs run (burn-in included).

    Examples
    --------
    >>> r = DSMTResult(model=None, threshold=0.4, epochs=3, best_epoch=2, val_loss=[0.7, 0.6, 0.65])
    >>> r.best_epoch, min(r.val_loss)
    (2, 0.6)
    """

    model: DSMTNet
    threshold: float
    epochs: int
    best_epoch: int
    val_loss: list[float]
    steps: int = 0
    aux_epochs: int = 0


class _MainEpochs(Callback):
    """Stop after ``limit`` main epochs (the auxiliary phase may have ended before)."""

    def __init__(self, limit: int, every: int) -> None:
        self.limit, self.every = limit, every

    def on_step_end(self, trainer: Trainer, ctx: StepContext) -> None:
        if ctx.phase == "main" and len(trainer.history.series("selection/val_bce")[1]) \
                >= self.limit:
            trainer.should_stop = True


def fit_dsmt(
    model: DSMTNet,
    labelled: tuple[Tensor, Tensor, Tensor],
    validation: tuple[Tensor, Tensor, Tensor],
    aux: tuple[Tensor, Tensor, Tensor] | None = None,
    epochs: int = 60,
    burn_in: int = 5,
    patience: int = 12,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    checkpoint: Any = None,
    desc: str = "dsmt",
    steps_per_epoch: int | None = None,
    aux_validation: Tensor | None = None,
    aux_patience: int = 12,
) -> DSMTResult:
    """Train a DSMT-Net with the authors' schedule in the one training loop.

    Parameters
    ----------
    labelled, validation : (x, missing, y)
        Scaled windows (n, channels, steps), indicators (n, channels), labels (n,).
    aux : (x, missing, targets), optional
        Labelled + unlabelled windows with their standardised auxiliary targets (n, K);
        None (or K = 0) trains the main task alone.
    epochs : int
        Most main epochs; ``burn_in`` auxiliary epochs come first.
    steps_per_epoch : int, optional
        Steps of either phase per epoch; by default the number of labelled windows (the
        authors'). Give the same value to networks with and without auxiliary tasks to
        compare them at the same number of main-task steps.
    aux_validation : tensor (n_validation, K), optional
        The validation windows' auxiliary targets: the auxiliary phase ends after
        ``aux_patience`` auxiliary epochs without a lower validation MSE (the authors');
        without them it runs to the end.

    Examples
    --------
    On tensors (scaled windows, missing-value indicators, labels; auxiliary targets for the
    labelled + unlabelled windows):

    >>> from transferkit.multitask import DSMTNet
    >>> g = torch.Generator().manual_seed(0)
    >>> y = torch.randint(0, 2, (40,), generator=g).float()
    >>> x = torch.randn(40, 2, 64, generator=g) + y[:, None, None]
    >>> missing = torch.zeros(40, 2)
    >>> aux_targets = x.mean(dim=2)                        # K = 2 toy auxiliary targets
    >>> net = DSMTNet(2, 2, width=4, units=8)
    >>> res = fit_dsmt(net, (x[:20], missing[:20], y[:20]), (x[20:30], missing[20:30], y[20:30]),
    ...                aux=(x, missing, aux_targets), epochs=3, burn_in=1, patience=2,
    ...                batch_size=8, aux_validation=aux_targets[20:30])
    >>> res.epochs <= 3, 0.0 <= res.threshold <= 1.0
    (True, True)
    """
    use_aux = aux is not None and model.n_aux > 0
    per_epoch = len(labelled[0]) if steps_per_epoch is None else int(steps_per_epoch)
    if per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1; got {steps_per_epoch}")
    lab_stream = Stream(*labelled, batch_size=min(batch_size, len(labelled[0])), seed=seed)
    main = Phase(dsmt_main_step, torch.optim.RMSprop(model.parameters(), lr=lr),
                 {"labelled": lab_stream}, steps=per_epoch, name="main")
    xv, mv, yv = validation

    def val_loss(m: nn.Module) -> float:  # BestCheckpoint runs it in eval mode, no grad
        return float(F.binary_cross_entropy_with_logits(main_logits(m, xv, mv), yv.float()))

    best = BestCheckpoint(val_loss, every=per_epoch, name="val_bce", patience=patience,
                          after_phase="main")
    callbacks: list[Callback] = [best, _MainEpochs(epochs, per_epoch)]
    if use_aux:
        assert aux is not None
        aux_phase = Phase(dsmt_aux_step, torch.optim.RMSprop(model.parameters(), lr=lr),
                          {"aux": Stream(*aux, batch_size=batch_size, seed=seed + 1)},
                          steps=per_epoch, first_steps=burn_in * per_epoch, name="aux")
        phases = [aux_phase, main]
        max_steps = (burn_in + 2 * epochs - 1) * per_epoch
        if aux_validation is not None:
            def aux_loss(m: nn.Module) -> float:
                return float(F.mse_loss(aux_outputs(m, xv, mv), aux_validation))

            callbacks.append(BestCheckpoint(aux_loss, every=per_epoch, name="val_aux_mse",
                                            patience=aux_patience, after_phase="aux",
                                            ends="aux", restore=False))
    else:
        phases, max_steps = [main], epochs * per_epoch
    trainer = Trainer(model, phases, max_steps, callbacks=callbacks, seed=seed,
                      checkpoint=checkpoint, desc=desc)
    history = trainer.fit()
    _, losses = history.series("selection/val_bce")
    p = predict_proba(model, xv, mv).numpy()
    return DSMTResult(model, youden_threshold(yv.numpy(), p), len(losses),
                      int(np.argmin(losses)) + 1 if losses else 0, [float(v) for v in losses],
                      trainer.step, len(history.series("selection/val_aux_mse")[1]))


def _tensors(scaler: Any, windows: Any) -> tuple[Tensor, Tensor]:
    """(scaled windows with missing samples at 0, missing-value indicators)."""
    return (torch.from_numpy(scaler.transform(windows.X)),
            torch.from_numpy(windows.missing_fraction()))


@dataclass
class DSMTModel:
    """A trained DSMT-Net with what it needs at prediction time: the channel scaler, the
    auxiliary tasks it was trained with (None for K = 0), the validation threshold and the
    training record.

    Examples
    --------
    What :func:`train_dsmt` returns; see its examples for training one.

    >>> from transferkit.data import Windows
    >>> from transferkit.multitask import ChannelScaler, DSMTNet
    >>> w = Windows.from_arrays(np.random.default_rng(0).normal(size=(6, 2, 64)), np.zeros(6),
    ...                         channels=("ecg", "pleth"))
    >>> model = DSMTModel(DSMTNet(2, 0, width=4, units=8), ChannelScaler().fit(w.X), None,
    ...                   0.5, DSMTResult(None, 0.5, 0, 0, []))
    >>> model.predict_proba(w).shape, set(model.predict(w).tolist()) <= {0, 1}
    ((6,), True)
    """

    net: DSMTNet
    scaler: Any
    tasks: Any
    threshold: float
    result: DSMTResult

    def predict_proba(self, windows: Any) -> np.ndarray:
        """Probability of the positive class (a true alarm) for each window."""
        if len(windows.channels) != len(self.scaler.mean):
            raise ValueError(f"the model was trained on {len(self.scaler.mean)} channels; "
                             f"got windows with {len(windows.channels)}")
        return predict_proba(self.net, *_tensors(self.scaler, windows)).numpy()

    def predict(self, windows: Any) -> np.ndarray:
        """0/1 decisions at the threshold chosen on validation."""
        return (self.predict_proba(windows) >= self.threshold).astype(np.int64)


def train_dsmt(
    train: Any,
    validation: Any,
    k: int = 20,
    aux_mode: str = "blocks",
    bank: Any = None,
    fc: Any = "lean",
    fdr_level: float = 0.05,
    width: int = 16,
    units: int = 32,
    epochs: int = 60,
    burn_in: int = 5,
    patience: int = 12,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    checkpoint: Any = None,
    epoch: str = "labelled",
    batch_norm: bool = True,
    validation_bank: Any = None,
    aux_patience: int = 12,
) -> DSMTModel:
    """Select K auxiliary tasks and train a DSMT-Net on your own windows.

    Parameters
    ----------
    train : transferkit.data.Windows
        Labelled windows (y 0/1) and unlabelled ones (y NaN) together.
    validation : Windows
        Labelled windows for early stopping (of the main task and, through their
        auxiliary targets, of the auxiliary phase) and the threshold (never used for
        selection).
    k : int
        Auxiliary tasks (0: the supervised network; no tsfresh needed).
    aux_mode : {"blocks", "shared"}
        DSMT-Net's K multitask blocks, or the naive one-shared-layer baseline.
    bank : FeatureBank, optional
        The tsfresh features of ``train``'s windows, in order (computed when not given):
        row i must be window i. To compute the bank once for all your windows and reuse
        it, pass ``bank.rows(index)`` beside ``windows.subset(index)`` (the same
        ``index``), and hide the labels you do not train on with
        :meth:`~transferkit.data.Windows.with_labels_of`, as in the second example.
    validation_bank : FeatureBank, optional
        The same for ``validation``'s windows (computed when not given).
    epoch : {"labelled", "pool"}
        Steps per epoch of either phase, whatever K (so every network takes as many
        main-task steps per epoch): the number of labelled training windows (the
        authors'), or ``ceil(len(train) / batch_size)``.
    batch_size : int
        Windows per step; 2 or more with ``batch_norm`` (the authors feed one window).
    batch_norm : bool
        Batch normalisation in the multitask blocks and the head (see
        :class:`~transferkit.multitask.DSMTNet`).
    aux_patience : int
        Auxiliary epochs without a lower validation MSE before the auxiliary phase ends.

    Examples
    --------
    Your own recordings: 40 windows of 2 channels, 10 of them labelled, NaN where a
    sensor dropped out:

    >>> import numpy as np
    >>> from transferkit.data import Windows
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 50).astype(float)
    >>> X = rng.normal(size=(50, 2, 64)) + y[:, None, None]
    >>> X[3, 1, 20:40] = np.nan
    >>> labels = y.copy(); labels[10:40] = np.nan
    >>> train = Windows.from_arrays(X[:40], labels[:40], channels=("ecg", "pleth"))
    >>> val = Windows.from_arrays(X[40:], y[40:], channels=("ecg", "pleth"))
    >>> import warnings; warnings.simplefilter("ignore")  # padding: few labels, few relevant
    >>> model = train_dsmt(train, val, k=3, fc="minimal", width=4, units=8, epochs=2,
    ...                    burn_in=1, patience=2)
    >>> model.predict_proba(val).shape, model.tasks.k
    ((10,), 3)

    One bank for all windows, 10 labels kept among the first 40 windows:

    >>> from transferkit.multitask import feature_bank
    >>> every = Windows.from_arrays(X, y, channels=("ecg", "pleth"))
    >>> bank = feature_bank(every.X, every.channels, "minimal")
    >>> pool = np.arange(40)
    >>> train = every.subset(pool).with_labels_of(np.arange(10))
    >>> model = train_dsmt(train, every.subset(np.arange(40, 50)), k=3, bank=bank.rows(pool),
    ...                    validation_bank=bank.rows(np.arange(40, 50)), width=4, units=8,
    ...                    epochs=2, burn_in=1, patience=2)
    >>> int(train.labelled.sum()), model.tasks.k
    (10, 3)
    """
    from ..train import seeded
    from .auxiliary import feature_bank, select_auxiliary_tasks
    from .dsmt import ChannelScaler

    if epoch not in ("labelled", "pool"):
        raise ValueError(f"epoch must be 'labelled' or 'pool'; got {epoch!r}")
    if batch_size < (2 if batch_norm else 1):
        raise ValueError(f"batch_size must be >= 2 with batch_norm=True (batch normalisation "
                         f"is undefined on one window); got {batch_size}")
    lab = np.flatnonzero(train.labelled)
    if len(lab) < 2 or len(np.unique(train.y[lab])) < 2:
        raise ValueError(f"train needs labelled windows of both classes; got {len(lab)} "
                         f"labelled with classes {sorted(set(train.y[lab].tolist()))}")
    if not validation.labelled.all() or len(np.unique(validation.y)) < 2:
        raise ValueError("validation windows must all be labelled, with both classes")
    if validation.channels != train.channels:
        raise ValueError(f"validation channels {validation.channels} differ from train's "
                         f"{train.channels}")
    scaler = ChannelScaler().fit(train.X)
    tasks, aux, aux_val = None, None, None
    tensors = partial(_tensors, scaler)
    if k:
        if bank is None:
            bank = feature_bank(train.X, train.channels, fc)
        if len(bank) != len(train):
            raise ValueError(f"bank has {len(bank)} rows for {len(train)} train windows")
        if validation_bank is None:
            try:
                validation_bank = feature_bank(validation.X, validation.channels, fc,
                                               impute_from=bank)
            except ValueError:
                raise ValueError(f"the validation windows' features computed with fc={fc!r} "
                                 "are not bank's: pass the fc that made bank, or "
                                 "validation_bank") from None
        if len(validation_bank) != len(validation):
            raise ValueError(f"validation_bank has {len(validation_bank)} rows for "
                             f"{len(validation)} validation windows")
        tasks = select_auxiliary_tasks(bank.rows(lab), train.y[lab], bank, k, seed, fdr_level)
        aux = (*tensors(train), torch.from_numpy(tasks.targets(bank)))
        aux_val = torch.from_numpy(tasks.targets(validation_bank))
    with seeded(seed):
        net = DSMTNet(len(train.channels), k, width=width, units=units, aux_mode=aux_mode,
                      batch_norm=batch_norm)
    labelled = train.subset(lab)
    per_epoch = len(lab) if epoch == "labelled" else math.ceil(len(train) / batch_size)
    res = fit_dsmt(net, (*tensors(labelled), torch.from_numpy(labelled.y).float()),
                   (*tensors(validation), torch.from_numpy(validation.y).float()), aux,
                   epochs=epochs, burn_in=burn_in, patience=patience, batch_size=batch_size,
                   lr=lr, seed=seed, checkpoint=checkpoint, desc=f"dsmt K={k}",
                   steps_per_epoch=per_epoch, aux_validation=aux_val,
                   aux_patience=aux_patience)
    return DSMTModel(net, scaler, tasks, res.threshold, res)
