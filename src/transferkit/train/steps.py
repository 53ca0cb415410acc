"""Ready-made step functions and evaluation helpers for classifiers."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .interface import Batches, StepContext, StepFn

__all__ = ["accuracy", "classification_step", "predict_logits", "weighted_cross_entropy"]


def weighted_cross_entropy(logits: Tensor, labels: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean cross-entropy, optionally weighted per example (sum(w_i l_i) / n).

    Dividing by n, not by sum(w), keeps importance-weighted risk unbiased (label-shift
    correction) and makes weights of 1 reproduce the plain mean.
    """
    per_example = F.cross_entropy(logits, labels, reduction="none")
    if weights is None:
        return per_example.mean()
    if weights.shape != per_example.shape:
        raise ValueError(
            f"weights have shape {tuple(weights.shape)}; expected {tuple(per_example.shape)}"
        )
    return (weights * per_example).mean()


def classification_step(
    stream: str = "train", regularizer: Callable[[nn.Module], Tensor] | None = None
) -> StepFn:
    """Cross-entropy on stream ``stream`` (plus ``regularizer(model)`` as loss ``"reg"``).

    The stream's tensors are ``(x, y)`` or ``(x, y, w)`` with per-example weights ``w``.
    """

    def step(model: nn.Module, batches: Batches, ctx: StepContext) -> Mapping[str, Tensor]:
        batch = batches[stream]
        x, y = batch[0], batch[1]
        w = batch[2] if len(batch) > 2 else None
        losses = {"ce": weighted_cross_entropy(model(x), y, w)}
        if regularizer is not None:
            losses["reg"] = regularizer(model)
        return losses

    return step


@torch.no_grad()
def predict_logits(model: nn.Module, x: Tensor, batch_size: int = 2048) -> Tensor:
    """Model outputs for ``x`` in eval mode, in batches, on the model's device."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [model(x[i : i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 2048) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``."""
    if len(x) == 0:
        raise ValueError("accuracy of an empty set is undefined")
    pred = predict_logits(model, x, batch_size).argmax(dim=1).cpu()
    return float((pred == y.cpu()).float().mean())
