"""Batches as a pure function of a stream's own draw count: resumable, repeatable data streams.

A :class:`Stream` holds tensors that are drawn together (images, labels[, per-example
weights]); a :class:`DatasetStream` serves any map-style :class:`torch.utils.data.Dataset`
(a folder of images, a memory-mapped array) through a :class:`~torch.utils.data.DataLoader`
with worker processes. Either way a :class:`Sampler` says which rows form the batch of the
stream's ``d``-th draw. The trainer counts each stream's draws (a stream used by one of two
alternating phases sees every position of its epochs) and checkpoints the counts, so a run
resumed from a checkpoint sees exactly the batches an uninterrupted run would.

Under ``torch.distributed`` every stream gives each rank a disjoint shard of the rows of
each batch (the batch size is then the global one), whatever the sampler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from ..distributed import rank_and_world_size
from .interface import derived_generator

__all__ = ["DatasetStream", "EpochSampler", "GeneratedStream", "Sampler", "Stream", "shard"]


@runtime_checkable
class Sampler(Protocol):
    """Says which rows make up each batch of a stream.

    ``indices(draw)`` returns the int64 row indices of the stream's ``draw``-th batch
    (counted from 0). It should depend only on the sampler's seed, its state and ``draw``.
    A sampler with state that changes during training (a curriculum paced by losses)
    also implements ``state_dict()`` and ``load_state_dict(state)``; the trainer
    checkpoints it with the stream.

    Examples
    --------
    A sampler that always serves the first four rows, and one that keeps state:

    >>> import torch
    >>> class FirstFour:
    ...     def indices(self, draw):
    ...         return torch.arange(4)
    >>> class Growing:  # serves a pool that a callback may grow; checkpointed by the trainer
    ...     def __init__(self):
    ...         self.pool = 4
    ...     def indices(self, draw):
    ...         g = torch.Generator().manual_seed(draw)
    ...         return torch.randint(0, self.pool, (2,), generator=g)
    ...     def state_dict(self):
    ...         return {"pool": self.pool}
    ...     def load_state_dict(self, state):
    ...         self.pool = state["pool"]
    >>> s = Stream(torch.arange(10.0), sampler=Growing())
    >>> bool((s.batch(0)[0] < 4).all()), isinstance(FirstFour(), Sampler)
    (True, True)
    """

    def indices(self, draw: int) -> Tensor:
        """Row indices (int64) of the stream's ``draw``-th batch."""
        ...


