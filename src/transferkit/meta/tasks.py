"""Tasks for meta-learning: support/query splits, and two samplers.

A task is a :class:`Task` of four tensors, the support set (what adaptation sees) and the
query set (what the adapted model is scored on). A sampler draws tasks from a
``torch.Generator``; :meth:`TaskSampler.meta_batch` stacks several tasks along a new first
dimension, the shape :class:`~transferkit.meta.MAML` and :class:`~transferkit.meta.Reptile`
take, and the shape a :class:`transferkit.train.GeneratedStream` serves to the loop::

    GeneratedStream(lambda g: sampler.meta_batch(25, g), seed=0)

- :class:`SinusoidTasks`: the MAML paper's regression tasks (Finn et al. 2017, section 5.1).
- :class:`FewShotTasks`: N-way K-shot classification over the classes of labelled images
  (or any rows), with the classes relabelled 0..N-1 at random in every task.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

__all__ = ["FewShotTasks", "SinusoidTasks", "Task", "TaskSampler", "split_classes"]


class Task(NamedTuple):
    """One task: ``support_x, support_y`` to adapt on, ``query_x, query_y`` to score.

    Examples
    --------
    >>> task = SinusoidTasks(k_support=5, k_query=10).sample(torch.Generator().manual_seed(0))
    >>> task.support_x.shape, task.query_y.shape
    (torch.Size([5, 1]), torch.Size([10, 1]))
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor


