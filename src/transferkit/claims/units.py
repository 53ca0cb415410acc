"""Resume finer than a seed: a recipe's arms as cached units of work.

Inside ``run(cfg, seed)`` a recipe wraps each independent piece of work (usually one arm)
in :func:`unit`::

    acc = unit("k3/finetune", lambda: train_and_score(...))

Under ``transferkit reproduce`` the result is cached atomically under
``OUT/.partial/<claim>/<budget>-<key>/seed<seed>/`` as soon as the unit ends, so a killed
run loses at most the unit in progress; long training inside a unit can also checkpoint
through the loop (``Trainer(checkpoint=unit_checkpoint("mstn"))``) and lose at most a few
hundred steps. Each unit's compute time is kept, and a resumed run reports which units
came from the cache and the compute time the whole seed really cost.

Outside the runner (a recipe called from Python) :func:`unit` just calls the function and
:func:`unit_checkpoint` returns None. A unit's value must be JSON-serialisable, and the
work must be repeatable on its own (seeded), since a resumed seed runs only the units
that are missing.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .._io import atomic_write_json
from ..distributed import from_rank_zero, on_rank_zero

__all__ = ["unit", "unit_checkpoint", "unit_scope"]

T = TypeVar("T")


@dataclass
class _Units:
    folder: Path
    on_unit: Callable[[str, float, bool], None] | None = None
    log: dict[str, dict[str, Any]] = field(default_factory=dict)


_CURRENT: contextvars.ContextVar[_Units | None] = contextvars.ContextVar(
    "transferkit_units", default=None
)


def _file_name(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._=-]+", "_", name).strip("_") or "unit"
    return safe[:120]


@contextlib.contextmanager
def unit_scope(
    folder: Path, on_unit: Callable[[str, float, bool], None] | None = None
) -> Iterator[dict[str, dict[str, Any]]]:
    """Make :func:`unit` cache under ``folder`` inside the block; yields the units' log
    (``{name: {"seconds": compute seconds, "cached": bool}}``).

    Examples
    --------
    See :func:`unit`; the runner opens one scope per seed and reports the units' log.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d, unit_scope(Path(d)) as log:
    ...     _ = unit("a", lambda: 1)
    ...     sorted(log), log["a"]["cached"]
    (['a'], False)
    """
    state = _Units(Path(folder), on_unit)
    token = _CURRENT.set(state)
    try:
        yield state.log
    finally:
        _CURRENT.reset(token)


def unit(name: str, fn: Callable[[], T]) -> T:
    """``fn()``, cached as the unit ``name`` of the current seed when the runner runs it.

    Examples
    --------
    Outside the runner a unit is just the call; inside it (:func:`unit_scope`), a finished
    unit is cached and a resumed seed skips it:

    >>> import tempfile
    >>> calls = []
    >>> def slow():
    ...     calls.append(1)
    ...     return 42
    >>> unit("outside", slow), len(calls)
    (42, 1)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with unit_scope(Path(d)) as log:
    ...         first = unit("train", slow)
    ...     with unit_scope(Path(d)) as again:
    ...         second = unit("train", slow)                     # from the cache
    >>> first, second, len(calls), again["train"]["cached"]
    (42, 42, 2, True)
    """
    state = _CURRENT.get()
    if state is None:
        return fn()
    if name in state.log:
        raise ValueError(f"unit {name!r} is used twice in one seed; unit names must differ")
    path = state.folder / f"{_file_name(name)}.json"
    # under torch.distributed rank 0's cache decides, so every rank runs the same units
    record = from_rank_zero(lambda: _cached(path, name))
    if record is not None:
        state.log[name] = {"seconds": float(record["seconds"]), "cached": True}
        if state.on_unit is not None:
            state.on_unit(name, float(record["seconds"]), True)
        return record["value"]
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    checkpoint = state.folder / f"{_file_name(name)}.pt"

    def write() -> None:
        atomic_write_json(path, {"name": name, "seconds": seconds, "value": value})
        checkpoint.unlink(missing_ok=True)

    on_rank_zero(write)
    state.log[name] = {"seconds": seconds, "cached": False}
    if state.on_unit is not None:
        state.on_unit(name, seconds, False)
    return value


def _cached(path: Path, name: str) -> dict[str, Any] | None:
    """The unit's cached record, or None (missing or damaged: recomputed)."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        if record.get("name") == name and "value" in record:
            return {**record, "seconds": float(record["seconds"])}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def unit_checkpoint(name: str) -> Path | None:
    """Where the loop may checkpoint the training inside unit ``name`` (None outside the
    runner); the file is removed when the unit finishes.

    Examples
    --------
    >>> unit_checkpoint("train") is None                 # outside the runner: no checkpoint
    True
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d, unit_scope(Path(d)):
    ...     unit_checkpoint("k3/l2sp").name
    'k3_l2sp.pt'
    """
    state = _CURRENT.get()
    if state is None:
        return None
    state.folder.mkdir(parents=True, exist_ok=True)
    return state.folder / f"{_file_name(name)}.pt"
