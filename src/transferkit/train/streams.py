"""Batches as a pure function of the step: resumable, repeatable data streams.

A :class:`Stream` holds tensors that are drawn together (images, labels[, per-example
weights]) and a sampler that says which rows form the batch of a given step. Because the
batch of step ``t`` depends only on ``(seed, t)`` and never on how many batches were drawn
before, a run resumed from a checkpoint sees exactly the batches an uninterrupted run would.
Samplers that change over time (a curriculum's growing pool) implement the same
:class:`Sampler` protocol.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Sampler(Protocol):
    """Says which rows make up the batch of each training step."""

    def indices(self, step: int) -> Tensor:
        """Row indices (int64) of the batch at global ``step``."""
        ...


class EpochSampler:
    """Shuffled epochs without replacement; the permutation of epoch e is seeded by (seed, e).

    Parameters
    ----------
    n : int
        Rows in the data.
    batch_size : int
        Rows per batch; with fewer rows than that the whole set is every batch.
    seed : int
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0) -> None:
        if n < 1:
            raise ValueError(f"a stream needs at least one row; got n={n}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        self.n = n
        self.batch_size = min(batch_size, n)
        self.seed = seed
        self.per_epoch = n // self.batch_size
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.int64)

    def _permutation(self, epoch: int) -> Tensor:
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.n, generator=gen)
            self._epoch = epoch
        return self._perm

    def indices(self, step: int) -> Tensor:
        epoch, pos = divmod(step, self.per_epoch)
        perm = self._permutation(epoch)
        return perm[pos * self.batch_size : (pos + 1) * self.batch_size]


class Stream:
    """Tensors sharing their first dimension, served in batches by a sampler.

    Parameters
    ----------
    *tensors : Tensor
        E.g. ``(images, labels)`` or ``(images, labels, weights)``; all of length n.
    batch_size : int
        Used to build the default :class:`EpochSampler` when ``sampler`` is None.
    seed : int
        Seed of the default sampler.
    sampler : Sampler, optional
        Replaces the default shuffled epochs (e.g. a curriculum).

    Examples
    --------
    >>> import torch
    >>> s = Stream(torch.arange(10.0), torch.arange(10), batch_size=4, seed=0)
    >>> x, y = s.batch(0)
    >>> x.shape, bool((x == y).all())
    (torch.Size([4]), True)
    """

    def __init__(
        self, *tensors: Tensor, batch_size: int = 64, seed: int = 0, sampler: Sampler | None = None
    ) -> None:
        if not tensors:
            raise ValueError("a Stream needs at least one tensor")
        n = len(tensors[0])
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"tensor {i} of the stream is a {type(t).__name__}, not a Tensor")
            if len(t) != n:
                raise ValueError(f"tensor {i} has {len(t)} rows; tensor 0 has {n}")
        self.tensors = tensors
        self.sampler: Sampler = (
            sampler if sampler is not None else EpochSampler(n, batch_size, seed)
        )

    def __len__(self) -> int:
        return len(self.tensors[0])

    def batch(self, step: int, device: torch.device | None = None) -> tuple[Tensor, ...]:
        """The batch of global ``step``, moved to ``device``."""
        idx = self.sampler.indices(step)
        out = tuple(t[idx] for t in self.tensors)
        if device is not None:
            out = tuple(t.to(device, non_blocking=True) for t in out)
        return out
