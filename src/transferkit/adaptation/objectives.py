"""Domain-adaptation objectives: MMD, CORAL, DANN and MSTN, and their registry.

Every objective is an ``nn.Module`` called as
``objective(source, target, source_labels=None, target_logits=None, coeff=1.0)`` on
features of shape ``(n_source, d)`` and ``(n_target, d)`` from any feature extractor
(``source_labels``: int64 ``(n_source,)``; ``target_logits``: ``(n_target, n_classes)``;
``coeff``: the adaptation weight lambda of the current step, see
:func:`~transferkit.adaptation.grl_lambda`). Discrepancies (MMD, CORAL) return a scalar
tensor; adversarial objectives (DANN, MSTN) return a NamedTuple whose first field
``loss`` is the scalar to add to the task loss and whose other fields are diagnostics.
:func:`adaptation_loss` takes the scalar from either form. Nothing is stashed on the
module except MSTN's moving centroids, which are buffers (like batch-norm statistics).

Conventions shared by all objectives, relied upon by
:func:`transferkit.testing.check_adaptation_objective`: the value is about 0 when the two
feature sets are equal and positive under a domain shift (for adversarial objectives:
once the discriminator has been trained by descending on the returned loss), and the
gradient of ``loss`` reaches both feature sets.

Under ``torch.distributed`` (:mod:`transferkit.distributed`) DANN's loss is a mean over the
rows, so the averaged gradients are those of the global batch; MSTN's batch centroids are
the global batch's (per-class sums and counts summed over the ranks), so its centroids,
semantic loss and gradients match one process with the whole batch; MMD and CORAL are
computed on each rank's shard, an estimate of the same discrepancy from fewer pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._registry import Registry
from ..distributed import differentiable_sum, sum_across_ranks
from .reversal import DomainDiscriminator, grad_reverse

_LOG2 = math.log(2.0)


# ---------------------------------------------------------------------------- validation
def _check_features(source: Tensor, target: Tensor, min_rows: int = 1) -> None:
    for name, t in (("source", source), ("target", target)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} features must be a Tensor; got {type(t).__name__}")
        if t.dim() != 2:
            raise ValueError(
                f"{name} features must have shape (n, d); got shape {tuple(t.shape)}"
            )
        if not t.is_floating_point():
            raise TypeError(f"{name} features must be floating point; got {t.dtype}")
        if len(t) < min_rows:
            raise ValueError(f"{name} features need at least {min_rows} rows; got {len(t)}")
    if source.shape[1] != target.shape[1]:
        raise ValueError(
            f"source features have {source.shape[1]} columns but target features have "
            f"{target.shape[1]}"
        )


def _check_width(features: Tensor, in_features: int) -> None:
    if features.shape[1] != in_features:
        raise ValueError(
            f"features have {features.shape[1]} columns but the objective was built for "
            f"in_features={in_features}"
        )


def adaptation_loss(output: Tensor | tuple[Tensor, ...]) -> Tensor:
    """The scalar loss of an adaptation objective's output (a tensor, or a NamedTuple's ``loss``).

    Examples
    --------
    >>> import torch
    >>> adaptation_loss(torch.tensor(0.5))
    tensor(0.5000)
    """
    if isinstance(output, Tensor):
        return output
    loss = getattr(output, "loss", None)
    if not isinstance(loss, Tensor):
        raise TypeError(
            f"expected a Tensor or a NamedTuple with a `loss` tensor; got {type(output).__name__}"
        )
    return loss


class AdaptationObjective(nn.Module):
    """Base class of adaptation objectives (see the module docstring for the call contract).

    ``needs_labels`` / ``needs_logits`` say whether ``source_labels`` / ``target_logits``
    must be passed. ``uses_coeff`` says whether the objective applies the schedule's
    ``coeff`` itself (adversarial objectives scale only the features' gradient with it);
    when it is False the caller multiplies the loss by the schedule instead (see
    :func:`~transferkit.adaptation.adaptation_step`).
    """

    needs_labels: bool = False
    needs_logits: bool = False
    uses_coeff: bool = False


# ------------------------------------------------------------------------------- MMD
def _sq_distances(z: Tensor) -> Tensor:
    sq = (z * z).sum(dim=1)
    return (sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)).clamp_min(0.0)


def gaussian_kernel(
    z: Tensor, kernel_mul: float = 2.0, kernel_num: int = 5, bandwidth: float | None = None
) -> Tensor:
    """The (n, n) sum of ``kernel_num`` Gaussian kernels between the rows of ``z``.

    Bandwidths (squared lengths) are ``bandwidth * kernel_mul^k`` for k centred on 0;
    without ``bandwidth`` the mean pairwise squared distance of ``z`` (detached). With
    ``kernel_num=1`` it is the single Gaussian kernel ``exp(-||z_i - z_j||^2 / bandwidth)``.

    Examples
    --------
    >>> import torch
    >>> k = gaussian_kernel(torch.tensor([[0.0], [1.0]]), kernel_num=1, bandwidth=1.0)
    >>> [round(v, 4) for v in k.flatten().tolist()]
    [1.0, 0.3679, 0.3679, 1.0]
    """
    if kernel_mul <= 1.0:
        raise ValueError(f"kernel_mul must be > 1; got {kernel_mul}")
    if int(kernel_num) < 1:
        raise ValueError(f"kernel_num must be >= 1; got {kernel_num}")
    d2 = _sq_distances(z)
    if bandwidth is None:
        total = len(z)
        base = d2.detach().sum() / max(total * total - total, 1)
        base = base.clamp_min(torch.finfo(z.dtype).tiny)
    else:
        if bandwidth <= 0:
            raise ValueError(f"bandwidth must be > 0; got {bandwidth}")
        base = torch.as_tensor(float(bandwidth), dtype=z.dtype, device=z.device)
    first = base / kernel_mul ** (int(kernel_num) // 2)
    kernel = torch.zeros_like(d2)
    for k in range(int(kernel_num)):
        kernel = kernel + torch.exp(-d2 / (first * kernel_mul**k))
    return kernel


def mmd2(
    source: Tensor,
    target: Tensor,
    kernel_mul: float = 2.0,
    kernel_num: int = 5,
    bandwidth: float | None = None,
) -> Tensor:
    """Multi-kernel MMD^2 with Gaussian kernels.

    Long et al., DAN, ICML 2015, https://proceedings.mlr.press/v37/long15.html.

    The biased (V-statistic) estimate of the squared maximum mean discrepancy under the
    sum of ``kernel_num`` Gaussian kernels whose bandwidths are ``bandwidth`` times
    ``kernel_mul^k`` for k centred on 0. Without ``bandwidth`` the mean pairwise squared
    distance of the pooled sample is used (detached). It is >= 0 and exactly 0 for equal
    samples.

    Parameters
    ----------
    source : Tensor, shape (n_source, d)
    target : Tensor, shape (n_target, d)
    kernel_mul : float
        Ratio between successive bandwidths (> 1).
    kernel_num : int
        Number of kernels (>= 1).
    bandwidth : float, optional
        Middle bandwidth (a squared length).

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    >>> float(mmd2(x, x)) == 0.0, bool(mmd2(x, x + 1) > 0)
    (True, True)
    """
    _check_features(source, target)
    n = len(source)
    kernel = gaussian_kernel(torch.cat([source, target]), kernel_mul, kernel_num, bandwidth)
    k_ss = kernel[:n, :n].mean()
    k_tt = kernel[n:, n:].mean()
    k_st = kernel[:n, n:].mean()
    return (k_ss + k_tt - 2.0 * k_st).clamp_min(0.0)


class MMD(AdaptationObjective):
    """Multi-kernel MMD loss of DAN.

    Long et al., ICML 2015, https://proceedings.mlr.press/v37/long15.html.

    See :func:`mmd2`; returns a scalar tensor. Labels, logits and ``coeff`` are ignored
    (weight the loss in your step function).

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> s, t = torch.randn(32, 4, generator=g), torch.randn(32, 4, generator=g) + 2
    >>> bool(MMD()(s, t) > MMD()(s, s))
    True
    """

    def __init__(
        self, kernel_mul: float = 2.0, kernel_num: int = 5, bandwidth: float | None = None
    ) -> None:
        super().__init__()
        self.kernel_mul = float(kernel_mul)
        self.kernel_num = int(kernel_num)
        self.bandwidth = bandwidth

    def forward(
        self,
        source: Tensor,
        target: Tensor,
        source_labels: Tensor | None = None,
        target_logits: Tensor | None = None,
        coeff: float = 1.0,
    ) -> Tensor:
        return mmd2(source, target, self.kernel_mul, self.kernel_num, self.bandwidth)


# ----------------------------------------------------------------------------- CORAL
def coral(source: Tensor, target: Tensor) -> Tensor:
    """Deep CORAL loss ||C_s - C_t||_F^2 / (4 d^2).

    Sun & Saenko, ECCV-W 2016, https://arxiv.org/abs/1607.01719.

    ``C_s``, ``C_t`` are the unbiased feature covariances of each domain; each needs at
    least two rows.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    >>> float(coral(x, x)) == 0.0, bool(coral(x, 3 * x) > 0)
    (True, True)
    """
    _check_features(source, target, min_rows=2)
    d = source.shape[1]

    def cov(x: Tensor) -> Tensor:
        xc = x - x.mean(dim=0, keepdim=True)
        return xc.T @ xc / (len(x) - 1)

    return ((cov(source) - cov(target)) ** 2).sum() / (4.0 * d * d)


class CORAL(AdaptationObjective):
    """Deep CORAL loss (Sun & Saenko, ECCV-W 2016, https://arxiv.org/abs/1607.01719).

    See :func:`coral`; returns a scalar tensor. Labels, logits and ``coeff`` are ignored.
    CORAL only sees second moments: a pure shift of the mean leaves it at 0.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    >>> bool(CORAL()(x, 2 * x) > 0)
    True
    """

    def forward(
        self,
        source: Tensor,
        target: Tensor,
        source_labels: Tensor | None = None,
        target_logits: Tensor | None = None,
        coeff: float = 1.0,
    ) -> Tensor:
        return coral(source, target)


# ------------------------------------------------------------------------------ DANN
class DANNOutput(NamedTuple):
    """What :class:`DANN` returns.

    ``loss``: the divergence estimate 2 log 2 - BCE that the features descend and the
    discriminator ascends; ``domain_loss``: the discriminator's binary cross-entropy, the
    *sum* of the two domains' mean cross-entropies (as the MSTN authors' code sums D_real and
    D_fake); ``domain_accuracy``: its accuracy (a float tensor).
    """

    loss: Tensor
    domain_loss: Tensor
    domain_accuracy: Tensor


def _adversarial(
    discriminator: nn.Module, source: Tensor, target: Tensor, coeff: float
) -> DANNOutput:
    feats = grad_reverse(torch.cat([source, target]), coeff)
    logits = grad_reverse(discriminator(feats), 1.0)
    n = len(source)
    z_s, z_t = logits[:n], logits[n:]
    # source has domain label 0, target 1; the two domains' mean losses are summed, as in
    # the MSTN authors' code (D_real + D_fake), so an adversarial weight of 0.1 means theirs
    bce = F.softplus(z_s).mean() + F.softplus(-z_t).mean()
    with torch.no_grad():
        acc = 0.5 * ((z_s < 0).float().mean() + (z_t > 0).float().mean())
    return DANNOutput(2 * _LOG2 - bce, bce.detach(), acc)


class DANN(AdaptationObjective):
    """Domain-adversarial objective of DANN.

    Ganin et al., JMLR 2016, https://jmlr.org/papers/v17/15-239.html.

    A :class:`~transferkit.adaptation.DomainDiscriminator` tells source features (label 0)
    from target features (label 1). The returned ``loss`` is 2 log 2 - BCE, with BCE the sum
    of the source and target mean cross-entropies (the MSTN authors' ``D_real + D_fake``):
    twice the discriminator's estimate of the Jensen-Shannon divergence between the two
    feature distributions (about 0 when they are equal, up to 2 log 2 when separable). Two
    gradient reversals make a single optimiser that *descends* ``task_loss + loss`` play the
    minimax game: the features descend the divergence with their gradient scaled by
    ``coeff`` (the reversal layer between features and discriminator), while the
    discriminator's own gradient is reversed, so it ascends the divergence, i.e. descends
    its cross-entropy. The gradients are exactly those of the usual
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


# ------------------------------------------------------------------------------ MSTN
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
    ``source_centroids`` and ``target_centroids`` (n_classes, d), differentiable;
    ``domain_accuracy`` of the discriminator.
    """

    loss: Tensor
    adversarial: Tensor
    semantic: Tensor
    source_centroids: Tensor
    target_centroids: Tensor
    domain_accuracy: Tensor


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
        return MSTNOutput(loss, adv.loss, semantic, c_s, c_t, adv.domain_accuracy)


# -------------------------------------------------------------------------- registry
Factory = Callable[..., AdaptationObjective]
ADAPTATIONS: Registry[Factory] = Registry("adaptation objective")


def register_adaptation(name: str) -> Callable[[Factory], Factory]:
    """Decorator adding an adaptation objective factory to the registry.

    The factory is called as ``f(in_features=..., n_classes=..., **kwargs)``.

    Registered objectives are enumerated by the tests and checked with
    :func:`transferkit.testing.check_adaptation_objective`.

    Examples
    --------
    >>> "dann" in list_adaptations()
    True
    """
    return ADAPTATIONS.decorator(name)


def create_adaptation(name: str, **kwargs: Any) -> AdaptationObjective:
    """Build a registered objective; ``in_features`` (the feature width) and ``n_classes``
    are required keywords, the rest go to the objective.

    Examples
    --------
    >>> type(create_adaptation("mstn", in_features=16, n_classes=10)).__name__
    'MSTN'
    """
    missing = [k for k in ("in_features", "n_classes") if k not in kwargs]
    if missing:
        raise TypeError(f"create_adaptation({name!r}, ...) needs {' and '.join(missing)}=")
    in_features, n_classes = kwargs.pop("in_features"), kwargs.pop("n_classes")
    if int(in_features) < 1 or int(n_classes) < 1:
        raise ValueError(
            f"in_features and n_classes must be >= 1; got {in_features} and {n_classes}"
        )
    return ADAPTATIONS.get(name)(in_features=int(in_features), n_classes=int(n_classes), **kwargs)


def list_adaptations() -> list[str]:
    """Names of the registered adaptation objectives."""
    return ADAPTATIONS.names()


@register_adaptation("mmd")
def _make_mmd(in_features: int, n_classes: int, **kwargs: object) -> AdaptationObjective:
    return MMD(**kwargs)  # type: ignore[arg-type]


@register_adaptation("coral")
def _make_coral(in_features: int, n_classes: int, **kwargs: object) -> AdaptationObjective:
    return CORAL(**kwargs)


@register_adaptation("dann")
def _make_dann(in_features: int, n_classes: int, **kwargs: object) -> AdaptationObjective:
    return DANN(in_features, **kwargs)  # type: ignore[arg-type]


@register_adaptation("mstn")
def _make_mstn(in_features: int, n_classes: int, **kwargs: object) -> AdaptationObjective:
    return MSTN(in_features, n_classes, **kwargs)  # type: ignore[arg-type]
