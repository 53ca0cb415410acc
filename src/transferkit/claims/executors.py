"""Where a claim's seeds run: in this process, in a local process pool, or on a Ray cluster.

An executor takes the seeds still to run and yields each seed's record as it finishes;
the runner writes every record to the seed cache the moment it arrives, so a killed run,
whatever the executor, resumes with the seeds it had finished, and a seed that was
running is recomputed (its finished units come from the unit cache, which the workers
write as they go). The numbers do not depend on the executor: every seed runs with the
same fixed intra-op thread count (:data:`~transferkit.claims.runner.UNIT_THREADS`).

- ``serial``: one seed after another in this process (``--jobs 1``);
- ``process`` (the default): a pool of ``jobs`` spawned processes on this machine, which
  end when the ``reproduce`` process dies;
- ``ray``: one Ray task per seed (one CPU each) on the cluster at ``address``, or on a
  local Ray instance started for the run when no address is given (the optional extra
  ``ray``). The workers need transferkit installed, and, for the unit cache to survive a
  killed run, the output folder on a file system they share with the driver; without it
  a resumed run still reuses every finished seed.

Executors are registered by name (:func:`create_executor`, :func:`list_executors`).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from .._registry import Registry

__all__ = ["EXECUTORS", "Executor", "choose_executor", "create_executor", "list_executors",
           "register_executor"]

RunSeed = Callable[..., dict[str, Any]]
"""The runner's ``_run_seed(claim, cfg, seed, threads, units_folder[, on_unit])``."""
UnitFn = Callable[[int, str, float, bool], None]
"""``on_unit(seed, unit, seconds, cached)``: a recipe's unit of work finished or came
from the cache."""