class EpochSampler:
    """Shuffled epochs without replacement; the permutation of epoch e is seeded by (seed, e).

    Draw ``d`` is position ``d % (n // batch_size)`` of epoch ``d // (n // batch_size)``;
    the last ``n % batch_size`` rows of each permutation are left out of that epoch.

    Parameters
    ----------
    n : int
        Rows in the data.
    batch_size : int
        Rows per batch; with fewer rows than that the whole set is every batch.
    seed : int

    Examples
    --------
    >>> s = EpochSampler(6, batch_size=2, seed=0)
    >>> sorted(torch.cat([s.indices(d) for d in range(3)]).tolist())
    [0, 1, 2, 3, 4, 5]
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
            gen = derived_generator(self.seed, epoch)
            self._perm = torch.randperm(self.n, generator=gen)
            self._epoch = epoch
        return self._perm

    def indices(self, draw: int) -> Tensor:
        epoch, pos = divmod(draw, self.per_epoch)
        perm = self._permutation(epoch)
        return perm[pos * self.batch_size : (pos + 1) * self.batch_size]


def shard(indices: Tensor, rank: int, world_size: int) -> Tensor:
    """This rank's contiguous, disjoint share of a batch's rows (all of them when alone).

    Examples
    --------
    >>> shard(torch.arange(5), rank=1, world_size=2).tolist()
    [3, 4]
    """
    if world_size == 1:
        return indices
    if len(indices) < world_size:
        raise ValueError(
            f"a batch of {len(indices)} rows cannot be shared by {world_size} ranks; "
            "use a batch size of at least the world size"
        )
    return indices.tensor_split(world_size)[rank]


def _as_tensor(t: Any, i: int) -> Tensor:
    if isinstance(t, Tensor):
        return t
    import numpy as np

    if isinstance(t, np.ndarray):
        if t.dtype.kind not in "biuf":
            raise TypeError(
                f"array {i} of the stream has dtype {t.dtype}; expected numbers (bool, int, "
                "float)"
            )
        out = torch.from_numpy(np.ascontiguousarray(t))
        return out.float() if out.dtype == torch.float64 else out
    raise TypeError(
        f"tensor {i} of the stream is a {type(t).__name__}; expected a Tensor or a numpy array"
    )


def _default_seed(seed: int | None) -> int:
    if seed is None:  # like DataLoader(shuffle=True): torch.manual_seed makes it repeatable
        return int(torch.randint(0, 2**31, (), dtype=torch.int64).item())
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or None; got {seed!r}")
    return seed


class Stream:
    """Tensors sharing their first dimension, served in batches by a sampler.

    Parameters
    ----------
    *tensors : Tensor or numpy array
        E.g. ``(images, labels)`` or ``(images, labels, weights)``; all of length n. Numpy
        arrays are converted (float64 to float32, the dtype of a default PyTorch model).
    batch_size : int
        Used to build the default :class:`EpochSampler` when ``sampler`` is None.
    seed : int, optional
        Seed of the default sampler. Without one, a seed is drawn from torch's global
        generator (so two unseeded streams differ, and ``torch.manual_seed`` makes a script
        repeatable, as with a shuffling ``DataLoader``); it is kept in ``self.seed``.
    sampler : Sampler, optional
        Replaces the default shuffled epochs (e.g. a curriculum).
    rank, world_size : int, optional
        This process's share of each batch; by default from ``torch.distributed`` when it
        is initialised (else the whole batch).

    Examples
    --------
    >>> import torch
    >>> s = Stream(torch.arange(10.0), torch.arange(10), batch_size=4, seed=0)
    >>> x, y = s.batch(0)
    >>> x.shape, bool((x == y).all())
    (torch.Size([4]), True)
    """

    def __init__(
        self,
        *tensors: Tensor,
        batch_size: int = 64,
        seed: int | None = None,
        sampler: Sampler | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if not tensors:
            raise ValueError("a Stream needs at least one tensor")
        tensors = tuple(_as_tensor(t, i) for i, t in enumerate(tensors))
        for i, t in enumerate(tensors):
            if t.ndim == 0:
                raise ValueError(f"tensor {i} of the stream is a scalar; it needs rows")
        n = len(tensors[0])
        for i, t in enumerate(tensors):
            if len(t) != n:
                raise ValueError(f"tensor {i} has {len(t)} rows; tensor 0 has {n}")
        self.tensors = tensors
        self._init_sampling(n, batch_size, seed, sampler, rank, world_size)

    def _init_sampling(
        self, n: int, batch_size: int, seed: int | None, sampler: Sampler | None,
        rank: int | None, world_size: int | None,
    ) -> None:
        if sampler is not None and not isinstance(sampler, Sampler):
            raise TypeError(
                f"sampler must have an indices(draw) method; got a {type(sampler).__name__}"
            )
        self.seed: int | None = seed
        if sampler is None:
            self.seed = _default_seed(seed)
            sampler = EpochSampler(n, batch_size, self.seed)
        self.sampler: Sampler = sampler
        if (rank is None) != (world_size is None):
            raise ValueError("give both rank and world_size, or neither")
        if rank is not None and world_size is not None and not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}); got {rank}")
        self._rank = rank
        self._world_size = world_size

    def __len__(self) -> int:
        return len(self.tensors[0])

    @property
    def rank(self) -> int:
        return self._rank if self._rank is not None else rank_and_world_size()[0]

    @property
    def world_size(self) -> int:
        return self._world_size if self._world_size is not None else rank_and_world_size()[1]

    def indices(self, draw: int) -> Tensor:
        """The rows of this process's share of the ``draw``-th batch."""
        return shard(self.sampler.indices(draw), self.rank, self.world_size)

    def batch(self, draw: int, device: torch.device | None = None) -> tuple[Tensor, ...]:
        """The stream's ``draw``-th batch (this rank's share), moved to ``device``."""
        idx = self.indices(draw)
        out = tuple(t[idx] for t in self.tensors)
        if device is not None:
            out = tuple(t.to(device, non_blocking=True) for t in out)
        return out

    @property
    def stateful(self) -> bool:
        """Whether the sampler has state to checkpoint."""
        return callable(getattr(self.sampler, "state_dict", None))

    def state_dict(self) -> Any:
        """The sampler's state (None for a stateless sampler)."""
        return self.sampler.state_dict() if self.stateful else None  # type: ignore[attr-defined]

    def load_state_dict(self, state: Any) -> None:
        if state is not None:
            if not self.stateful:
                raise ValueError(
                    "the checkpoint holds sampler state but this stream's sampler "
                    f"({type(self.sampler).__name__}) has no load_state_dict"
                )
            self.sampler.load_state_dict(state)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Release what the stream holds between runs (worker processes); a no-op here."""


class _Draws:
    """A DataLoader batch sampler yielding a stream's batches from draw ``start`` on."""

    def __init__(self, stream: Stream, start: int) -> None:
        self.stream, self.start = stream, start

    def __iter__(self) -> Iterator[list[int]]:
        draw = self.start
        while True:
            yield self.stream.indices(draw).tolist()
            draw += 1


