"""L2: weight decay towards 0, the fine-tuning baseline of Li et al. (ICML 2018)."""

from __future__ import annotations

from ._base import FinetuneRegularizer, register_regularizer


@register_regularizer("l2", method="finetune")
class L2(FinetuneRegularizer):
    """L2 weight decay towards 0 (the fine-tuning baseline of Li et al., ICML 2018, https://arxiv.org/abs/1802.01483).

    ``Omega(w) = alpha/2 ||w_S||^2 + beta/2 ||w_new||^2`` over the weights of
    :func:`penalized_parameters`. It needs no start point, only the pretrained/new split.

    Parameters
    ----------
    model : nn.Module
        The model being fine-tuned (already with its new head).
    alpha : float
        Strength on the pretrained weights.
    beta : float
        Strength on the new weights.
    source : nn.Module or state dict, optional
        Parameters absent from it are new.
    new : list of str, optional
        Names (module or parameter prefixes) of the new layers. At least one of ``source``
        and ``new`` is required.
    params : list of str, optional
        Parameter names to penalise instead of the default conv/linear weights.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 2, bias=False))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.fill_(1.0)
    >>> round(L2(net, alpha=0.1, beta=0.0, new=[])().item(), 6)  # 0.1 / 2 * 6
    0.3
    """

    _uses_start = False
