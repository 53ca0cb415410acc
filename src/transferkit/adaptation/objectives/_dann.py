"""DANN: a domain classifier behind gradient reversal (Ganin et al., JMLR 2016)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..reversal import DomainDiscriminator, grad_reverse
from ._base import AdaptationObjective, _check_features, _check_width, register_adaptation

_LOG2 = math.log(2.0)


class DANNOutput(NamedTuple):
    """What :class:`DANN` returns.

    ``loss``: the divergence estimate 2 log 2 - BCE that the features descend and the
    discriminator ascends; ``domain_loss``: the discriminator's binary cross-entropy, the
    *sum* of the two domains' mean cross-entropies (as the MSTN authors' code sums D_real and
    D_fake); ``source_domain_logits`` / ``target_domain_logits``: the discriminator's
    logits (detached); ``domain_accuracy``: its accuracy (a float tensor, computed when
    asked for, not at every training step).

    Examples
    --------
    >>> import torch
    >>> out = DANN(8)(torch.randn(16, 8), torch.randn(16, 8) + 1)
    >>> out._fields[:2], out.loss.shape, out.domain_accuracy.shape
    (('loss', 'domain_loss'), torch.Size([]), torch.Size([]))
    """

    loss: Tensor
    domain_loss: Tensor
    source_domain_logits: Tensor
    target_domain_logits: Tensor

    @property
    def domain_accuracy(self) -> Tensor:
        """The discriminator's accuracy, the mean of the two domains' accuracies."""
        return _domain_accuracy(self.source_domain_logits, self.target_domain_logits)


def _domain_accuracy(z_s: Tensor, z_t: Tensor) -> Tensor:
    return 0.5 * ((z_s < 0).float().mean() + (z_t > 0).float().mean())


def _adversarial(
    discriminator: nn.Module, source: Tensor, target: Tensor, coeff: float
) -> DANNOutput:
    logits = discriminator(grad_reverse(torch.cat([source, target]), coeff))
    n = len(source)
    z_s, z_t = logits[:n], logits[n:]
    # source has domain label 0, target 1; the two domains' mean losses are summed, as in
    # the MSTN authors' code (D_real + D_fake), so an adversarial weight of 0.1 means theirs
    bce = F.softplus(z_s).mean() + F.softplus(-z_t).mean()
    # One reversal node: descending this term, the discriminator descends BCE and the
    # features, behind the reversal, ascend it (scaled by coeff). Its value is the
    # divergence estimate 2 log 2 - BCE: (bce - bce) is exactly 0, so the value and every
    # gradient are bit for bit those of the formulation with a second reversal after the
    # discriminator.
    divergence = (bce - bce.detach()) + (2 * _LOG2 - bce).detach()
    return DANNOutput(divergence, bce.detach(), z_s.detach(), z_t.detach())


class DANN(AdaptationObjective):
    """Domain-adversarial objective of DANN.

    Ganin et al., JMLR 2016, https://jmlr.org/papers/v17/15-239.html.

    A :class:`~transferkit.adaptation.DomainDiscriminator` tells source features (label 0)
    from target features (label 1). The returned ``loss`` is 2 log 2 - BCE, with BCE the sum
    of the source and target mean cross-entropies (the MSTN authors' ``D_real + D_fake``):
    twice the discriminator's estimate of the Jensen-Shannon divergence between the two
    feature distributions (about 0 when they are equal, up to 2 log 2 when separable). A
    single optimiser that *descends* ``task_loss + loss`` plays the minimax game: the
    discriminator descends its cross-entropy (ascends the divergence) while the features,
    behind one gradient-reversal layer, descend the divergence with their gradient scaled
    by ``coeff``. The gradients are exactly those of the usual
    ``CE + BCE(D(GRL_coeff(f)))`` formulation; only the reported value is shifted.

    Parameters
    ----------
    in_features : int
        Feature width d.
    hidden : sequence of int
        Hidden widths of the discriminator.
    dropout : float
        Dropout in the discriminator.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> obj = DANN(8, hidden=(16,))
    >>> s = torch.randn(10, 8, requires_grad=True)
    >>> out = obj(s, torch.randn(12, 8), coeff=0.5)
    >>> out.loss.backward()
    >>> s.grad.shape, out.domain_accuracy.shape
    (torch.Size([10, 8]), torch.Size([]))
    """

    uses_coeff = True

    def __init__(
        self, in_features: int, hidden: Sequence[int] = (256, 256), dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.discriminator = DomainDiscriminator(in_features, hidden, dropout)

    def forward(
        self,
        source: Tensor,
        target: Tensor,
        source_labels: Tensor | None = None,
        target_logits: Tensor | None = None,
        coeff: float = 1.0,
    ) -> DANNOutput:
        _check_features(source, target)
        _check_width(source, self.discriminator.in_features)
        return _adversarial(self.discriminator, source, target, coeff)


@register_adaptation("dann")
def _make_dann(in_features: int, n_classes: int, **kwargs: object) -> AdaptationObjective:
    return DANN(in_features, **kwargs)  # type: ignore[arg-type]
