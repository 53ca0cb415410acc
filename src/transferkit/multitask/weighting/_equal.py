"""Equal weighting: every task's loss with weight 1."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import Weighting, register_weighting


@register_weighting("equal")
class EqualWeighting(Weighting):
    """Equal weights, ``w_i = 1``: the plain summed loss (baseline of https://arxiv.org/abs/1711.02257).

    Examples
    --------
    >>> import torch
    >>> EqualWeighting(3)(torch.tensor([1.0, 5.0, 0.1]))
    tensor([1., 1., 1.])
    """

    sums_to_n_tasks = True
    constant_weights = True

    def forward(self, losses: Tensor) -> Tensor:
        self._check_losses(losses)
        return torch.ones_like(losses)
