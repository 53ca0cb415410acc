"""MSTN: DANN plus the semantic alignment of moving class centroids (Xie et al., ICML 2018)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ...distributed import differentiable_sum, sum_across_ranks
from ..reversal import DomainDiscriminator
from ._base import AdaptationObjective, _check_features, _check_width, register_adaptation
from ._dann import _adversarial, _domain_accuracy


def batch_centroids(features: Tensor, labels: Tensor, n_classes: int) -> tuple[Tensor, Tensor]:
    """Per-class mean of ``features`` (n, d) by int64 ``labels`` (n,); returns (centroids, counts).

    Rows of absent classes are 0 (their count is 0). Under ``torch.distributed`` these are
    the global batch's: the per-class sums and counts are summed over the ranks, and the
    sums' backward gives each rank's rows the gradient of the global centroids.

    Examples
    --------
    >>> import torch
    >>> c, n = batch_centroids(torch.tensor([[1.0], [3.0], [5.0]]), torch.tensor([0, 0, 2]), 3)
    >>> c.squeeze(1).tolist(), n.tolist()
    ([2.0, 0.0, 5.0], [2.0, 0.0, 1.0])
    """
    onehot = F.one_hot(labels, n_classes).to(features.dtype)
    counts = sum_across_ranks(onehot.sum(dim=0))
    sums = differentiable_sum(onehot.T @ features)
    return sums / counts.clamp_min(1.0)[:, None], counts


def update_centroids(
    previous: Tensor, features: Tensor, labels: Tensor, decay: float = 0.3
) -> tuple[Tensor, Tensor]:
    """MSTN's moving centroids C <- decay * C_batch + (1 - decay) * C_prev.

    Xie et al., ICML 2018, https://proceedings.mlr.press/v80/xie18c.html.

    Only classes present in the batch move; the others keep ``previous`` (a zero batch
    centroid would otherwise drag an absent class towards 0). ``previous`` is detached, so
    gradients reach only this batch's ``features``.

    Parameters
    ----------
    previous : Tensor, shape (n_classes, d)
    features : Tensor, shape (n, d)
    labels : Tensor of int64, shape (n,)
        True labels (source) or pseudo-labels (target).
    decay : float
        Weight of the batch centroid, in (0, 1] (0.3 in the paper).

    Returns
    -------
    centroids : Tensor, shape (n_classes, d)
        Differentiable with respect to ``features``.
    present : Tensor of bool, shape (n_classes,)

    Examples
    --------
    >>> import torch
    >>> prev = torch.tensor([[1.0], [1.0]])
    >>> c, present = update_centroids(prev, torch.tensor([[2.0], [4.0]]), torch.tensor([0, 0]))
    >>> [round(v, 4) for v in c.squeeze(1).tolist()], present.tolist()
    ([1.6, 1.0], [True, False])
    """
    if previous.dim() != 2 or features.dim() != 2 or previous.shape[1] != features.shape[1]:
        raise ValueError(
            f"previous must be (n_classes, d) and features (n, d) with the same d; got "
            f"{tuple(previous.shape)} and {tuple(features.shape)}"
        )
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay must be in (0, 1]; got {decay}")
    _check_labels(labels, len(features), previous.shape[0], "labels")
    return _moved_centroids(previous, features, labels, decay)


def _moved_centroids(
    previous: Tensor, features: Tensor, labels: Tensor, decay: float
) -> tuple[Tensor, Tensor]:
    batch, counts = batch_centroids(features, labels, previous.shape[0])
    present = counts > 0
    prev = previous.detach()
    moved = decay * batch + (1.0 - decay) * prev
    return torch.where(present[:, None], moved, prev), present


def _check_labels(labels: Tensor | None, n: int, n_classes: int, name: str) -> Tensor:
    if labels is None:
        raise ValueError(f"{name} are required by this objective; got None")
    if labels.dtype != torch.int64 or labels.shape != (n,):
        raise ValueError(
            f"{name} must be int64 of shape ({n},); got {labels.dtype} of shape "
            f"{tuple(labels.shape)}"
        )
    if n and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(
            f"{name} must lie in [0, {n_classes}); got values in "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    return labels


class MSTNOutput(NamedTuple):
    """What :class:`MSTN` returns.

    ``loss`` = ``adversarial + coeff * semantic_weight * semantic``; ``adversarial``: the
    DANN term (2 log 2 - BCE); ``semantic``: the centroid alignment loss; the updated
    ``source_centroids`` and ``target_centroids`` (n_classes, d), differentiable; the
    discriminator's (detached) logits and, when asked for, its ``domain_accuracy``.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> mstn = MSTN(8, n_classes=3)
    >>> source, target = torch.randn(12, 8, generator=g), torch.randn(12, 8, generator=g)
    >>> out = mstn(source, target, source_labels=torch.arange(12) % 3,
    ...            target_logits=torch.randn(12, 3, generator=g))
    >>> out._fields[:3], out.source_centroids.shape
    (('loss', 'adversarial', 'semantic'), torch.Size([3, 8]))
    """

    loss: Tensor
    adversarial: Tensor
    semantic: Tensor
    source_centroids: Tensor
    target_centroids: Tensor
    source_domain_logits: Tensor
    target_domain_logits: Tensor

    @property
    def domain_accuracy(self) -> Tensor:
        """The discriminator's accuracy, the mean of the two domains' accuracies."""
        return _domain_accuracy(self.source_domain_logits, self.target_domain_logits)


class MSTN(AdaptationObjective):
    """Moving Semantic Transfer Network objective.

    Xie et al., ICML 2018, https://proceedings.mlr.press/v80/xie18c.html.

    DANN's adversarial term plus the semantic loss that aligns, class by class, a moving
    centroid of the source features (by true labels) with a moving centroid of the target
    features (by pseudo-labels, the argmax of ``target_logits``)::

        C <- decay * C_batch + (1 - decay) * C_prev      (C_prev detached)
        semantic = mean over classes and dimensions of (C_source - C_target)^2

    as in the authors' code (the paper's sum of squared distances divided by
    ``n_classes * d``). Only classes present in the batch are updated. In training mode
    the call writes the updated centroids (detached) to the buffers
    ``source_centroids`` / ``target_centroids``; in eval mode the buffers are left as
    they are. The returned ``loss`` is ``adversarial + coeff * semantic_weight *
    semantic``; the adversarial part's feature gradient is scaled by ``coeff`` through the
    reversal layer (see :class:`DANN`).

    Parameters
    ----------
    in_features : int
        Feature width d (the paper uses a 256-d bottleneck).
    n_classes : int
    hidden, dropout :
        The discriminator's, see :class:`DANN`.
    decay : float
        Weight of the batch centroid (0.3 in the paper).
    semantic_weight : float
        Multiplies the semantic term (1 in the paper).

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> obj = MSTN(4, n_classes=3, hidden=(8,))
    >>> s, t = torch.randn(6, 4, requires_grad=True), torch.randn(5, 4, requires_grad=True)
    >>> out = obj(s, t, torch.tensor([0, 0, 1, 1, 2, 2]), torch.randn(5, 3), coeff=1.0)
    >>> out.loss.backward()
    >>> bool(out.semantic > 0), obj.source_centroids.shape
    (True, torch.Size([3, 4]))
    """

    needs_labels = True
    needs_logits = True
    uses_coeff = True
    source_centroids: Tensor
    target_centroids: Tensor

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        hidden: Sequence[int] = (256, 256),
        dropout: float = 0.0,
        decay: float = 0.3,
        semantic_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if int(n_classes) < 1:
            raise ValueError(f"n_classes must be >= 1; got {n_classes}")
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1]; got {decay}")
        self.n_classes = int(n_classes)
        self.decay = float(decay)
        self.semantic_weight = float(semantic_weight)
        self.discriminator = DomainDiscriminator(in_features, hidden, dropout)
        self.register_buffer("source_centroids", torch.zeros(self.n_classes, int(in_features)))
        self.register_buffer("target_centroids", torch.zeros(self.n_classes, int(in_features)))

    def forward(
        self,
        source: Tensor,
        target: Tensor,
        source_labels: Tensor | None = None,
        target_logits: Tensor | None = None,
        coeff: float = 1.0,
    ) -> MSTNOutput:
        _check_features(source, target)
        _check_width(source, self.discriminator.in_features)
        labels = _check_labels(source_labels, len(source), self.n_classes, "source_labels")
        if target_logits is None:
            raise ValueError("target_logits are required by MSTN (for pseudo-labels); got None")
        if target_logits.shape != (len(target), self.n_classes):
            raise ValueError(
                f"target_logits must have shape ({len(target)}, {self.n_classes}); got "
                f"{tuple(target_logits.shape)}"
            )
        pseudo = target_logits.detach().argmax(dim=1)
        prev_s = self.source_centroids.to(source.dtype)
        prev_t = self.target_centroids.to(target.dtype)
        c_s, _ = _moved_centroids(prev_s, source, labels, self.decay)
        c_t, _ = _moved_centroids(prev_t, target, pseudo, self.decay)
        semantic = ((c_s - c_t) ** 2).mean()
        adv = _adversarial(self.discriminator, source, target, coeff)
        if self.training:
            with torch.no_grad():  # a non-finite batch never reaches the moving centroids
                if bool(torch.isfinite(c_s).all() & torch.isfinite(c_t).all()):
                    self.source_centroids.copy_(c_s.detach())
                    self.target_centroids.copy_(c_t.detach())
        loss = adv.loss + (float(coeff) * self.semantic_weight) * semantic
        return MSTNOutput(loss, adv.loss, semantic, c_s, c_t, adv.source_domain_logits,
                          adv.target_domain_logits)


@register_adaptation("mstn")
def _make_mstn(in_features: int, n_classes: int, **kwargs: object) -> AdaptationObjective:
    return MSTN(in_features, n_classes, **kwargs)  # type: ignore[arg-type]
