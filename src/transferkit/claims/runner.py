"""The shared runner: seeds (optionally in parallel), statistics, JSON, resume.

Seeds: ``--quick`` runs seeds ``0 .. n-1``, the ones development looks at; ``--full`` runs
a confirmation series that no development run used, so a full verdict is not made on the
seeds its settings were tuned on: series 1 is ``1000 .. 1000+m-1``, and a claim whose
settings were changed after looking at a full verdict moves to the next unused series
(``Claim.series``: 2 is ``2000..``, 3 is ``3000..``). The JSON names the series.

Verdicts have three outcomes (:mod:`transferkit.claims.stats`): a claim **holds** when all
its own comparisons hold, **does not hold** when any of them does not, and is
**inconclusive** otherwise, and always when it ran fewer than :data:`MIN_SEEDS` seeds.

An arm that diverged on a seed (a NaN or infinite metric) is a result, not a crash: it is
recorded as null in the JSON, listed under ``"nonfinite"``, and counted as a loss: for the
statistics it takes the worst finite value any arm reached on any seed of the claim.

Each finished seed, and each finished unit of a seed (an arm, see
:mod:`transferkit.claims.units`), is cached atomically under
``OUT/.partial/<claim>/<budget>-<key>/``, where the key hashes what the numbers depend on
(config, version, threads); a run that is killed and started again with the same
arguments recomputes only the units it had not finished, and reports the compute time the
claim really cost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import os
import platform
import shutil
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from .._io import atomic_write_json, ensure_writable_dir
from ..distributed import from_rank_zero, on_rank_zero
from .base import Claim, SeedResult, create_claim
from .executors import Executor, UnitFn, choose_executor
from .overrides import apply_overrides
from .stats import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, summarize
from .units import unit_scope

__all__ = ["CONFIRMATION_SEED", "MIN_SEEDS", "UNIT_THREADS", "budget_seeds", "check_config",
           "claim_verdict", "judge_arms", "run_claim"]

UNIT_THREADS = 1
"""Intra-op threads of every seed unit, serial or in a worker: a claim's numbers may depend
on the thread count (reduction order), so it is fixed whatever ``--jobs`` is, and recorded
in the JSON and the seed cache's key. Parallelism comes from ``--jobs`` processes."""


def environment() -> dict[str, Any]:
    """Versions and threads recorded with every result."""
    import numpy
    import torch

    return {
        "transferkit": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "threads": UNIT_THREADS,
        "platform": platform.platform(terse=True),
    }