class Executor:
    """Runs seeds; subclasses implement :meth:`map`. Use as a context manager or ``close``.

    Examples
    --------
    >>> import tempfile
    >>> from transferkit.claims.demo import demo_claim
    >>> claim = demo_claim()

    An executor of one's own runs the seeds in reverse (any order works: the runner
    keys every record by its seed):

    >>> class Reversed(Executor):
    ...     name = "reversed"
    ...     def __init__(self, jobs=1, address=None):
    ...         pass
    ...     def map(self, fn, claim, cfg, seeds, cache, threads, on_unit=None):
    ...         for seed in reversed(seeds):
    ...             yield fn(claim, cfg, seed, threads, cache / f"seed{seed}", on_unit)
    >>> from transferkit.claims.runner import run_claim
    >>> with tempfile.TemporaryDirectory() as d, EXECUTORS.temporary("reversed", Reversed):
    ...     result = run_claim(claim, "quick", out_dir=d, executor=create_executor("reversed"))
    >>> result["seeds"], result["verdict"]
    ([0, 1, 2, 3, 4], 'holds')
    """

    name = "base"

    def map(self, fn: RunSeed, claim: Any, cfg: Any, seeds: Sequence[int],
            cache: Path, threads: int, on_unit: UnitFn | None = None
            ) -> Iterator[dict[str, Any]]:
        """Yield ``fn(claim, cfg, seed, threads, cache / f"seed{seed}")`` for every seed, in
        the order they finish; ``on_unit`` hears of each unit where the seed runs in this
        process (elsewhere unit progress stays with the worker)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the executor holds (a local Ray instance it started)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


EXECUTORS: Registry[Callable[..., Executor]] = Registry("executor")


def register_executor(name: str) -> Callable[[Callable[..., Executor]], Callable[..., Executor]]:
    """Decorator adding an executor factory ``(jobs=..., address=...) -> Executor``.

    Examples
    --------
    See :class:`Executor`; as a decorator:

    >>> @register_executor("serial-demo")
    ... class SerialDemo(SerialExecutor):
    ...     name = "serial-demo"
    >>> "serial-demo" in list_executors()
    True
    >>> EXECUTORS.unregister("serial-demo")
    """
    return EXECUTORS.decorator(name)


def create_executor(name: str, **kwargs: Any) -> Executor:
    """The executor ``name`` (``serial``, ``process``, ``ray``) built with ``kwargs``.

    Examples
    --------
    >>> with create_executor("serial") as executor:
    ...     executor.name
    'serial'
    >>> create_executor("serial", address="host:6379")
    Traceback (most recent call last):
    ...
    ValueError: the serial executor takes no address
    """
    return EXECUTORS.get(name)(**kwargs)


def list_executors() -> list[str]:
    """Names of the registered executors.

    Examples
    --------
    >>> list_executors()
    ['process', 'ray', 'serial']
    """
    return EXECUTORS.names()


def choose_executor(
    kind: str = "process", jobs: int | None = None, address: str | None = None,
) -> tuple[Executor, str]:
    """The one place where the executor of a run is chosen: ``(executor, where in words)``.

    Under ``torch.distributed`` the ranks train each seed together, one seed after another
    (only ``process``, the default, is accepted there); ``process`` with one job runs in
    this process. ``jobs`` defaults to one per CPU core. ``address`` is Ray's.

    Examples
    --------
    >>> executor, where = choose_executor("process", jobs=1)
    >>> executor.name, where
    ('serial', '1 process')
    """
    from ..distributed import rank_and_world_size

    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; the executors are "
                         f"{', '.join(list_executors())}")
    if address is not None and kind != "ray":
        raise ValueError("an address is for the ray executor")
    world = rank_and_world_size()[1]
    if world > 1:
        if kind != "process":
            raise ValueError("under torchrun the ranks train each seed together, one seed "
                             f"after another; the {kind} executor does not apply")
        return create_executor("serial"), f"{world} ranks under torch.distributed"
    jobs = jobs if jobs is not None else max(1, os.cpu_count() or 1)
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1; got {jobs}")
    serial = kind == "serial" or (kind == "process" and jobs <= 1)
    executor = create_executor("serial" if serial else kind, jobs=jobs, address=address)
    where = ("1 process" if serial else
             f"{jobs} process{'es' if jobs > 1 else ''}" if kind == "process"
             else "Ray" + (f" at {address}" if address else " (local)"))
    return executor, where


@register_executor("serial")
class SerialExecutor(Executor):
    """Every seed in this process, one after another."""

    name = "serial"

    def __init__(self, jobs: int = 1, address: str | None = None) -> None:
        if address is not None:
            raise ValueError("the serial executor takes no address")

    def map(self, fn: RunSeed, claim: Any, cfg: Any, seeds: Sequence[int],
            cache: Path, threads: int, on_unit: UnitFn | None = None
            ) -> Iterator[dict[str, Any]]:
        for seed in seeds:
            yield fn(claim, cfg, seed, threads, cache / f"seed{seed}", on_unit)


def _worker_init(parent: int) -> None:
    """Worker initializer: draw no progress bars (the parent shows one display for the run:
    claim i/N, seed j/M, elapsed and time left; bars from several workers would overwrite
    each other on one terminal line), and end with the parent (:func:`_die_with_parent`)."""
    os.environ["TRANSFERKIT_QUIET"] = "1"
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    """End this worker when the ``reproduce`` process that spawned it dies.

    On Linux the kernel sends SIGTERM at the parent's death (``PR_SET_PDEATHSIG``); a
    daemon thread that polls the parent's pid covers other systems and the race where the
    parent died before the call.
    """
    import ctypes
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
        except OSError:
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, daemon=True, name="transferkit-parent-watch").start()


@register_executor("process")
class ProcessExecutor(Executor):
    """A pool of ``jobs`` spawned processes on this machine (seeds one per process).

    The pool is started on first use and kept until :meth:`close`, so the claims of one
    ``reproduce`` share their workers: each worker imports torch and loads the bundled
    data once, not once per claim. A claim's seeds are seeded on their own, so what ran
    before in a worker does not change them (as in one process with ``--jobs 1``).
    """

    name = "process"

    def __init__(self, jobs: int | None = None, address: str | None = None) -> None:
        if address is not None:
            raise ValueError("the process executor runs on this machine; it takes no address "
                             "(use --executor ray --address ...)")
        self.jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
        self._pool: ProcessPoolExecutor | None = None

    def _workers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx,
                                             initializer=_worker_init,
                                             initargs=(os.getpid(),))
        return self._pool

    def map(self, fn: RunSeed, claim: Any, cfg: Any, seeds: Sequence[int],
            cache: Path, threads: int, on_unit: UnitFn | None = None
            ) -> Iterator[dict[str, Any]]:
        if self.jobs <= 1 or len(seeds) <= 1:
            yield from SerialExecutor().map(fn, claim, cfg, seeds, cache, threads, on_unit)
            return
        pool = self._workers()
        pending = {pool.submit(fn, claim, cfg, s, threads, cache / f"seed{s}") for s in seeds}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        except Exception:
            for fut in pending:  # a failed claim leaves no seed of its own queued
                fut.cancel()
            if getattr(pool, "_broken", False):
                self.close()  # a worker died: the next claim gets a fresh pool
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@register_executor("ray")
class RayExecutor(Executor):
    """One Ray task (one CPU) per seed, on the cluster at ``address`` or a local instance.

    Without an address a local Ray instance with ``jobs`` CPUs is started and shut down by
    :meth:`close`; with one (``ray://host:10001``, ``host:6379`` or ``auto``) the driver
    joins that cluster and leaves it running.
    """

    name = "ray"

    def __init__(self, jobs: int | None = None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError("--executor ray needs Ray: pip install 'transferkit[ray]'") from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if address is None:
                kwargs["num_cpus"] = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
            ray.init(address=address, **kwargs)
            self._started = True

    def map(self, fn: RunSeed, claim: Any, cfg: Any, seeds: Sequence[int],
            cache: Path, threads: int, on_unit: UnitFn | None = None
            ) -> Iterator[dict[str, Any]]:
        ray = self._ray
        task = ray.remote(num_cpus=1, max_retries=0)(fn)
        pending = [task.remote(claim, cfg, s, threads, cache / f"seed{s}") for s in seeds]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield ray.get(done[0])
        finally:
            for ref in pending:  # an interrupted run does not leave its tasks running
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False
