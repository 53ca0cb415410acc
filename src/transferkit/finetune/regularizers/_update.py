"""The loop's update that adds a fine-tuning penalty's gradient to the task loss's."""

from __future__ import annotations

from typing import Any

import torch

from ...train.interface import Update
from ._base import FinetuneRegularizer


class PenaltyUpdate(Update):
    """The loop's update with a fine-tuning penalty applied without an autograd node.

    Before each optimiser step (and before clipping, as when the penalty is in the
    loss) the penalty's gradient is added in place to the weights' gradients by
    :meth:`FinetuneRegularizer.add_grad_`. The update equals the one of adding
    ``reg(model)`` to the loss (to float rounding); the penalty's value is not logged.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from transferkit.train import Phase, Stream, Trainer, classification_step
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> from transferkit.finetune import L2SP
    >>> reg = L2SP(model, alpha=0.1, beta=0.01, new=["2"])
    >>> x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    >>> phase = Phase(classification_step(), torch.optim.SGD(model.parameters(), lr=0.1),
    ...               {"train": Stream(x, y, batch_size=8, seed=0)}, update=PenaltyUpdate(reg))
    >>> _ = Trainer(model, phase, max_steps=4, seed=0).fit()
    """

    def __init__(self, regularizer: FinetuneRegularizer, scale: float = 1.0,
                 **update_kwargs: Any) -> None:
        if update_kwargs.get("autocast") == torch.float16:
            raise ValueError("PenaltyUpdate does not support float16 loss scaling; add the "
                             "penalty to the loss instead")
        super().__init__(**update_kwargs)
        if not isinstance(regularizer, FinetuneRegularizer):
            raise TypeError(f"regularizer must be a FinetuneRegularizer; got "
                            f"{type(regularizer).__name__}")
        self.regularizer = regularizer
        self.scale = float(scale)

    def _step(self, phase: Any, scaler: Any) -> None:
        self.regularizer.add_grad_(scale=self.scale)
        super()._step(phase, scaler)