def _jsonable(obj: Any) -> Any:
    """Replace NaN/inf by None and tuples by lists so the JSON is strict."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        return _jsonable(obj.item())
    return obj


def config_key(claim: Claim, cfg: Any) -> str:
    """A short hash of what a claim's numbers depend on (config, version, threads, torch)."""
    import torch

    text = json.dumps(
        {"claim": claim.name, "version": __version__, "cfg": _jsonable(dataclasses.asdict(cfg)),
         "threads": UNIT_THREADS, "torch": torch.__version__},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _as_seed_result(out: SeedResult | Mapping[str, float]) -> SeedResult:
    if isinstance(out, SeedResult):
        return out
    return SeedResult(arms=dict(out))


CONFIRMATION_SEED = 1000
MIN_SEEDS = 5
"""Fewer seeds than this cannot give a verdict other than ``inconclusive``: a paired test on
2 seeds has one degree of freedom (one-sided critical t = 6.31)."""


def budget_seeds(budget: str, n: int, series: int = 1) -> list[int]:
    """The seeds of a budget: ``0..n-1`` for development budgets, and for ``full`` the
    confirmation series ``series`` (``1000*series ..``).

    Examples
    --------
    >>> budget_seeds("quick", 3), budget_seeds("full", 2), budget_seeds("full", 2, series=2)
    ([0, 1, 2], [1000, 1001], [2000, 2001])
    """
    if budget != "full":
        return list(range(n))
    if series < 1:
        raise ValueError(f"a confirmation series is numbered from 1; got {series}")
    start = CONFIRMATION_SEED * series
    return list(range(start, start + n))


def series_name(budget: str, series: int = 1) -> str:
    """``"development"`` for development budgets, ``"confirmation-<k>"`` for ``full``."""
    return f"confirmation-{series}" if budget == "full" else "development"


def claim_verdict(own: Sequence[str], n_seeds: int) -> tuple[str, str | None]:
    """The claim's verdict from its own comparisons' verdicts, and why it was capped.

    Examples
    --------
    >>> claim_verdict(["holds", "holds"], 10)
    ('holds', None)
    >>> claim_verdict(["holds", "does not hold"], 10)
    ('does not hold', None)
    >>> claim_verdict(["holds", "inconclusive"], 10)
    ('inconclusive', None)
    >>> claim_verdict(["holds"], 3)[0]
    'inconclusive'
    """
    if n_seeds < MIN_SEEDS:
        return INCONCLUSIVE, (f"{n_seeds} seed{'s' if n_seeds != 1 else ''} (fewer than "
                              f"{MIN_SEEDS}): too few for any verdict but inconclusive")
    if not own:
        return INCONCLUSIVE, "the claim has no comparison of its own"
    if all(v == HOLDS for v in own):
        return HOLDS, None
    if any(v == DOES_NOT_HOLD for v in own):
        return DOES_NOT_HOLD, None
    return INCONCLUSIVE, None


def _run_seed(
    claim: Claim, cfg: Any, seed: int, threads: int = UNIT_THREADS,
    units: Path | None = None, on_unit: UnitFn | None = None,
) -> dict[str, Any]:
    """Run one seed with ``threads`` intra-op threads (in this or a worker process); return a
    JSON-able record. The caller's thread count is restored afterwards. With ``units``,
    the recipe's :func:`~transferkit.claims.units.unit` calls cache there."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    report = None if on_unit is None else (lambda u, t, c: on_unit(seed, u, t, c))
    scope: contextlib.AbstractContextManager[dict[str, dict[str, Any]]] = (
        unit_scope(units, report) if units is not None else contextlib.nullcontext({})
    )
    try:
        start = time.perf_counter()
        with scope as log:
            res = _as_seed_result(claim.run(cfg, seed))
    finally:
        torch.set_num_threads(before)
    seconds = time.perf_counter() - start
    arms = {str(k): float(v) for k, v in res.arms.items()}
    reused = sum(u["seconds"] for u in log.values() if u["cached"])
    return {
        "seed": seed,
        "arms": arms,
        "extras": _jsonable(res.extras),
        "seconds": seconds,
        "compute_seconds": seconds + reused,
        "units": log,
    }


SeedFn = Callable[[int, Mapping[str, Any]], None]
"""``on_seed(seed, record)``: a seed finished, or came from the cache (``record["cached"]``)."""


def _collect(
    claim: Claim,
    cfg: Any,
    seeds: Sequence[int],
    cache: Path,
    executor: Executor,
    on_seed: SeedFn,
    on_unit: UnitFn | None = None,
) -> dict[int, dict[str, Any]]:
    # under torch.distributed rank 0 decides what is cached, so every rank runs the same
    # seeds (and meets the same collectives) even without a shared file system
    done: dict[int, dict[str, Any]] = from_rank_zero(lambda: _cached_seeds(cache, seeds))
    for seed in seeds:
        if seed in done:
            on_seed(seed, done[seed])
    todo = [s for s in seeds if s not in done]

    def keep(record: dict[str, Any]) -> None:
        atomic_write_json(cache / f"seed{record['seed']}.json", record)
        shutil.rmtree(cache / f"seed{record['seed']}", ignore_errors=True)  # its units

    for record in executor.map(_run_seed, claim, cfg, todo, cache, UNIT_THREADS, on_unit):
        on_rank_zero(functools.partial(keep, record))
        done[record["seed"]] = {**record, "cached": False}
        on_seed(record["seed"], done[record["seed"]])
    return done


def _cached_seeds(cache: Path, seeds: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The finished seeds' records in the cache (a damaged file is removed, not read)."""
    done: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        path = cache / f"seed{seed}.json"
        if path.exists():
            try:
                done[seed] = {**json.loads(path.read_text()), "cached": True}
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
    return done


def _header(claim: Claim, budget: str, seeds: Sequence[int]) -> dict[str, Any]:
    return {
        "claim": claim.name,
        "paper": claim.paper,
        "statement": claim.statement,
        "metric": claim.metric,
        "higher_is_better": claim.higher_is_better,
        "budget": budget,
        "series": series_name(budget, claim.series),
        "seeds": list(seeds),
    }


def _code_fingerprint(claim: Claim) -> str | None:
    """The digest of :func:`~transferkit.claims.records.fingerprint` (the code and full
    config that decide the claim's numbers) as the run starts, so that a result can be
    matched to a record's code; None where the source cannot be read."""
    from .records import fingerprint

    try:
        return str(fingerprint(claim)["digest"])
    except Exception:  # a claim defined where no source file is found
        return None


def judge(
    claim: Claim, records: Mapping[int, Mapping[str, Any]], seeds: Sequence[int]
) -> dict[str, Any]:
    """Arms, paired comparisons and the verdict from per-seed records."""
    arm_names = list(records[seeds[0]]["arms"])
    for s in seeds:
        if list(records[s]["arms"]) != arm_names:
            raise ValueError(
                f"claim {claim.name!r}: seed {s} returned arms {list(records[s]['arms'])}, "
                f"seed {seeds[0]} returned {arm_names}"
            )
    return judge_arms(claim, {a: [records[s]["arms"][a] for s in seeds] for a in arm_names},
                      seeds)


def check_config(claim: Claim, cfg: Any) -> None:
    """Refuse, before any seed runs, a config whose ``arms`` (for recipes that have that
    field) leave out an arm a comparison that must be made needs (an optional comparison
    may lose its arms: it is then skipped).

    Examples
    --------
    >>> from transferkit.claims import create_claim
    >>> claim = create_claim("maml")
    >>> import dataclasses
    >>> check_config(claim, dataclasses.replace(claim.config("quick"), arms=("maml",)))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: claim 'maml': its config's arms ('maml',) leave out 'pretrained', which ...
    """
    arms = getattr(cfg, "arms", None)
    if not isinstance(arms, (tuple, list)):
        return
    for c in claim.comparisons:
        if getattr(c, "optional", False):
            continue
        for name in c.arms():
            base = name.rsplit("/", 1)[-1].split("@", 1)[0]
            if base not in arms:
                raise ValueError(f"claim {claim.name!r}: its config's arms {tuple(arms)} leave "
                                 f"out {base!r}, which the comparison {c.label} needs")


def judge_arms(
    claim: Claim, values: Mapping[str, Sequence[float | None]], seeds: Sequence[int]
) -> dict[str, Any]:
    """Comparisons and the verdict from each arm's per-seed values (None: non-finite), in
    the order of ``seeds``; what :func:`judge` does after gathering the seeds' records,
    and what a stored result's verdict can be recomputed with.

    Examples
    --------
    >>> import tempfile
    >>> from transferkit.claims.demo import demo_claim
    >>> claim = demo_claim()
    >>> verdict = judge_arms(claim, {"base": [0.5, 0.52, 0.49, 0.51, 0.5],
    ...                              "better": [0.51, 0.52, 0.5, 0.52, 0.5]}, [0, 1, 2, 3, 4])
    >>> verdict["verdict"]                        # +0.006, far below the 0.05 it needs
    'does not hold'
    """
    def value(v: Any) -> float:
        return math.nan if v is None else float(v)

    arms = {a: [value(v) for v in vals] for a, vals in values.items()}
    for a, vals in arms.items():
        if len(vals) != len(seeds):
            raise ValueError(f"claim {claim.name!r}: arm {a!r} has {len(vals)} values for "
                             f"{len(seeds)} seeds")
    nonfinite = {
        a: [s for s, v in zip(seeds, vals, strict=True) if not math.isfinite(v)]
        for a, vals in arms.items()
    }
    nonfinite = {a: ss for a, ss in nonfinite.items() if ss}
    finite = [v for vals in arms.values() for v in vals if math.isfinite(v)]
    if nonfinite and not finite:
        raise ValueError(f"claim {claim.name!r}: every arm is non-finite on every seed")
    worst = (min(finite) if claim.higher_is_better else max(finite)) if finite else math.nan
    scored = {a: [v if math.isfinite(v) else worst for v in vals] for a, vals in arms.items()}
    comparisons = []
    for c in claim.comparisons:
        missing = [a for a in c.arms() if a not in arms]
        if missing and getattr(c, "optional", False):
            continue  # this budget did not run those arms
        if missing:
            raise KeyError(f"claim {claim.name!r}: comparison names unknown arms {missing}")
        stat = c.evaluate(scored, claim.higher_is_better)
        comparisons.append({"method": c.method, "baseline": c.baseline, "label": c.label,
                            "kind": type(c).__name__, "own": c.own, **stat})
    verdict, why = claim_verdict([c["verdict"] for c in comparisons if c["own"]], len(seeds))
    return {
        "arms": arms,
        "nonfinite": nonfinite,
        "summary": {a: summarize(scored[a], claim.bounds) for a in arms},
        "comparisons": comparisons,
        "verdict": verdict,
        "verdict_note": why,
        "holds": verdict == HOLDS,
    }


def run_claim(
    name: str | Claim,
    budget: str = "quick",
    n_seeds: int | None = None,
    out_dir: str | os.PathLike[str] = "results",
    jobs: int = 1,
    on_seed: SeedFn | None = None,
    overrides: Mapping[str, str] | None = None,
    on_unit: UnitFn | None = None,
    executor: Executor | None = None,
    config: Any = None,
) -> dict[str, Any]:
    """Run every seed of claim ``name`` (a registered name or a Claim) and write
    ``OUT/<name>.json``; return the result. :func:`transferkit.claims.reproduce` runs
    several claims, writes the report and records; this runs one.

    Seeds run on ``executor`` (see :mod:`transferkit.claims.executors`); by default a pool
    of ``jobs`` local processes (``jobs=1``: in this process, where ``on_unit`` reports
    each unit). Under ``torch.distributed`` the seeds run one after another, every rank
    taking part in each seed's training, and only rank 0 writes.

    ``overrides`` (``{"field": "value"}``, dotted names for nested configs) change the
    budget's config (see :mod:`transferkit.claims.overrides`); they are recorded in the JSON
    and, through the config, in the seed cache's key. ``config``, when given, is that
    config already built (the budget's with ``overrides`` applied), used as it is.

    A crash inside the recipe does not propagate: the result then has ``"error"`` set
    (with the traceback's last lines), ``"verdict": "error"`` and ``"holds": None``, so
    other claims still run.

    Examples
    --------
    >>> import tempfile
    >>> from transferkit.claims.demo import demo_claim
    >>> claim = demo_claim()
    >>> with tempfile.TemporaryDirectory() as out:
    ...     result = run_claim(claim, "quick", out_dir=out)
    >>> result["verdict"], result["seeds"], result["comparisons"][0]["required_delta"]
    ('holds', [0, 1, 2, 3, 4], 0.05)
    """
    claim = name if isinstance(name, Claim) else create_claim(name)
    name = claim.name
    cfg = config if config is not None else apply_overrides(claim.config(budget),
                                                            overrides or {})
    check_config(claim, cfg)
    if n_seeds is not None:
        if n_seeds < 1:
            raise ValueError(f"the number of seeds must be >= 1; got {n_seeds}")
    seeds = budget_seeds(budget, n_seeds if n_seeds is not None else int(cfg.seeds),
                         claim.series)
    out = Path(out_dir)
    cache = out / ".partial" / name / f"{budget}-{config_key(claim, cfg)}"
    start = time.perf_counter()
    result = _header(claim, budget, seeds)
    result["fingerprint"] = _code_fingerprint(claim)
    try:
        own = executor is None
        if executor is None:
            executor = choose_executor("process", jobs=max(1, jobs))[0]
        try:
            records = _collect(claim, cfg, seeds, cache, executor,
                               on_seed or (lambda s, r: None), on_unit)
        finally:
            if own:
                executor.close()
        result.update(judge(claim, records, seeds))
        result["extras"] = {str(s): records[s]["extras"] for s in seeds if records[s]["extras"]}
        # what each seed really cost, units and seeds reused from a killed run included
        result["seed_seconds"] = [
            records[s].get("compute_seconds", records[s]["seconds"]) for s in seeds
        ]
        result["compute_seconds"] = sum(result["seed_seconds"])
        result["seed_run_seconds"] = [  # what this invocation spent on each seed
            0.0 if records[s].get("cached") else records[s]["seconds"] for s in seeds
        ]
        result["cached_seeds"] = [s for s in seeds if records[s].get("cached")]
        result["cached_units"] = {
            str(s): sorted(u for u, info in records[s].get("units", {}).items()
                           if info.get("cached"))
            for s in seeds if not records[s].get("cached")
            and any(info.get("cached") for info in records[s].get("units", {}).values())
        }
        result["error"] = None
    except Exception as exc:  # a failing recipe must not stop the other claims
        tail = "".join(traceback.format_exception(exc)[-3:]).strip()
        result.update(
            {
                "arms": {},
                "comparisons": [],
                "verdict": "error",
                "holds": None,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": tail,
            }
        )
    result["config"] = dataclasses.asdict(cfg)
    result["overrides"] = dict(overrides or {})
    result["seconds"] = time.perf_counter() - start
    result["environment"] = environment()
    atomic_write_json(out / f"{name}.json", _jsonable(result))  # rank 0 alone writes
    return result


def check_out_dir(out_dir: str | os.PathLike[str]) -> Path:
    """Create ``out_dir`` if needed and prove it is writable; raise OSError if not."""
    return ensure_writable_dir(out_dir)
