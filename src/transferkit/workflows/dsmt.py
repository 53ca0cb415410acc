"""Train a DSMT-Net with the authors' schedule in the one training loop.

Schwab et al., ICML 2018 (arXiv 1802.05027); the schedule of the authors' public code
(d909b/DSMT-Nets, ``model/model_trainer.py``): a burn-in of auxiliary epochs, then one
auxiliary epoch (labelled + unlabelled windows) and one main epoch (labelled windows) in
turn, each phase with its own RMSprop; the main task's validation BCE after each main
epoch keeps the best state and stops after ``patience`` epochs without improvement; the
decision threshold is chosen on validation. An epoch is ``ceil(pool / batch)`` steps of
either phase (the authors' trainer runs both generators for ``steps_per_epoch`` batches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..multitask.dsmt import (
    DSMTNet,
    dsmt_aux_step,
    dsmt_main_step,
    predict_proba,
    youden_threshold,
)
from ..train import BestCheckpoint, Phase, Stream, Trainer

__all__ = ["DSMTResult", "fit_dsmt"]


@dataclass
class DSMTResult:
    """What :func:`fit_dsmt` returns: the trained model (best validation state), the
    chosen threshold, the epochs run and the validation curve."""

    model: DSMTNet
    threshold: float
    epochs: int
    best_epoch: int
    val_loss: list[float]


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
    """
    use_aux = aux is not None and model.n_aux > 0
    pool = len(aux[0]) if aux is not None and use_aux else len(labelled[0])
    per_epoch = max(1, math.ceil(pool / batch_size))
    lab_stream = Stream(*labelled, batch_size=min(batch_size, len(labelled[0])), seed=seed)
    main = Phase(dsmt_main_step, torch.optim.RMSprop(model.parameters(), lr=lr),
                 {"labelled": lab_stream}, steps=per_epoch, name="main")
    xv, mv, yv = validation

    def val_loss(m: nn.Module) -> float:
        logit = torch.cat([m(xv[i:i + 512], mv[i:i + 512])[0] for i in range(0, len(xv), 512)])
        return float(F.binary_cross_entropy_with_logits(logit, yv.float()))

    if use_aux:
        assert aux is not None
        aux_phase = Phase(dsmt_aux_step, torch.optim.RMSprop(model.parameters(), lr=lr),
                          {"aux": Stream(*aux, batch_size=batch_size, seed=seed + 1)},
                          steps=per_epoch, first_steps=burn_in * per_epoch, name="aux")
        phases = [aux_phase, main]
        max_steps = (burn_in + 2 * epochs - 1) * per_epoch
    else:
        phases, max_steps = [main], epochs * per_epoch
    best = BestCheckpoint(val_loss, every=per_epoch, name="val_bce", patience=patience,
                          after_phase="main")
    trainer = Trainer(model, phases, max_steps, callbacks=[best], seed=seed,
                      checkpoint=checkpoint, desc=desc)
    history = trainer.fit()
    _, losses = history.series("selection/val_bce")
    p = predict_proba(model, xv, mv).numpy()
    return DSMTResult(model, youden_threshold(yv.numpy(), p), len(losses),
                      int(np.argmin(losses)) + 1 if losses else 0, [float(v) for v in losses])
