"""L1-SP: the L1 distance to the starting point (Li et al., ICML 2018)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import FinetuneRegularizer, _fold, _stack, register_regularizer


@register_regularizer("l1sp", alpha_scale=0.01)
class L1SP(FinetuneRegularizer):
    """L1-SP: L1 distance to the starting point (Li, Grandvalet, Davoine, ICML 2018, https://arxiv.org/abs/1802.01483).

    ``Omega(w) = alpha ||w_S - w0||_1 + beta/2 ||w_new||^2`` (no 1/2 on the L1 term, as
    in the public code). The gradient of ``|t|`` at ``t = 0`` is taken as 0.

    Parameters
    ----------
    model, alpha, beta, source, new, params
        As for :class:`L2SP`.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 1, bias=False))
    >>> reg = L1SP(net, alpha=0.5, beta=0.0, new=[])
    >>> with torch.no_grad():
    ...     _ = net[0].weight.add_(torch.tensor([[1.0, -3.0]]))
    >>> round(reg().item(), 6)  # 0.5 * (1 + 3)
    2.0
    """

    def _value(self, d: list[Tensor], fresh: list[Tensor]) -> Tensor:
        total = (d or fresh)[0].new_zeros((), dtype=self._dtype)
        if d:
            total = total + self.alpha * _stack(torch._foreach_norm(d, 1), self._dtype).sum()
        if fresh:
            v = _stack(torch._foreach_norm(fresh), self._dtype)
            total = total + (0.5 * self.beta) * torch.dot(v, v)
        return total

    def _grad(self, d: list[Tensor], fresh: list[Tensor], grad: Tensor) -> list[Tensor]:
        k = self._n_pre
        scal, post = _fold(self._scalars, grad)
        if d:
            torch._foreach_sign_(d)  # d = w - w0 is our own copy
            torch._foreach_mul_(d, scal[:k])
        out = d + (list(torch._foreach_mul(fresh, scal[k:])) if fresh else [])
        if post is not None:
            torch._foreach_mul_(out, post)
        return out
