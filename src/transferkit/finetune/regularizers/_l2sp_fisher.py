"""L2-SP-Fisher: L2-SP weighted by the diagonal Fisher of the source model (Li et al.)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from ._base import FinetuneRegularizer, _check_coef, register_regularizer


@register_regularizer("l2sp-fisher")
class L2SPFisher(FinetuneRegularizer):
    """L2-SP-Fisher: L2-SP weighted by the source's diagonal Fisher (Li et al., ICML 2018, https://arxiv.org/abs/1802.01483).

    ``Omega(w) = alpha/2 sum_j F_j (w_j - w0_j)^2 + beta/2 ||w_new||^2``, where ``F`` is
    the diagonal Fisher information of the source model on source data
    (:func:`fisher_diagonal`), so weights the source task relies on are held more firmly.

    Parameters
    ----------
    model : nn.Module
    fisher : mapping of str -> Tensor
        Diagonal Fisher of each pretrained weight (same shape as the weight); extra keys
        are ignored, a missing pretrained weight is an error. Negative values are an error.
        Like the start point it is cloned.
    alpha, beta, source, new, params
        As for :class:`L2SP`.
    eps : float
        Added to the Fisher (the public code's ``fisher_epsilon``), default 0.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 1, bias=False))
    >>> fisher = {"0.weight": torch.tensor([[4.0, 0.0]])}
    >>> reg = L2SPFisher(net, fisher, alpha=1.0, beta=0.0, new=[])
    >>> with torch.no_grad():
    ...     _ = net[0].weight.add_(1.0)
    >>> round(reg().item(), 6)  # 1/2 * (4 * 1 + 0 * 1)
    2.0
    """

    needs_fisher = True

    def __init__(
        self,
        model: nn.Module,
        fisher: Mapping[str, Tensor],
        alpha: float = 0.1,
        beta: float = 0.01,
        *,
        source: nn.Module | Mapping[str, Tensor] | None = None,
        new: Iterable[str] | None = None,
        params: Iterable[str] | None = None,
        eps: float = 0.0,
    ) -> None:
        super().__init__(model, alpha, beta, source=source, new=new, params=params)
        if not isinstance(fisher, Mapping):
            raise TypeError(f"fisher must be a mapping name -> tensor; got {type(fisher).__name__}")
        eps = _check_coef("eps", eps)
        self._sqrt_names: list[str] = []
        for i, (n, start) in enumerate(zip(self.pretrained_names, self._starts(), strict=True)):
            if n not in fisher:
                raise ValueError(
                    f"fisher has no entry for the pretrained weight {n!r} "
                    f"(it has {sorted(fisher)[:8]}{'...' if len(fisher) > 8 else ''})"
                )
            f = fisher[n]
            if not isinstance(f, Tensor) or tuple(f.shape) != tuple(start.shape):
                shape = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
                raise ValueError(
                    f"fisher[{n!r}] has shape {shape}; the weight has shape {tuple(start.shape)}"
                )
            if bool((f < 0).any()) or not bool(torch.isfinite(f).all()):
                raise ValueError(f"fisher[{n!r}] must be finite and >= 0")
            sq = (f.detach().to(device=start.device, dtype=start.dtype) + eps).sqrt()
            self.register_buffer(f"sqrt_fisher_{i}", sq)
            self._sqrt_names.append(f"sqrt_fisher_{i}")

    def _sqrt_f(self) -> list[Tensor]:
        cached = self.__dict__.get("_sqrt_list")
        if cached is None:
            cached = [self._buffers[b] for b in self._sqrt_names]
            self.__dict__["_sqrt_list"] = cached
        return cached

    def _weighted(self, d: list[Tensor]) -> list[Tensor]:
        return list(torch._foreach_mul(d, self._sqrt_f()))

    def _scale_pre_grad(self, g: list[Tensor]) -> None:
        s = self._sqrt_f()
        torch._foreach_mul_(g, s)
        torch._foreach_mul_(g, s)
