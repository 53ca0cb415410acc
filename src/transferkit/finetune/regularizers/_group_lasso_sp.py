"""Group-Lasso-SP: per-output-unit L2 distances to the starting point (Li et al.)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._base import FinetuneRegularizer, _stack, register_regularizer


@register_regularizer("group-lasso-sp", alpha_scale=0.01)
class GroupLassoSP(FinetuneRegularizer):
    """Group-Lasso-SP: per-output-unit L2 distances to the start (Li et al., ICML 2018, https://arxiv.org/abs/1802.01483).

    ``Omega(w) = alpha sum_g sqrt(n_g) ||w_g - w0_g||_2 + beta/2 ||w_new||^2``. A group
    ``g`` is one output unit of a pretrained layer: one output channel of a convolution
    (its ``c_in/groups * k_h * k_w`` weights; ``weight[j]``) or one row of a linear layer
    (``in_features`` weights), and ``n_g`` is that count, i.e. the paper's coefficient
    ``sqrt(k_h * k_w * c_in)``. Groups that stay at their start point contribute 0 and get
    a zero (sub)gradient.

    Parameters
    ----------
    model, alpha, beta, source, new, params
        As for :class:`L2SP`; with ``params``, groups are taken along dimension 0.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 2, bias=False))
    >>> reg = GroupLassoSP(net, alpha=1.0, beta=0.0, new=[])
    >>> with torch.no_grad():
    ...     _ = net[0].weight[0].add_(torch.tensor([3.0, 4.0, 0.0, 0.0]))
    >>> round(reg().item(), 6)  # sqrt(4) * ||(3, 4, 0, 0)|| for output unit 0; unit 1 has not moved
    10.0
    """

    def _group_norms(self, d: list[Tensor]) -> list[Tensor]:
        return [t.reshape(t.shape[0], -1).norm(dim=1) if t.dim() > 0 else t.abs() for t in d]

    @staticmethod
    def _coef(t: Tensor) -> float:
        return math.sqrt(t.numel() / t.shape[0]) if t.dim() > 0 and t.shape[0] else 1.0

    def _value(self, d: list[Tensor], fresh: list[Tensor]) -> Tensor:
        total = (d or fresh)[0].new_zeros((), dtype=self._dtype)
        for t, n in zip(d, self._group_norms(d), strict=True):
            total = total + (self.alpha * self._coef(t)) * n.sum()
        if fresh:
            v = _stack(torch._foreach_norm(fresh), self._dtype)
            total = total + (0.5 * self.beta) * torch.dot(v, v)
        return total

    def _grad(self, d: list[Tensor], fresh: list[Tensor], grad: Tensor) -> list[Tensor]:
        out = []
        for t, n in zip(d, self._group_norms(d), strict=True):
            safe = torch.where(n > 0, n, torch.ones_like(n))
            scale = torch.where(n > 0, (self.alpha * self._coef(t)) / safe, torch.zeros_like(n))
            out.append(t * scale.reshape((-1,) + (1,) * (t.dim() - 1)))
        out += list(torch._foreach_mul(fresh, self.beta)) if fresh else []
        torch._foreach_mul_(out, grad)
        return out