class DatasetStream(Stream):
    """Batches of any map-style ``Dataset``, loaded by a ``DataLoader`` (workers, pinned memory).

    The sampler chooses each batch's rows exactly as for a :class:`Stream`; the DataLoader
    only loads them, in worker processes and ahead of time, so batches are still a pure
    function of (seed, draw count) and resume and repeatability hold. Tensors in memory
    remain the faster path (:class:`Stream`).

    With ``num_workers > 0`` the DataLoader asks for the rows of a draw up to
    ``num_workers * prefetch_factor`` draws before the trainer uses it, so a sampler whose
    state changes during training would serve stale choices; such (stateful) samplers need
    ``num_workers=0`` and are refused otherwise. Random transforms inside the dataset run in
    the workers, seeded from ``seed`` and the draw at which loading (re)started.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Map-style: ``len(dataset)`` and ``dataset[i]``, each item a tensor or a tuple of
        tensors/numbers (collated into a tuple of batched tensors).
    batch_size, seed, sampler, rank, world_size
        As for :class:`Stream`.
    num_workers : int
        Loader processes (0: load in this process).
    pin_memory : bool, optional
        Page-locked batches for fast copies to a GPU; by default when the model is on CUDA.
    prefetch_factor : int
        Batches each worker loads ahead.
    collate_fn : callable, optional
        Builds a batch from a list of items (``default_collate`` by default).

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> ds = TensorDataset(torch.arange(10.0), torch.arange(10))
    >>> s = DatasetStream(ds, batch_size=4, seed=0)
    >>> x, y = s.batch(0)
    >>> bool(torch.equal(x, Stream(torch.arange(10.0), batch_size=4, seed=0).batch(0)[0]))
    True
    """

    def __init__(
        self,
        dataset: torch.utils.data.Dataset[Any],
        *,
        batch_size: int = 64,
        seed: int | None = None,
        sampler: Sampler | None = None,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        prefetch_factor: int = 2,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if isinstance(dataset, Tensor) or not hasattr(dataset, "__getitem__"):
            raise TypeError(
                "DatasetStream needs a map-style Dataset (len and [i]); "
                f"got a {type(dataset).__name__} (use Stream for tensors)"
            )
        try:
            n = len(dataset)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                f"the dataset ({type(dataset).__name__}) has no len(): an iterable-style "
                "dataset cannot be sampled by index"
            ) from None
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be an integer >= 0; got {num_workers!r}")
        self.dataset = dataset
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.prefetch_factor = prefetch_factor
        self.collate_fn = collate_fn
        self._init_sampling(n, batch_size, seed, sampler, rank, world_size)
        if self.stateful and num_workers > 0:
            raise ValueError(
                f"the sampler {type(self.sampler).__name__} has state that changes during "
                "training, and workers would load its batches ahead of time with stale "
                "state: use num_workers=0 with it"
            )
        self._iter: Iterator[Any] | None = None
        self._next = -1
        self._pinned = False

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def _loader(self, start: int, pin: bool) -> Iterator[Any]:
        from torch.utils.data import DataLoader, default_collate

        extra: dict[str, Any] = {}
        if self.num_workers > 0:
            extra["prefetch_factor"] = self.prefetch_factor
        loader = DataLoader(
            self.dataset,
            batch_sampler=_Draws(self, start),
            num_workers=self.num_workers,
            collate_fn=self.collate_fn or default_collate,
            pin_memory=pin,
            generator=derived_generator(self.seed or 0, start),  # never the global RNG
            **extra,
        )
        return iter(loader)

    def batch(self, draw: int, device: torch.device | None = None) -> tuple[Tensor, ...]:
        pin = (
            self.pin_memory
            if self.pin_memory is not None
            else device is not None and device.type == "cuda"
        )
        if self._iter is None or draw != self._next or pin != self._pinned:
            self.close()
            self._iter, self._pinned = self._loader(draw, pin), pin
        item = next(self._iter)
        self._next = draw + 1
        out = _as_tuple(item)
        if device is not None:
            out = tuple(t.to(device, non_blocking=True) for t in out)
        return out

    def close(self) -> None:
        """Shut the worker processes down (a new draw starts them again)."""
        self._iter = None
        self._next = -1


