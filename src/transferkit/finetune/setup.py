"""One fine-tuning method by name: new head, freezing and penalty for a pretrained network.

Shared by ``transferkit finetune`` (:mod:`transferkit.workflows.finetune`) and the claims,
so a method means the same everywhere (Li, Grandvalet, Davoine, ICML 2018,
https://arxiv.org/abs/1802.01483):

The methods are read from the registry of :mod:`transferkit.finetune.methods`:

- ``linear-probe``: every feature block frozen (batch norms in eval mode), only the new
  head trains, with L2 of strength ``alpha`` on it;
- ``finetune``: every layer trains, with plain L2 weight decay ``alpha`` on the pretrained
  weights and ``beta`` on the head (the paper's baseline ``L2``);
- ``l2sp``, ``l1sp``, ``group-lasso-sp``, ``l2sp-fisher``: every layer trains with that
  penalty towards the pretrained weights (:mod:`transferkit.finetune.regularizers`).

``l2sp-fisher`` needs the diagonal Fisher of the pretrained model. The paper computes it on
the source data; when that is not at hand (ImageNet here), it is computed on the images
given as ``fisher_data`` (the target's training images), with ``y`` drawn from the
pretrained model's own predictions over its source classes (no target labels are used),
and rescaled to mean 1 so the alpha grid of L2-SP applies. With more than 100 source
classes one ``y`` is sampled per image (``mode="sampled"``) instead of summing over all.
The rescaled Fisher is capped at ``FISHER_CAP`` = 100: on EfficientNet-Lite0 a few weights
reach 46,000 times the mean (the 99th percentile is 15), and for them an SGD step with
``lr * alpha * F`` far above 2 diverges (it did, at lr 0.01 and alpha 0.1); with the cap
the penalty's step stays stable for alpha <= 1 and lr <= 0.02. Fewer than 1% of weights
are affected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..nets import replace_head
from .freezing import freeze, trainable
from .methods import create_finetune_method, list_finetune_methods
from .regularizers import (
    FinetuneRegularizer,
    create_regularizer,
    fisher_diagonal,
    penalized_parameters,
    regularizer_class,
)

__all__ = ["FinetuneSetup", "hold_batchnorm", "prepare_finetune"]

FISHER_CAP = 100.0


class _HeldBatchNorm(nn.BatchNorm2d):
    """A batch norm that stays in eval mode (its running statistics are kept)."""

    def train(self, mode: bool = True) -> _HeldBatchNorm:
        return super().train(False)


def hold_batchnorm(module: nn.Module) -> int:
    """Keep every ``BatchNorm2d`` inside ``module`` in eval mode for good; returns how many.

    Frozen layers are then a fixed feature extractor: without this, train mode would still
    normalise by batch statistics and move the running statistics. State-dict keys are
    unchanged.

    Examples
    --------
    >>> block = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    >>> hold_batchnorm(block)
    1
    >>> block.train().training, block[1].training   # the batch norm stays in eval mode
    (True, False)
    """
    n = 0
    for m in module.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = _HeldBatchNorm
            m.eval()
            n += 1
    return n


@dataclass(repr=False)
class FinetuneSetup:
    """What :func:`prepare_finetune` returns: train ``params`` of ``net`` with ``penalty``.

    Examples
    --------
    >>> from transferkit.nets import create_backbone
    >>> net = create_backbone("mlp", in_shape=(1, 8, 8), n_classes=10, hidden=(16,))
    >>> setup = prepare_finetune(net, 3, "linear-probe", alpha=0.01)
    >>> setup.method, len(setup.params)          # only the new head's weight and bias train
    ('linear-probe', 2)
    >>> setup                                       # a summary, not every weight
    FinetuneSetup(method='linear-probe', net=MLP, penalty=L2, params=2 tensors, 51 values)
    """

    net: nn.Module
    penalty: FinetuneRegularizer
    params: list[nn.Parameter]
    method: str

    def __repr__(self) -> str:  # the default printed every weight (hundreds of KB)
        n = sum(p.numel() for p in self.params)
        return (f"FinetuneSetup(method={self.method!r}, net={type(self.net).__name__}, "
                f"penalty={type(self.penalty).__name__}, params={len(self.params)} tensors, "
                f"{n:,} values)")


def _fisher(net: nn.Module, data: Tensor, seed: int) -> dict[str, Tensor]:
    n_out = int(getattr(getattr(net, "head", None), "out_features", 0))
    mode = "sampled" if n_out > 100 else "expected"
    gen = torch.Generator(device=data.device).manual_seed(seed)
    fisher = fisher_diagonal(net, data, mode=mode, batch_size=16, generator=gen)
    fisher = {k: v for k, v in fisher.items() if not k.startswith("head")}
    mean = torch.cat([f.flatten() for f in fisher.values()]).mean()
    if not bool(mean > 0):
        raise ValueError("the Fisher of the pretrained model is zero on these images")
    return {k: (v / mean).clamp_max(FISHER_CAP) for k, v in fisher.items()}


def prepare_finetune(
    net: nn.Module, n_classes: int, method: str, alpha: float, *, beta: float = 0.01,
    freeze_blocks: int = 0, fisher_data: Tensor | None = None, seed: int = 0,
) -> FinetuneSetup:
    """Give the pretrained ``net`` a new head and the ``method``'s freezing and penalty.

    Parameters
    ----------
    net : SplitNet
        The pretrained network with its source head (changed in place).
    n_classes : int
        Classes of the target task (the new head, initialised under ``seed``).
    method : str
        A registered fine-tuning method (:func:`~transferkit.finetune.list_finetune_methods`).
    alpha, beta : float
        Penalty strengths on the pretrained weights and on the new head (``beta`` is the
        paper's 0.01 by default; for ``linear-probe`` ``alpha`` is the head's L2).
    freeze_blocks : int
        Also freeze the first this many feature blocks (their batch norms held in eval
        mode); ``linear-probe`` freezes them all.
    fisher_data : Tensor, optional
        Preprocessed images for ``l2sp-fisher``'s Fisher (see the module docstring).

    Examples
    --------
    >>> from transferkit.nets import create_backbone
    >>> net = create_backbone("mlp", in_shape=(1, 8, 8), n_classes=10, hidden=(16,))
    >>> setup = prepare_finetune(net, 3, "l2sp", alpha=0.1)
    >>> setup.net.head.out_features, type(setup.penalty).__name__
    (3, 'L2SP')
    """
    if method not in list_finetune_methods():
        raise ValueError(f"unknown fine-tuning method {method!r}; the methods are "
                         f"{', '.join(list_finetune_methods())}")
    spec = create_finetune_method(method)
    features = getattr(net, "features", None)
    if not isinstance(features, nn.Sequential):
        raise TypeError("prepare_finetune needs a network with `features` (nn.Sequential) "
                        "and `head` (see transferkit.nets.SplitNet)")
    fisher = None
    if regularizer_class(spec.penalty).needs_fisher:
        if fisher_data is None:
            raise ValueError(f"{method} needs fisher_data (images for the Fisher)")
        fisher = _fisher(net, fisher_data, seed)
    start = {k: v.detach().clone() for k, v in net.state_dict().items()}
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(seed + 1)
        replace_head(net, n_classes)
    blocks = len(features) if spec.frozen_features else int(freeze_blocks)
    if blocks:
        freeze(net, blocks=blocks)
        hold_batchnorm(features[:blocks])
    moving = {n for n, p in net.named_parameters() if p.requires_grad}
    kw: dict[str, Any] = {"model": net, "source": start, "new": ["head"],
                          "params": [n for n in penalized_parameters(net) if n in moving]}
    if fisher is not None:
        kw["fisher"] = fisher
    if spec.frozen_features:  # alpha is the head's L2
        penalty = create_regularizer(spec.penalty, alpha=0.0, beta=alpha, **kw)
    else:
        penalty = create_regularizer(spec.penalty, alpha=alpha, beta=beta, **kw)
    return FinetuneSetup(net, penalty, trainable(net), method)
