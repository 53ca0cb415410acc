"""The registry of fine-tuning methods, their alpha grid and the rule that picks alpha.

A *fine-tuning method* is what ``transferkit finetune --method`` offers and
:func:`~transferkit.finetune.prepare_finetune` builds: a registered penalty
(:mod:`transferkit.finetune.regularizers`) applied to every trainable pretrained weight,
or, with ``frozen_features``, a linear probe whose ``alpha`` is the new head's L2.
Registering a regularizer registers the method of the same name (``register_regularizer``
takes its ``alpha_scale``); ``finetune`` (the paper's ``L2`` baseline) and
``linear-probe`` are registered here. Everything that lists methods (the CLI's choices,
the workflows' checks, the claims) reads this registry.

``alpha="auto"`` trains every alpha of :func:`alpha_grid` and keeps the one
:func:`select_alpha` picks on validation data: the best accuracy, then the lower
cross-entropy, then the smaller alpha (the rule of Li et al.'s model selection on a
validation split, used by the workflows and the ``l2sp`` claims alike).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .._registry import Registry

__all__ = [
    "ALPHA_GRID",
    "FinetuneMethod",
    "alpha_grid",
    "create_finetune_method",
    "list_finetune_methods",
    "register_finetune_method",
    "halving_cost",
    "halving_rungs",
    "rank_alphas",
    "search_alpha",
    "select_alpha",
]

ALPHA_GRID = (0.001, 0.01, 0.1, 1.0)
"""The alpha grid of ``--alpha auto`` (Li et al. search 10^-3 .. 1 for L2-SP's alpha)."""


@dataclass(frozen=True)
class FinetuneMethod:
    """What the workflows need to know of a fine-tuning method.

    Parameters
    ----------
    name : str
        The name it is offered under.
    penalty : str
        The registered regularizer it trains with.
    alpha_scale : float
        Its alpha grid is ``ALPHA_GRID * alpha_scale`` (0.01 for the penalties that are
        not quadratic, L1-SP and Group-Lasso-SP, whose useful strengths are smaller).
    frozen_features : bool
        Every feature block frozen and only the new head trained, with L2 of strength
        ``alpha`` on the head (a linear probe).

    Examples
    --------
    >>> create_finetune_method("l1sp").alpha_scale
    0.01
    """

    name: str
    penalty: str
    alpha_scale: float = 1.0
    frozen_features: bool = False


FINETUNE_METHODS: Registry[FinetuneMethod] = Registry("fine-tuning method")


def register_finetune_method(
    name: str, *, penalty: str, alpha_scale: float = 1.0, frozen_features: bool = False,
) -> FinetuneMethod:
    """Offer a fine-tuning method under ``name`` (see :class:`FinetuneMethod`).

    A regularizer registered with :func:`~transferkit.finetune.register_regularizer` is
    offered under its own name without this call.

    Examples
    --------
    >>> m = register_finetune_method("l2-probe-demo", penalty="l2", frozen_features=True)
    >>> "l2-probe-demo" in list_finetune_methods()
    True
    >>> FINETUNE_METHODS.unregister("l2-probe-demo")
    """
    if not alpha_scale > 0:
        raise ValueError(f"alpha_scale must be > 0; got {alpha_scale}")
    return FINETUNE_METHODS.register(
        name, FinetuneMethod(name, penalty, float(alpha_scale), bool(frozen_features))
    )


def create_finetune_method(name: str) -> FinetuneMethod:
    """The method registered as ``name``; a ``KeyError`` lists the known ones.

    Examples
    --------
    >>> create_finetune_method("finetune").penalty
    'l2'
    """
    return FINETUNE_METHODS.get(name)


def list_finetune_methods() -> list[str]:
    """Names of the registered fine-tuning methods.

    Examples
    --------
    >>> {"linear-probe", "finetune", "l2sp"} <= set(list_finetune_methods())
    True
    """
    return FINETUNE_METHODS.names()


def alpha_grid(method: str, base: Sequence[float] = ALPHA_GRID) -> tuple[float, ...]:
    """The alphas ``--alpha auto`` tries for ``method``: ``base`` times its ``alpha_scale``.

    Examples
    --------
    >>> alpha_grid("l2sp")
    (0.001, 0.01, 0.1, 1.0)
    >>> alpha_grid("l1sp", base=(0.1, 1.0))
    (0.001, 0.01)
    """
    scale = create_finetune_method(method).alpha_scale
    return tuple(a * scale for a in base)


def rank_alphas(val_accuracy: Sequence[float], val_cross_entropy: Sequence[float]) -> list[int]:
    """Indices of the alphas, best first: higher validation accuracy, then lower
    cross-entropy, then the earlier (smaller) alpha.

    Examples
    --------
    >>> rank_alphas([0.8, 0.9, 0.9], [0.5, 0.4, 0.3])
    [2, 1, 0]
    """
    if len(val_accuracy) != len(val_cross_entropy) or not val_accuracy:
        raise ValueError("ranking alphas needs one accuracy and one cross-entropy per alpha; "
                         f"got {len(val_accuracy)} and {len(val_cross_entropy)}")
    return sorted(range(len(val_accuracy)),
                  key=lambda i: (val_accuracy[i], -val_cross_entropy[i], -i), reverse=True)


def select_alpha(val_accuracy: Sequence[float], val_cross_entropy: Sequence[float]) -> int:
    """Index of the alpha to keep: the first of :func:`rank_alphas`.

    Examples
    --------
    >>> select_alpha([0.8, 0.9, 0.9], [0.5, 0.4, 0.3])
    2
    >>> select_alpha([0.9, 0.9], [0.3, 0.3])
    0
    """
    return rank_alphas(val_accuracy, val_cross_entropy)[0]


def halving_rungs(n_alphas: int, epochs: int) -> list[int]:
    """The epochs at which successive halving compares the alphas still in the race.

    All ``n_alphas`` train to the first rung, the better half (rounded up) of them to the
    next, and so on, halving the budget's remaining share each time; the last rung is
    ``epochs`` (Jamieson & Talwalkar, AISTATS 2016; Li et al.'s Hyperband, JMLR 2018).
    With 4 alphas and 12 epochs: ``[3, 6, 12]`` (4 x 3 + 2 x 3 + 1 x 6 = 24 epochs of
    training instead of the full grid's 48). A budget too short to halve gives
    ``[epochs]``: every alpha trains to the end, as the full grid.

    Examples
    --------
    >>> halving_rungs(4, 12), halving_rungs(4, 2), halving_rungs(1, 5), halving_rungs(5, 16)
    ([3, 6, 12], [1, 2], [5], [2, 4, 8, 16])
    """
    if n_alphas < 1 or epochs < 1:
        raise ValueError(f"need >= 1 alpha and >= 1 epoch; got {n_alphas} and {epochs}")
    rounds = math.ceil(math.log2(n_alphas)) if n_alphas > 1 else 0
    return sorted({max(1, epochs >> (rounds - k)) for k in range(rounds)} | {epochs})


def halving_cost(n_alphas: int, epochs: int) -> int:
    """Epochs of training successive halving spends on ``n_alphas`` alphas.

    >>> halving_cost(4, 12), halving_cost(4, 1)
    (24, 4)
    """
    total, alive, done = 0, n_alphas, 0
    for rung in halving_rungs(n_alphas, epochs):
        total += alive * (rung - done)
        done = rung
        alive = math.ceil(alive / 2) if rung < epochs else alive
    return total


R = TypeVar("R")


def search_alpha(
    alphas: Sequence[float], epochs: int, train: Callable[[float, int], R],
    scores: Callable[[R], tuple[float, float]], halving: bool = False,
    on_rung: Callable[[int, list[int], list[float]], None] | None = None,
) -> tuple[dict[float, R], float]:
    """Choose alpha on validation: every alpha trained to the end (the grid), or with
    ``halving`` by successive halving over :func:`halving_rungs` (at each rung the better
    half by :func:`rank_alphas` goes on).

    ``train(alpha, epochs)`` trains (or continues) alpha's run to ``epochs`` and returns its
    result; ``scores(result)`` gives its validation ``(accuracy, cross_entropy)``;
    ``on_rung(i, rungs, alive)`` is called as rung ``i`` starts (to say so). Returns
    each alpha's last result and the chosen alpha: the best by :func:`rank_alphas` among
    those trained to the end.

    Examples
    --------
    >>> runs, best = search_alpha([0.1, 1.0], 4, lambda a, e: (e * a, 0.0), lambda r: r,
    ...                           halving=True)
    >>> runs, best
    ({0.1: (0.2, 0.0), 1.0: (4.0, 0.0)}, 1.0)
    """
    rungs = halving_rungs(len(alphas), epochs) if halving else [epochs]
    latest: dict[float, R] = {}
    alive = list(alphas)
    order: list[int] = []
    for i, rung in enumerate(rungs):
        if on_rung is not None:
            on_rung(i, rungs, alive)
        for a in alive:
            latest[a] = train(a, rung)
        order = rank_alphas(*zip(*(scores(latest[a]) for a in alive), strict=True))
        if rung < epochs:
            keep = {alive[j] for j in order[: math.ceil(len(alive) / 2)]}
            alive = [a for a in alive if a in keep]
    return {a: latest[a] for a in alphas}, alive[order[0]]


register_finetune_method("linear-probe", penalty="l2", frozen_features=True)
