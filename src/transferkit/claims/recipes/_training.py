"""The one "SGD + Stream + fit(classification_step)" that the classification recipes share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ...train import Stream, classification_step, fit


def fit_classifier(
    net: nn.Module,
    tensors: tuple[Tensor, ...],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    seed: int,
    params: Iterable[Any] | None = None,
    regularizer: Callable[[nn.Module], Tensor] | None = None,
    desc: str = "train",
) -> nn.Module:
    """Train ``net`` on ``tensors`` = (x, y[, per-example weights]) with SGD and momentum.

    ``params`` (parameters or parameter groups) default to all of ``net``'s; the stream's
    batches and the loop's random state are both seeded by ``seed``.
    """
    opt = torch.optim.SGD(net.parameters() if params is None else params, lr=lr,
                          momentum=momentum, weight_decay=weight_decay)
    stream = Stream(*tensors, batch_size=batch_size, seed=seed)
    fit(net, classification_step(regularizer=regularizer), {"train": stream}, opt, steps,
        seed=seed, desc=desc, log_losses_every=0)
    return net
