"""Data parallelism with ``torch.distributed``: what the loop and the methods share.

Launched with ``torchrun --nproc_per_node N ...`` (gloo on the CPU, nccl on CUDA), every
process runs the same program; :func:`init_from_env` joins the process group that
``torchrun`` describes in the environment (the :class:`~transferkit.train.Trainer` and the
command line call it, so user code needs no change). Then:

- every :class:`~transferkit.train.Stream` gives each rank a disjoint, contiguous share of
  each batch (the batch itself is the same on every rank: same seed, same draw count);
- the loop broadcasts rank 0's parameters and buffers at the start of ``fit`` (the models
  agree even when they were built differently) and, after each backward, averages the
  gradients over the ranks (:func:`average_gradients`: one flat all-reduce per dtype), so
  with equal shares one step on N ranks with per-rank batch B/N is the step one process
  takes with batch B. A model the user wrapped in ``DistributedDataParallel`` already
  averages its own gradients and is left to it;
- the loop's random state (dropout, noise) is seeded with ``seed + rank`` on rank > 0, so
  the ranks draw different masks for their different rows; the streams' seeds agree;
- only rank 0 writes checkpoints and results and shows progress.

Objectives that are not a plain mean over the batch aggregate what they need across
ranks with these helpers: GradNorm averages the task losses and the per-task gradients
of the shared layer before taking norms; uncertainty weighting and DWA average the task
losses; MSTN sums the per-class feature sums and counts (:func:`differentiable_sum`, so
each rank's features get the gradient of the global centroids); BBSE sums its confusion
counts (:func:`sum_across_ranks`).

Batch-norm statistics are per rank, as under ``DistributedDataParallel``; rank 0's are the
ones saved. Equivalence with one process holds for models without batch norm (or with
``torch.nn.SyncBatchNorm`` on CUDA) when the batch size is a multiple of the world size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "average_gradients", "barrier", "broadcast_module", "differentiable_sum", "from_rank_zero",
    "gather_rows", "group_line", "init_from_env", "is_distributed", "launched_by_torchrun",
    "local_device", "on_rank_zero", "rank_and_world_size", "sum_across_ranks",
]

T = TypeVar("T")


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)`` of this process under ``torch.distributed``; ``(0, 1)`` alone.

    Examples
    --------
    >>> rank_and_world_size()                      # one process, no process group
    (0, 1)
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_distributed() -> bool:
    """True when a process group of more than one process is initialised.

    Examples
    --------
    >>> is_distributed()
    False
    """
    return rank_and_world_size()[1] > 1


def launched_by_torchrun() -> bool:
    """True when the environment describes a ``torchrun`` launch of more than one process.

    Examples
    --------
    >>> launched_by_torchrun()                     # torchrun sets WORLD_SIZE and RANK
    False
    """
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
    except ValueError:
        return False


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group ``torchrun`` describes, if any and not yet joined.

    The backend is nccl when CUDA is available and gloo otherwise (or ``backend``); under
    nccl each process takes the GPU ``LOCAL_RANK``. Returns whether a group of more than
    one process is now initialised. Called by the trainer and the command line, so a
    program written for one process runs unchanged under ``torchrun``.

    Examples
    --------
    >>> init_from_env()                            # not launched by torchrun: nothing to join
    False
    """
    dist = torch.distributed
    if not dist.is_available():
        if launched_by_torchrun():
            raise RuntimeError("torchrun launched several processes but this torch build "
                               "has no torch.distributed")
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    if not launched_by_torchrun():
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(_local_rank())
    dist.init_process_group(backend=backend)
    return dist.get_world_size() > 1


def group_line(batch_size: int | None = None) -> str | None:
    """What a run under ``torch.distributed`` says at its start: the world size, the
    backend and, given the global ``batch_size``, the rows each rank takes of every batch
    (the streams split each batch into contiguous shares); ``None`` when alone.

    Examples
    --------
    >>> group_line(64) is None                     # one process
    True
    """
    rank, world = rank_and_world_size()
    if world == 1:
        return None
    line = (f"{world} ranks under torch.distributed "
            f"({torch.distributed.get_backend()} backend)")
    if batch_size:
        sizes = sorted({len(s) for s in torch.arange(batch_size).tensor_split(world)})
        line += (f"; each batch of {batch_size} is split into "
                 f"{'-'.join(map(str, sizes))} rows per rank")
    return line


def local_device() -> torch.device | None:
    """This process's GPU under a multi-process CUDA launch (``cuda:LOCAL_RANK``), else None.

    Examples
    --------
    >>> local_device() is None                     # alone: the caller picks the device
    True
    """
    if launched_by_torchrun() and torch.cuda.is_available():
        return torch.device("cuda", _local_rank())
    return None


