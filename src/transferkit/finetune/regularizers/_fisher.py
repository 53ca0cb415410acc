"""The diagonal Fisher information of a model, for L2-SP-Fisher."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..._errors import shape_errors
from ._base import penalized_parameters


def _batches(
    data: Tensor | Iterable[Any], labels: Tensor | None, batch_size: int
) -> Iterator[tuple[Tensor, Tensor | None]]:
    if isinstance(data, Tensor):
        if labels is not None and len(labels) != len(data):
            raise ValueError(f"labels has {len(labels)} rows; data has {len(data)}")
        for i in range(0, len(data), batch_size):
            yield data[i : i + batch_size], None if labels is None else labels[i : i + batch_size]
        return
    if labels is not None:
        raise ValueError("labels= goes with a data tensor; an iterable of batches carries its own")
    for batch in data:
        if isinstance(batch, Tensor):
            yield batch, None
        elif isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
            y = batch[1] if len(batch) > 1 and isinstance(batch[1], Tensor) else None
            yield batch[0], y
        else:
            raise TypeError(
                f"each batch must be a tensor or a tuple (x, y, ...); got {type(batch).__name__}"
            )


def fisher_diagonal(
    model: nn.Module,
    data: Tensor | Iterable[Any],
    labels: Tensor | None = None,
    *,
    mode: str = "expected",
    names: Iterable[str] | None = None,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    log_prob: Callable[[Tensor], Tensor] | None = None,
) -> dict[str, Tensor]:
    """Diagonal Fisher information of a classifier on (source) data, for :class:`L2SPFisher`.

    Li, Grandvalet, Davoine, ICML 2018, https://arxiv.org/abs/1802.01483 (section 3, L2-SP-Fisher).

    ``F_j = 1/m sum_i E_{y ~ p(y | x_i)} [ (d/dw_j log p(y | x_i; w0))^2 ]``: the mean over
    the ``m`` examples of the squared per-example gradient of the log-likelihood at the
    current (pretrained) weights. Per-example gradients are computed with ``torch.func``
    (``vmap`` of ``grad`` over a functional call of ``model``), in eval mode (dropout off,
    batch-norm running statistics), without changing the model.

    Parameters
    ----------
    model : nn.Module
        The source model, with its source head; ``model(x)`` returns class scores (logits)
        of shape (batch, n_classes).
    data : Tensor or iterable of batches
        Source inputs ``(m, ...)``, or an iterable (e.g. a ``DataLoader``) of tensors or of
        tuples ``(x, y, ...)``.
    labels : Tensor, optional
        ``(m,)`` int64 labels for ``mode="empirical"`` when ``data`` is a tensor.
    mode : {"expected", "sampled", "empirical"}
        How ``y`` is drawn: ``"expected"`` sums over every class weighted by the model's
        probabilities (the true Fisher, one gradient per class and example; the paper's
        estimator); ``"sampled"`` draws one ``y ~ p(y | x)`` per example (unbiased, cheaper
        with many classes; uses ``generator``); ``"empirical"`` uses the data's labels
        (the "empirical Fisher", a different quantity).
    names : iterable of str, optional
        Parameters to return; by default :func:`penalized_parameters` of ``model``.
    batch_size : int
        Examples per vectorised batch when ``data`` is a tensor.
    generator : torch.Generator, optional
        For ``mode="sampled"`` (on the data's device).
    log_prob : callable, optional
        Turns the model's output into log-probabilities; ``log_softmax`` by default.

    Returns
    -------
    dict of str -> Tensor
        One tensor per parameter, of the parameter's shape, non-negative.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from transferkit.train import seeded
    >>> with seeded(0):
    ...     net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    >>> fisher = fisher_diagonal(net, x)
    >>> sorted(fisher), fisher["0.weight"].shape, bool((fisher["2.weight"] >= 0).all())
    (['0.weight', '2.weight'], torch.Size([8, 4]), True)
    """
    from torch.func import functional_call, grad, vmap

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module; got {type(model).__name__}")
    if mode not in ("expected", "sampled", "empirical"):
        raise ValueError(f"mode must be 'expected', 'sampled' or 'empirical'; got {mode!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    named = dict(model.named_parameters())
    wanted = penalized_parameters(model) if names is None else list(names)
    unknown = [n for n in wanted if n not in named]
    if unknown:
        raise ValueError(f"names {unknown} are not parameters of {type(model).__name__}")
    if not wanted:
        raise ValueError("no parameter to compute the Fisher of")
    to_logp = log_prob if log_prob is not None else (lambda out: F.log_softmax(out, dim=-1))

    params = {n: p.detach() for n, p in named.items()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    targets = {n: params[n] for n in wanted}
    others = {n: p for n, p in params.items() if n not in targets}

    def logp_all(tp: dict[str, Tensor], x: Tensor) -> Tensor:
        out = functional_call(model, ({**others, **tp}, buffers), (x.unsqueeze(0),))
        return to_logp(out)[0]

    def logp_one(tp: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return logp_all(tp, x).gather(0, y.reshape(1)).squeeze(0)

    per_example = vmap(grad(logp_one), in_dims=(None, 0, 0))
    total = {n: torch.zeros_like(p) for n, p in targets.items()}

    def accumulate(x: Tensor, y: Tensor | None) -> None:
        pairs: list[tuple[Tensor, Tensor | None]]
        if mode == "empirical":
            if y is None:
                raise ValueError("mode='empirical' needs labels (labels= or (x, y) batches)")
            pairs = [(y.to(x.device).long(), None)]
        else:
            with torch.no_grad():
                probs = to_logp(functional_call(model, (params, buffers), (x,))).exp()
            if mode == "sampled":
                drawn = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                pairs = [(drawn, None)]
            else:
                pairs = [
                    (torch.full((len(x),), c, dtype=torch.long, device=x.device), probs[:, c])
                    for c in range(probs.shape[1])
                ]
        for yy, weight in pairs:
            grads = per_example(targets, x, yy)
            for n, g in grads.items():
                sq = g.square()
                if weight is not None:
                    sq = sq * weight.reshape((-1,) + (1,) * (sq.dim() - 1))
                total[n] += sq.sum(0)

    count = 0
    was_training = model.training
    model.eval()
    try:
        for x, y in _batches(data, labels, batch_size):
            if len(x) == 0:
                continue
            labelled = "" if y is None else f" with labels of shape {tuple(y.shape)}"
            with shape_errors(f"fisher_diagonal could not evaluate the model on a batch of "
                              f"shape {tuple(x.shape)}{labelled}"):
                accumulate(x, y)
            count += len(x)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("data has no examples")
    return {n: t / count for n, t in total.items()}
