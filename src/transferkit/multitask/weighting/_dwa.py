"""Dynamic weight average (Liu, Johns, Davison, CVPR 2019)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._base import Weighting, register_weighting


@register_weighting("dwa")
class DWA(Weighting):
    """Dynamic Weight Average, Liu et al. CVPR 2019, https://arxiv.org/abs/1803.10704.

    ``w_i = T softmax_i(r_i / temperature)`` with ``r_i = Lbar_i(e-1) / Lbar_i(e-2)`` the
    ratio of the task's mean losses over the last two completed periods ("epochs") of
    ``period`` steps; weights are 1 until two periods are complete.

    Parameters
    ----------
    tasks : int or sequence of str
    temperature : float
        2 in the paper.
    period : int
        Steps per averaging period (set it to the steps in an epoch to follow the paper).

    Examples
    --------
    >>> import torch
    >>> dwa = DWA(2, period=1)
    >>> x = torch.ones(())
    >>> for a in (1.0, 0.5):          # task "a" halves, task "b" stays
    ...     _ = dwa({"a": a * x, "b": x})
    >>> w = dwa(torch.ones(2))
    >>> round(float(w.sum()), 4), bool(w[0] < w[1])
    (2.0, True)
    """

    sums_to_n_tasks = True

    _sum: Tensor
    _count: Tensor
    _history: Tensor
    _periods: Tensor
    _steps: Tensor

    def __init__(
        self, tasks: int | Sequence[str], temperature: float = 2.0, period: int = 1
    ) -> None:
        super().__init__(tasks)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0; got {temperature}")
        if period < 1:
            raise ValueError(f"period must be >= 1; got {period}")
        self.temperature = temperature
        self.period = period
        self.register_buffer("_sum", torch.zeros(self.n_tasks))
        self.register_buffer("_count", torch.zeros(self.n_tasks))
        self.register_buffer("_history", torch.ones(2, self.n_tasks))
        self.register_buffer("_periods", torch.zeros((), dtype=torch.long))
        self.register_buffer("_steps", torch.zeros((), dtype=torch.long))

    def forward(self, losses: Tensor) -> Tensor:
        self._check_losses(losses)
        if int(self._periods) < 2:
            return torch.ones_like(losses)
        r = self._history[1] / self._history[0].clamp_min(torch.finfo(self._history.dtype).tiny)
        return (self.n_tasks * torch.softmax(r / self.temperature, dim=0)).to(losses)

    def update(self, losses: Sequence[Tensor | None], shared: Sequence[Tensor] | None) -> None:
        self._check_terms(losses)
        vec, present = self._values(losses)
        with torch.no_grad():
            p = present.to(self._sum)
            self._sum += vec.to(self._sum) * p
            self._count += p
            self._steps += 1
            if int(self._steps) % self.period == 0:
                mean = self._sum / self._count.clamp_min(1)
                # a task unseen in this period keeps its previous mean
                mean = torch.where(self._count > 0, mean, self._history[1])
                self._history.copy_(torch.stack([self._history[1], mean]))
                self._periods += 1
                self._sum.zero_()
                self._count.zero_()