def sum_across_ranks(value: Tensor) -> Tensor:
    """The element-wise sum of a tensor over the ranks, without gradient and without
    changing ``value`` (``value`` itself when alone).

    Examples
    --------
    >>> x = torch.tensor([1.0, 2.0])
    >>> sum_across_ranks(x) is x                   # alone the sum over ranks is the value
    True
    """
    if not is_distributed():
        return value
    out = value.detach().clone()
    torch.distributed.all_reduce(out)
    return out


def gather_rows(value: np.ndarray) -> np.ndarray:
    """Every rank's rows of ``value``, concatenated in rank order, on every rank (``value``
    itself when alone). BBSE under DDP: each rank predicts its share of the holdout, and
    fitting on the gathered rows gives the confusion counts summed over the ranks.

    Examples
    --------
    >>> gather_rows(np.arange(6).reshape(3, 2)).shape
    (3, 2)
    """
    if not is_distributed():
        return value
    parts: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(parts, np.asarray(value))
    return np.concatenate(parts)


def differentiable_sum(value: Tensor) -> Tensor:
    """The sum of ``value`` over the ranks, differentiable: the backward pass sums each
    rank's gradient with respect to the result, so every rank's rows receive the gradient
    of the global quantity (``value`` itself when alone).

    Examples
    --------
    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> differentiable_sum(x).sum().backward()
    >>> x.grad
    tensor([1., 1.])
    """
    if not is_distributed():
        return value
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(value)


def _grouped(tensors: Iterable[Tensor]) -> dict[tuple[torch.dtype, torch.device], list[Tensor]]:
    groups: dict[tuple[torch.dtype, torch.device], list[Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    return groups


def average_gradients(params: Sequence[Tensor]) -> None:
    """Average the ``.grad`` of ``params`` over the ranks, in place (nothing when alone).

    One flat all-reduce per (dtype, device). A parameter with no gradient on a rank counts
    as a zero gradient there; one with no gradient on any rank keeps ``grad=None``, so the
    optimiser skips it as it would in one process.

    Examples
    --------
    >>> p = torch.nn.Parameter(torch.zeros(2))
    >>> p.grad = torch.tensor([0.5, -1.0])
    >>> average_gradients([p])                     # under torchrun: the mean over the ranks
    >>> p.grad
    tensor([ 0.5000, -1.0000])
    """
    if not is_distributed():
        return
    world = torch.distributed.get_world_size()
    params = [p for p in params if p.requires_grad]
    for (dtype, device), group in _grouped(params).items():
        flat = torch.cat([
            (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in group
        ] + [torch.tensor([0.0 if p.grad is None else 1.0 for p in group], dtype=dtype,
                          device=device)])
        torch.distributed.all_reduce(flat)
        flat /= world
        had = flat[-len(group):]
        offset = 0
        for i, p in enumerate(group):
            n = p.numel()
            if had[i] > 0:
                chunk = flat[offset:offset + n].view_as(p)
                if p.grad is None:
                    p.grad = chunk.clone()
                else:
                    p.grad.copy_(chunk)
            offset += n


def from_rank_zero(fn: Callable[[], T]) -> T:
    """``fn()`` evaluated on rank 0 and sent to every rank (just ``fn()`` when alone): for
    decisions that must agree, such as which cached results a resumed run skips.

    Examples
    --------
    >>> from_rank_zero(lambda: "rank 0 decides")
    'rank 0 decides'
    """
    if not is_distributed():
        return fn()
    box = [fn() if torch.distributed.get_rank() == 0 else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def barrier() -> None:
    """Wait until every rank gets here (nothing when alone): e.g. before reading a file
    rank 0 has just written.

    Examples
    --------
    >>> barrier()                                  # alone there is nobody to wait for
    """
    if is_distributed():
        torch.distributed.barrier()


def on_rank_zero(fn: Callable[[], Any]) -> None:
    """Run ``fn()`` on rank 0 only (always when alone): writing results and checkpoints.

    Examples
    --------
    >>> written = []
    >>> on_rank_zero(lambda: written.append("results.json"))
    >>> written
    ['results.json']
    """
    if rank_and_world_size()[0] == 0:
        fn()


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers to every rank, in place (nothing alone).

    Examples
    --------
    >>> net = torch.nn.Linear(2, 1)
    >>> before = net.weight.clone()
    >>> broadcast_module(net)                      # under torchrun: rank 0's weights everywhere
    >>> torch.equal(before, net.weight)
    True
    """
    if not is_distributed():
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            torch.distributed.broadcast(t.data, src)
