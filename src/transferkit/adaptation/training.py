"""Plugging an adaptation objective into the one training loop.

:class:`AdaptationModel` bundles a network with ``features`` and ``head`` (any
:class:`~transferkit.nets.SplitNet`, or your own module with those two attributes) and an
objective, so that the loop's optimiser, checkpoint and device handling cover the
discriminator and MSTN's centroid buffers too. :func:`adaptation_step` is the step
function for :func:`transferkit.train.fit` with two streams, ``"source": (x, y)`` and
``"target": (x,)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..train.interface import Batches, StepContext, StepFn
from .objectives import AdaptationObjective, adaptation_loss
from .reversal import grl_lambda

__all__ = ["AdaptationModel", "adaptation_step"]


class AdaptationModel(nn.Module):
    """A network ``head(features(x))`` trained with an adaptation objective on its features.

    Parameters
    ----------
    net : nn.Module
        Must have ``features`` (x -> (n, d)) and ``head`` ((n, d) -> logits) attributes.
    objective : AdaptationObjective, optional
        None trains on the source only.

    Examples
    --------
    >>> import torch
    >>> from transferkit.nets import MLP
    >>> from transferkit.adaptation import MMD
    >>> model = AdaptationModel(MLP((1, 8, 8), 10, hidden=(16,)), MMD())
    >>> model(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, net: nn.Module, objective: AdaptationObjective | None = None) -> None:
        super().__init__()
        for attr in ("features", "head"):
            if not isinstance(getattr(net, attr, None), nn.Module):
                raise TypeError(
                    f"net needs a `{attr}` module (features -> head split); "
                    f"{type(net).__name__} has none"
                )
        self.net = net
        self.objective = objective

    @property
    def features(self) -> nn.Module:
        return self.net.features  # type: ignore[return-value]

    @property
    def head(self) -> nn.Module:
        return self.net.head  # type: ignore[return-value]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def adaptation_step(
    source: str = "source",
    target: str = "target",
    weight: float = 1.0,
    schedule: Callable[[float], float] = grl_lambda,
) -> StepFn:
    """Step function of unsupervised domain adaptation.

    DANN-style training, Ganin et al., JMLR 2016, https://jmlr.org/papers/v17/15-239.html.

    Per step: cross-entropy on the labelled source batch plus ``weight`` times the
    model's objective on the features of the source and the unlabelled target batch.
    ``lam = schedule(ctx.progress)`` (DANN's 2/(1+exp(-10p))-1 by default) is passed to
    the objective as ``coeff`` when it applies it itself (``uses_coeff``: DANN, MSTN);
    otherwise (MMD, CORAL) the loss is multiplied by ``lam``. Source and target go through
    the feature extractor in one batch; the head runs on the target rows only for an
    objective that reads their logits (``needs_logits``: MSTN's pseudo-labels). With
    ``model.objective`` None only the source is used (the source-only baseline).

    Returns losses ``{"ce": ..., "adapt": ...}`` for the loop to sum.

    Examples
    --------
    >>> import torch
    >>> from transferkit.nets import MLP
    >>> from transferkit.train import Stream, fit
    >>> from transferkit.adaptation import DANN
    >>> g = torch.Generator().manual_seed(0)
    >>> xs, ys = torch.rand(32, 1, 4, 4, generator=g), torch.arange(32) % 2
    >>> xt = torch.rand(32, 1, 4, 4, generator=g)
    >>> model = AdaptationModel(MLP((1, 4, 4), 2, hidden=(8,)), DANN(8, hidden=(8,)))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.01)
    >>> streams = {"source": Stream(xs, ys, batch_size=8), "target": Stream(xt, batch_size=8)}
    >>> hist = fit(model, adaptation_step(), streams, opt, max_steps=5, seed=0)
    >>> sorted(k for k in hist.records[-1] if k.startswith("loss/"))
    ['loss/adapt', 'loss/ce']
    """
    if weight < 0:
        raise ValueError(f"weight must be >= 0; got {weight}")

    def step(model: nn.Module, batches: Batches, ctx: StepContext) -> Mapping[str, Tensor]:
        if not isinstance(model, AdaptationModel):
            raise TypeError(
                f"adaptation_step needs an AdaptationModel; got {type(model).__name__}"
            )
        xs, ys = batches[source][0], batches[source][1]
        objective = model.objective
        if objective is None:
            return {"ce": F.cross_entropy(model(xs), ys)}
        xt = batches[target][0]
        n = len(xs)
        feats = model.features(torch.cat([xs, xt]))
        # the head sees the target rows only for an objective that reads their logits
        logits = model.head(feats if objective.needs_logits else feats[:n])
        lam = float(schedule(ctx.progress))
        out = objective(feats[:n], feats[n:], ys,
                        logits[n:] if objective.needs_logits else None, coeff=lam)
        scale = weight if objective.uses_coeff else weight * lam
        return {"ce": F.cross_entropy(logits[:n], ys), "adapt": scale * adaptation_loss(out)}

    return step