def _as_tuple(item: Any) -> tuple[Tensor, ...]:
    if isinstance(item, Tensor):
        return (item,)
    if isinstance(item, Sequence) and all(isinstance(t, Tensor) for t in item):
        return tuple(item)
    raise TypeError(
        "a dataset's collated batch must be a tensor or a tuple of tensors; got "
        f"{type(item).__name__}"
    )


class GeneratedStream(Stream):
    """Batches made by a function of a random generator: tasks, simulations, synthetic data.

    ``make(generator)`` returns the tuple of tensors of one batch; the generator of the
    ``draw``-th batch is seeded from ``(seed, draw)``, so batches are a pure function of the
    seed and the draw count and a resumed run sees the same ones. Under
    ``torch.distributed`` each rank keeps its share of the first dimension (e.g. its tasks
    of a meta-batch). ``len`` is the number of rows of one batch.

    Examples
    --------
    >>> import torch
    >>> s = GeneratedStream(lambda g: (torch.rand(3, generator=g),), seed=0)
    >>> same = torch.equal(s.batch(5)[0], s.batch(5)[0])
    >>> other = torch.equal(s.batch(5)[0], s.batch(6)[0])
    >>> same, other
    (True, False)
    """

    def __init__(
        self, make: Callable[[torch.Generator], tuple[Tensor, ...]], seed: int | None = None,
        rank: int | None = None, world_size: int | None = None,
    ) -> None:
        if not callable(make):
            raise TypeError(f"make must be a callable(generator) -> tuple of tensors; got "
                            f"{type(make).__name__}")
        self.make = make
        self.seed = int(torch.randint(0, 2**31 - 1, ()).item()) if seed is None else int(seed)
        self._base_seed = self.seed
        self._rank, self._world_size = rank, world_size
        self.tensors = self._make(0)

    def _make(self, draw: int) -> tuple[Tensor, ...]:
        g = derived_generator(self._base_seed, draw)
        out = self.make(g)
        if not isinstance(out, tuple) or not all(isinstance(t, Tensor) for t in out):
            raise TypeError("make(generator) must return a tuple of tensors; got "
                            f"{type(out).__name__}")
        return out

    def indices(self, draw: int) -> Tensor:
        return shard(torch.arange(len(self.tensors[0])), self.rank, self.world_size)

    def batch(self, draw: int, device: torch.device | None = None) -> tuple[Tensor, ...]:
        """The ``draw``-th batch (this rank's share), moved to ``device``."""
        idx = self.indices(draw)
        out = tuple(t[idx] for t in self._make(draw))
        if device is not None:
            out = tuple(t.to(device, non_blocking=True) for t in out)
        return out

    @property
    def stateful(self) -> bool:
        return False

    def state_dict(self) -> Any:
        return None

    def load_state_dict(self, state: Any) -> None:
        if state is not None:
            raise ValueError("the checkpoint holds sampler state, but a GeneratedStream has none")
