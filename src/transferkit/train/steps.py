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

    Examples
    --------
    >>> logits, labels = torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 0])
    >>> plain = weighted_cross_entropy(logits, labels)
    >>> bool(torch.isclose(plain, weighted_cross_entropy(logits, labels, torch.ones(2))))
    True
    >>> round(float(weighted_cross_entropy(logits, labels, torch.tensor([2.0, 0.0]))), 4)
    0.1269
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

    Examples
    --------
    >>> from transferkit.train import Phase, Stream, Trainer
    >>> net = nn.Linear(3, 2)
    >>> x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    >>> phase = Phase(classification_step(regularizer=lambda m: 0.01 * m.weight.pow(2).sum()),
    ...               torch.optim.SGD(net.parameters(), lr=0.1),
    ...               {"train": Stream(x, y, batch_size=10, seed=0)})
    >>> hist = Trainer(net, phase, 4, seed=0, progress=False).fit()
    >>> sorted(k for k in hist.records[-1] if k.startswith("loss/"))
    ['loss/ce', 'loss/reg']
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
    """Model outputs for ``x`` in eval mode, in batches, on the model's device.

    Examples
    --------
    >>> predict_logits(nn.Linear(3, 2), torch.randn(5, 3), batch_size=2).shape
    torch.Size([5, 2])
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [model(x[i : i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 2048) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``.

    Examples
    --------
    >>> net = nn.Linear(1, 2)
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[-1.0], [1.0]]))
    ...     _ = net.bias.zero_()
    >>> round(accuracy(net, torch.tensor([[-2.0], [3.0], [1.0]]), torch.tensor([0, 1, 0])), 3)
    0.667
    """
    if len(x) == 0:
        raise ValueError("accuracy of an empty set is undefined")
    pred = predict_logits(model, x, batch_size).argmax(dim=1).cpu()
    return float((pred == y.cpu()).float().mean())