class TaskSampler:
    """Draws tasks; subclasses implement :meth:`sample`.

    Examples
    --------
    A sampler of one's own implements :meth:`sample`; :meth:`meta_batch` stacks tasks:

    >>> class Lines(TaskSampler):
    ...     def sample(self, generator):
    ...         slope = torch.randn((), generator=generator)
    ...         x = torch.rand(8, 1, generator=generator)
    ...         return Task(x[:4], slope * x[:4], x[4:], slope * x[4:])
    >>> [t.shape for t in Lines().meta_batch(3, torch.Generator().manual_seed(0))]
    [torch.Size([3, 4, 1]), torch.Size([3, 4, 1]), torch.Size([3, 4, 1]), torch.Size([3, 4, 1])]
    """

    def sample(self, generator: torch.Generator) -> Task:
        raise NotImplementedError

    def meta_batch(self, n_tasks: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        """``n_tasks`` tasks stacked: ``(support_x, support_y, query_x, query_y)``, each with
        a first dimension of ``n_tasks``."""
        if int(n_tasks) < 1:
            raise ValueError(f"n_tasks must be >= 1; got {n_tasks}")
        tasks = [self.sample(generator) for _ in range(int(n_tasks))]
        return tuple(torch.stack([t[i] for t in tasks]) for i in range(4))


class SinusoidTasks(TaskSampler):
    """The MAML paper's sinusoid regression: ``y = A sin(x - phase)``.

    Amplitude uniform in ``amplitude`` (0.1 to 5), phase uniform in ``phase`` (0 to pi),
    inputs uniform in ``x_range`` (-5 to 5), as in Finn et al. (2017), section 5.1.
    ``k_support`` points to adapt on and ``k_query`` points to score (the paper samples
    K of each). Inputs and targets have shape (k, 1).

    Examples
    --------
    >>> t = SinusoidTasks(k_support=5, k_query=10).sample(torch.Generator().manual_seed(0))
    >>> t.support_x.shape, t.query_y.shape
    (torch.Size([5, 1]), torch.Size([10, 1]))
    """

    def __init__(
        self, k_support: int = 10, k_query: int = 10,
        amplitude: tuple[float, float] = (0.1, 5.0), phase: tuple[float, float] = (0.0, math.pi),
        x_range: tuple[float, float] = (-5.0, 5.0),
    ) -> None:
        if int(k_support) < 1 or int(k_query) < 1:
            raise ValueError(f"k_support and k_query must be >= 1; got {k_support}, {k_query}")
        for name, (lo, hi) in (("amplitude", amplitude), ("phase", phase), ("x_range", x_range)):
            if not lo <= hi:
                raise ValueError(f"{name} must be (low, high) with low <= high; got {(lo, hi)}")
        self.k_support, self.k_query = int(k_support), int(k_query)
        self.amplitude, self.phase, self.x_range = amplitude, phase, x_range

    def _uniform(self, bounds: tuple[float, float], shape: tuple[int, ...],
                 g: torch.Generator) -> Tensor:
        lo, hi = bounds
        return lo + (hi - lo) * torch.rand(shape, generator=g)

    def sample(self, generator: torch.Generator) -> Task:
        return Task(*(t[0] for t in self.meta_batch(1, generator)))

    def meta_batch(self, n_tasks: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        """``n_tasks`` tasks drawn at once (amplitudes, phases, then inputs)."""
        if int(n_tasks) < 1:
            raise ValueError(f"n_tasks must be >= 1; got {n_tasks}")
        n = int(n_tasks)
        amp = self._uniform(self.amplitude, (n, 1, 1), generator)
        phase = self._uniform(self.phase, (n, 1, 1), generator)
        x = self._uniform(self.x_range, (n, self.k_support + self.k_query, 1), generator)
        y = amp * torch.sin(x - phase)
        k = self.k_support
        return x[:, :k], y[:, :k], x[:, k:], y[:, k:]


def split_classes(
    classes: Sequence[Any], n_test: int, generator: torch.Generator | None = None,
) -> tuple[list[Any], list[Any]]:
    """Disjoint meta-train and meta-test class lists: ``n_test`` classes held out.

    Examples
    --------
    >>> train, test = split_classes(range(10), 3, torch.Generator().manual_seed(0))
    >>> len(train), len(test), set(train) & set(test)
    (7, 3, set())
    """
    items = list(classes)
    if not 0 < int(n_test) < len(items):
        raise ValueError(f"n_test must be between 1 and {len(items) - 1}; got {n_test}")
    order = torch.randperm(len(items), generator=generator).tolist()
    return [items[i] for i in order[n_test:]], [items[i] for i in order[:n_test]]


class FewShotTasks(TaskSampler):
    """N-way K-shot classification tasks over some classes of a labelled set.

    Each task picks ``n_way`` of ``classes`` at random, relabels them 0..n_way-1 in a random
    order, and takes ``k_shot`` support and ``k_query`` query rows per class, disjoint. Give
    meta-train and meta-test samplers disjoint ``classes`` (:func:`split_classes`) or
    different data (another domain) so meta-testing is on what meta-training never saw.

    Parameters
    ----------
    x : Tensor (n, ...)
        Rows (images, feature vectors).
    y : Tensor (n,)
        Integer labels.
    classes : sequence of int
        The labels tasks draw from; each needs ``k_shot + k_query`` rows.

    Examples
    --------
    >>> x, y = torch.randn(60, 4), torch.arange(6).repeat(10)
    >>> tasks = FewShotTasks(x, y, classes=[0, 1, 2, 3], n_way=2, k_shot=1, k_query=3)
    >>> t = tasks.sample(torch.Generator().manual_seed(0))
    >>> t.support_y.tolist() in ([0, 1], [1, 0]), t.query_x.shape
    (True, torch.Size([6, 4]))
    """

    def __init__(
        self, x: Tensor, y: Tensor, classes: Sequence[int], n_way: int = 5, k_shot: int = 1,
        k_query: int = 15,
    ) -> None:
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        if y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"x must have one row per label: x {tuple(x.shape)}, y "
                             f"{tuple(y.shape)}")
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            bad = int(torch.nonzero(~torch.isfinite(x.reshape(len(x), -1)).all(dim=1))[0])
            raise ValueError(f"x has NaN or infinite values (first in row {bad})")
        self.classes = [int(c) for c in classes]
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes has repeats: {self.classes}")
        if not 2 <= int(n_way) <= len(self.classes):
            raise ValueError(f"n_way must be between 2 and the {len(self.classes)} classes; "
                             f"got {n_way}")
        if int(k_shot) < 1 or int(k_query) < 1:
            raise ValueError(f"k_shot and k_query must be >= 1; got {k_shot}, {k_query}")
        self.rows = {c: torch.nonzero(y == c).flatten() for c in self.classes}
        short = {c: len(r) for c, r in self.rows.items() if len(r) < k_shot + k_query}
        if short:
            raise ValueError(f"classes {sorted(short)} have fewer than k_shot + k_query = "
                             f"{k_shot + k_query} rows ({short})")
        self.x = x
        self.n_way, self.k_shot, self.k_query = int(n_way), int(k_shot), int(k_query)

    def sample(self, generator: torch.Generator) -> Task:
        pick = torch.randperm(len(self.classes), generator=generator)[: self.n_way]
        support, query = [], []
        for rows in (self.rows[self.classes[int(i)]] for i in pick):
            order = rows[torch.randperm(len(rows), generator=generator)]
            support.append(order[: self.k_shot])
            query.append(order[self.k_shot: self.k_shot + self.k_query])
        labels = torch.arange(self.n_way)
        sy = labels.repeat_interleave(self.k_shot)
        qy = labels.repeat_interleave(self.k_query)
        s, q = torch.cat(support), torch.cat(query)
        return Task(self.x[s], sy, self.x[q], qy)
