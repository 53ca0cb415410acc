"""A curriculum sampler for the training loop: the easiest fraction first, class-balanced.

Given a difficulty score per training example (higher = easier, e.g. a teacher's
probability of the true class) the examples are ordered easy to hard and interleaved class
by class (the authors' ``balance_order``: the easiest example of every class, then the
second easiest of every class, ...), so every prefix is class-balanced. At step ``t`` a
batch is drawn uniformly at random, without replacement, from the first
``ceil(n * pacing(t))`` examples of that order (as the authors' exponent data function
does). Controls, with the same pacing:

- ``order="random"``: a random order (then balanced) instead of easy to hard;
- ``order="anti"``: hardest first (the reversed order, then balanced).

Batches are a pure function of ``(seed, step)``, so a resumed run sees the same ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..train.interface import derived_generator

__all__ = ["ORDERS", "CurriculumSampler", "balanced_order"]

ORDERS = ("curriculum", "random", "anti")


def balanced_order(order: Any, labels: Any) -> np.ndarray:
    """Interleave ``order`` class by class: the k-th of every class (in ``order``) comes
    before the (k+1)-th of any; within a round, examples keep their order's positions.

    Examples
    --------
    >>> balanced_order([0, 1, 2, 3, 4, 5], [0, 0, 0, 1, 1, 1]).tolist()
    [0, 3, 1, 4, 2, 5]
    """
    order = np.asarray(order, dtype=np.int64)
    labels = np.asarray(labels)
    if order.ndim != 1 or labels.ndim != 1:
        raise ValueError(f"order and labels must be 1-d; got shapes {order.shape} and "
                         f"{labels.shape}")
    if len(order) and (order.min() < 0 or order.max() >= len(labels)):
        raise ValueError(f"order holds indices {order.min()}..{order.max()}; labels has "
                         f"{len(labels)} entries (indices 0..{len(labels) - 1})")
    ranks = np.empty(len(order), dtype=np.int64)  # position within its class
    seen: dict[Any, int] = {}
    for pos, i in enumerate(order):
        c = labels[i].item() if hasattr(labels[i], "item") else labels[i]
        ranks[pos] = seen.get(c, 0)
        seen[c] = ranks[pos] + 1
    # sort by (round, position in the order)
    return order[np.lexsort((np.arange(len(order)), ranks))]


class CurriculumSampler:
    """Batches from the easiest ``pacing(step)`` fraction of the training set.

    Parameters
    ----------
    scores : array (n,)
        Easiness of every training example (higher = easier), e.g. from
        :class:`transferkit.curriculum.TransferScorer`; ties keep their index order.
    labels : array (n,)
        Class of every example, for the class balancing.
    batch_size : int
    pacing : callable(step) -> fraction in (0, 1]
        E.g. ``functools.partial(exponential_pacing, start=0.04, multiplier=1.9,
        step_length=100)``.
    order : {"curriculum", "random", "anti"}
    balance : bool
        Interleave classes (default, as the authors do).
    seed : int

    Examples
    --------
    >>> from functools import partial
    >>> from transferkit.curriculum import exponential_pacing
    >>> s = CurriculumSampler(np.arange(100.0)[::-1], np.arange(100) % 2, batch_size=4,
    ...                       pacing=partial(exponential_pacing, start=0.1), seed=0)
    >>> bool((s.indices(0) < 10).all())   # the ten easiest examples first
    True
    """

    def __init__(self, scores: Any, labels: Any, batch_size: int,
                 pacing: Callable[[int], float], order: str = "curriculum",
                 balance: bool = True, seed: int = 0) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        labels = np.asarray(labels)
        if scores.ndim != 1 or len(scores) != len(labels) or len(scores) == 0:
            raise ValueError(f"scores and labels must be 1-d of the same length; got "
                             f"{scores.shape} and {labels.shape}")
        if not np.isfinite(scores).all():
            raise ValueError("scores has NaN or infinite values")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}; got {order!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        if not callable(pacing):
            raise TypeError("pacing must be a callable(step) -> fraction")
        easy_first = np.argsort(-scores, kind="stable")
        if order == "anti":
            ranked = easy_first[::-1].copy()
        elif order == "random":
            ranked = np.random.default_rng(seed).permutation(len(scores))
        else:
            ranked = easy_first
        self.order = balanced_order(ranked, labels) if balance else ranked
        self.batch_size, self.pacing, self.seed = int(batch_size), pacing, int(seed)

    def usable(self, step: int) -> int:
        """How many examples (a prefix of ``self.order``) step ``step`` may draw from."""
        fraction = float(self.pacing(step))
        if not 0 < fraction <= 1:
            raise ValueError(f"pacing({step}) = {fraction}; a pacing function must return a "
                             "fraction in (0, 1]")
        return max(1, math.ceil(len(self.order) * fraction))

    def indices(self, draw: int) -> Tensor:
        """The rows of batch ``draw``."""
        size = self.usable(draw)
        g = derived_generator(self.seed, draw)
        k = min(self.batch_size, size)
        pick = torch.randperm(size, generator=g)[:k]
        return torch.as_tensor(self.order[pick.numpy()], dtype=torch.long)
