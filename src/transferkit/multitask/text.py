"""One input, several targets: a :class:`~transferkit.multitask.SharedTrunk` over a text
encoder (sentence tasks and per-token tagging together) or over feature columns.

The survey's own multi-task example (Ruder 2017) is one network trained for a sentence's
class and its named entities at once. :func:`text_multitask` builds it from any text
backbone (:mod:`transferkit.nets.text`): the trunk is the encoder up to its last layer
and yields every token's state; a sentence task's head mean-pools the states of the text's
tokens (the encoder's own pooling) and applies dropout and a linear layer; a tagging
task's head applies dropout and a linear layer to every token (loss ``token-ce``). The
last shared layer, whose gradient norms GradNorm balances, is the trunk's last linear
layer (the last transformer layer's output projection). :func:`features_multitask` is the
same over numeric feature columns, with an MLP trunk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from .model import SharedTrunk

__all__ = ["TASK_KINDS", "TaskHead", "entity_f1", "features_multitask", "tag_counts",
           "text_multitask"]

TASK_KINDS = {"class": "ce", "regression": "mse", "tags": "token-ce"}
"""A task's kind -> its loss (:data:`~transferkit.multitask.model.LOSS_KINDS`)."""


@dataclass(frozen=True)
class TaskHead:
    """What one task predicts: its ``kind`` (``class``, ``regression`` or ``tags``) and the
    number of ``outputs`` (classes, tags, or 1 for a regression).

    Examples
    --------
    >>> TaskHead("tags", 9)
    TaskHead(kind='tags', outputs=9)
    >>> TaskHead("spans", 2)
    Traceback (most recent call last):
    ...
    ValueError: a task's kind is one of class, regression, tags; got 'spans'
    """

    kind: str
    outputs: int

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"a task's kind is one of {', '.join(TASK_KINDS)}; got "
                             f"{self.kind!r}")
        if self.outputs < 1:
            raise ValueError(f"a task needs >= 1 output; got {self.outputs}")


class _TokenTrunk(nn.Module):
    """The encoder without its pooling: token ids -> (states, keep)."""

    def __init__(self, encoder: nn.Sequential) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        states, keep, _ = self.encoder(ids)
        return states, keep


class _SentenceHead(nn.Module):
    def __init__(self, hidden: int, outputs: int, dropout: float, squeeze: bool) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, outputs)
        self.squeeze = squeeze

    def forward(self, z: tuple[Tensor, Tensor]) -> Tensor:
        states, keep = z
        w = keep.unsqueeze(-1).to(states.dtype)
        pooled = (states * w).sum(1) / w.sum(1).clamp_min(1.0)
        out = self.linear(self.dropout(pooled))
        return out.squeeze(-1) if self.squeeze else out


class _TokenHead(nn.Module):
    def __init__(self, hidden: int, outputs: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, outputs)

    def forward(self, z: tuple[Tensor, Tensor]) -> Tensor:
        return self.linear(self.dropout(z[0]))


def tag_counts(pred: Tensor, gold: Tensor, outside: int = 0) -> dict[str, int]:
    """Counts over the tagged tokens (``gold >= 0``; ``pred`` cut to ``gold``'s shape by the
    caller): ``right`` and ``total`` for token accuracy, and true positives, false positives
    and false negatives of the entity tags (every tag but ``outside``) for their micro F1
    (:func:`entity_f1`).

    Examples
    --------
    >>> import torch
    >>> counts = tag_counts(torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 1, -1]))
    >>> counts, round(entity_f1(counts), 3)
    ({'right': 2, 'total': 3, 'tp': 1, 'fp': 1, 'fn': 1}, 0.5)
    """
    ok = gold >= 0
    p, g = pred[ok], gold[ok]
    return {"right": int((p == g).sum()), "total": int(ok.sum()),
            "tp": int(((p == g) & (g != outside)).sum()),
            "fp": int(((p != g) & (p != outside)).sum()),
            "fn": int(((p != g) & (g != outside)).sum())}


def entity_f1(counts: Mapping[str, int], empty: float = math.nan) -> float:
    """Micro F1 of the entity tags from :func:`tag_counts` (``empty`` when there is no
    entity in either the predictions or the gold tags).

    Examples
    --------
    >>> entity_f1({"tp": 3, "fp": 1, "fn": 2})
    0.6666666666666666
    >>> entity_f1({"tp": 0, "fp": 0, "fn": 0}, empty=0.0)
    0.0
    """
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else empty


def _last_linear(trunk: nn.Module) -> str:
    names = [n for n, m in trunk.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ValueError("the trunk has no linear layer to balance gradients on")
    return names[-1]


def text_multitask(net: Any, tasks: Mapping[str, TaskHead], dropout: float = 0.1) -> SharedTrunk:
    """A shared text encoder with one head per task (see the module docstring).

    ``net`` is a text backbone (``features`` = embeddings, layers, pooling); its pooling
    block and head are not used.

    Examples
    --------
    >>> from transferkit.nets import create_backbone
    >>> net = create_backbone("minilm-l6", max_length=16)
    >>> model = text_multitask(net, {"sentiment": TaskHead("class", 2),
    ...                              "entities": TaskHead("tags", 5)})
    >>> out = model(net.input_spec.preprocess(["Ann loved Paris"]))
    >>> tuple(out["sentiment"].shape), tuple(out["entities"].shape)  # [CLS] ann loved paris [SEP]
    ((1, 2), (1, 5, 5))
    """
    trunk = _TokenTrunk(net.features[:-1])
    hidden = int(net.feature_dim)
    heads: dict[str, nn.Module] = {
        name: (_TokenHead(hidden, t.outputs, dropout) if t.kind == "tags" else
               _SentenceHead(hidden, t.outputs, dropout, squeeze=t.kind == "regression"))
        for name, t in tasks.items()}
    model = SharedTrunk(trunk, heads, {n: TASK_KINDS[t.kind] for n, t in tasks.items()},
                        shared_layer=_last_linear(trunk))
    model.input_spec = net.input_spec
    return model


def features_multitask(in_features: int, tasks: Mapping[str, TaskHead],
                       hidden: Sequence[int] = (128, 128), dropout: float = 0.1) -> SharedTrunk:
    """An MLP trunk over ``in_features`` numeric columns with one head per task (tags are
    for texts and are refused here).

    Examples
    --------
    >>> import torch
    >>> model = features_multitask(4, {"kind": TaskHead("class", 3),
    ...                                "size": TaskHead("regression", 1)}, hidden=(8,))
    >>> {k: tuple(v.shape) for k, v in model(torch.randn(2, 4)).items()}
    {'kind': (2, 3), 'size': (2,)}
    """
    tagged = [n for n, t in tasks.items() if t.kind == "tags"]
    if tagged:
        raise ValueError(f"task(s) {tagged} tag tokens; feature columns have no tokens")
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    trunk = nn.Sequential(*layers, nn.Dropout(dropout))
    heads: dict[str, nn.Module] = {}
    for name, t in tasks.items():
        linear = nn.Linear(width, t.outputs)
        heads[name] = nn.Sequential(linear, nn.Flatten(0)) if t.kind == "regression" \
            else linear
    return SharedTrunk(trunk, heads, {n: TASK_KINDS[t.kind] for n, t in tasks.items()})
