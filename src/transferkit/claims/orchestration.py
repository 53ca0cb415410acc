"""Run several claims, report them, record them: :func:`reproduce`, the library function
behind ``transferkit reproduce``.

Every claim's config is built once (its budget with the overrides applied, checked for
every claim before any work starts), the executor is chosen once
(:func:`~transferkit.claims.executors.choose_executor`), each claim runs with
:func:`~transferkit.claims.runner.run_claim`, and the report covers every claim whose
JSON is in ``out`` (so claims run one at a time add up). Progress goes, one line per
finished unit and seed with the time left, to ``say`` (by default standard error, also
when it is a file).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._text import duration
from .base import BROKEN, create_claim, list_claims

__all__ = ["ReproduceResult", "reproduce"]


@dataclass
class ReproduceResult:
    """What :func:`reproduce` ran and wrote.

    Examples
    --------
    >>> import tempfile
    >>> from transferkit.claims.demo import demo_claim
    >>> claim = demo_claim()
    >>> from transferkit.claims.base import CLAIMS
    >>> with tempfile.TemporaryDirectory() as out, CLAIMS.temporary("demo", claim):
    ...     run = reproduce(["demo"], out=out, jobs=1, say=None)
    ...     print(run.table.splitlines()[2].split()[:2], run.records)
    ['demo', 'better'] {'demo': None}
    """

    results: list[dict[str, Any]]
    """One result per claim run here (the JSON of ``out/<claim>.json``)."""
    report: Path | None
    """``out/report.md`` (None on a rank other than 0 under torchrun)."""
    records: dict[str, Any] = field(default_factory=dict)
    """Each reported claim's shipped record, summarised (None where there is none)."""
    table: str = ""
    """The terminal table of the claims run here."""

    @property
    def crashed(self) -> list[str]:
        """Claims whose recipe raised (a verdict that does not hold is a result, not this)."""
        return [r["claim"] for r in self.results if r.get("error")]


class _Progress:
    """One line per finished unit and seed: where we are, time spent, time left."""

    def __init__(self, label: str, n_seeds: int, say: Callable[[str], None]) -> None:
        self.label, self.n_seeds, self.say = label, n_seeds, say
        self.start = time.monotonic()
        self.done = 0
        self.computed = 0  # seeds computed in this run (the ones the estimate is based on)

    def _eta(self) -> str:
        left = self.n_seeds - self.done
        elapsed = time.monotonic() - self.start
        if left <= 0 or self.computed == 0:
            return ""
        return f", about {duration(elapsed / self.computed * left)} left"

    def seed(self, seed: int, record: Mapping[str, Any]) -> None:
        self.done += 1
        cached = bool(record.get("cached"))
        self.computed += 0 if cached else 1
        took = "from the cache" if cached else f"{record['seconds']:.0f} s"
        self.say(f"[{self.label}] seed {self.done}/{self.n_seeds} (seed {seed}) done, {took}; "
                 f"{duration(time.monotonic() - self.start)} elapsed{self._eta()}")

    def unit(self, seed: int, unit: str, seconds: float, cached: bool) -> None:
        took = "from the cache" if cached else f"{seconds:.0f} s"
        self.say(f"[{self.label}] seed {self.done + 1}/{self.n_seeds}: {unit} done, {took}")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def reproduce(
    claims: Sequence[str] = (),
    *,
    budget: str = "quick",
    seeds: int | None = None,
    out: str | os.PathLike[str] = "results",
    jobs: int | None = None,
    executor: str = "process",
    address: str | None = None,
    overrides: Mapping[str, str] | None = None,
    record: bool = False,
    tracker: Any = None,
    say: Callable[[str], None] | None = _stderr,
) -> ReproduceResult:
    """Run ``claims`` (all registered ones when empty) and write their JSON, the report
    and, with ``record``, their shipped records.

    Parameters
    ----------
    claims : sequence of str
        Registered claim names (``transferkit list``); repeats are run once.
    budget : {"quick", "full"}
    seeds : int, optional
        Seeds per claim instead of the budget's (a run with fewer than 5 is inconclusive).
    out : path
        Folder of ``<claim>.json``, ``report.md`` and the figures; finished seeds are
        cached under ``out/.partial``, so a killed run resumes.
    jobs, executor, address
        Where the seeds run (:func:`~transferkit.claims.executors.choose_executor`).
    overrides : mapping of str to str
        ``{"field": "value"}`` changes to every claim's config (dotted names for nested
        fields), recorded in the JSON.
    record : bool
        Write each result as the claim's shipped record (a full run as the recipe
        defines it only: ``budget="full"``, no ``seeds`` or ``overrides``).
    tracker : MLflowTracker, optional
        Log each claim to MLflow (:func:`transferkit.tracking.open_tracker`).
    say : callable(str), optional
        Where progress lines go (standard error by default; ``None`` for silence).

    Raises
    ------
    ValueError
        Before any work starts, naming what is wrong: an unknown claim, an override a
        claim's config does not take, ``record`` with a budget it cannot record, an
        executor that does not apply.
    OSError
        ``out`` cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> from transferkit.claims.demo import demo_claim
    >>> claim = demo_claim()
    >>> from transferkit.claims.base import CLAIMS
    >>> with tempfile.TemporaryDirectory() as out, CLAIMS.temporary("demo", claim):
    ...     run = reproduce(["demo"], out=out, jobs=1, say=None)
    ...     run.results[0]["verdict"], run.report.name, run.crashed
    ('holds', 'report.md', [])

    Every registered claim's quick budget, as ``transferkit reproduce --quick`` runs it,
    is ``reproduce()``.
    """
    from ..distributed import rank_and_world_size
    from .executors import choose_executor
    from .overrides import apply_overrides
    from .records import before_run, record_summary, write_record
    from .report import load_results, record_line, terminal_table, verdict_word, write_report
    from .runner import check_config, check_out_dir, run_claim

    if budget not in ("quick", "full"):
        raise ValueError(f"budget must be 'quick' or 'full'; got {budget!r}")
    known = list_claims()
    unknown = [c for c in claims if c not in known]
    if unknown:
        raise ValueError(f"unknown claim {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(known)}")
    names = list(dict.fromkeys(claims)) or known
    overrides = dict(overrides or {})
    configs = {}
    for name in names:  # every override is checked before any work starts
        try:
            configs[name] = apply_overrides(create_claim(name).config(budget), overrides)
            check_config(create_claim(name), configs[name])
        except ValueError as exc:
            raise ValueError(f"override for claim {name!r}: {exc}") from None
    if record and (budget != "full" or seeds is not None or overrides):
        raise ValueError("record writes the record of a full run as the recipe defines it: "
                         "use it with the full budget, without seeds or overrides")
    out_dir = check_out_dir(out)
    rank = rank_and_world_size()[0]
    speak: Callable[[str], None] = (say if say is not None and rank == 0
                                    else (lambda msg: None))
    pool, where = choose_executor(executor, jobs, address)
    results = []
    with pool:
        for i, name in enumerate(names, 1):
            claim, cfg = create_claim(name), configs[name]
            progress = _Progress(f"claim {i}/{len(names)} {name}", seeds or int(cfg.seeds),
                                 speak)
            speak(f"[{progress.label}] running ({budget}, {progress.n_seeds} seeds, {where})")
            start = before_run(claim) if record else None
            result = run_claim(claim, budget, seeds, out_dir, on_seed=progress.seed,
                               overrides=overrides, on_unit=progress.unit, executor=pool,
                               config=cfg)
            if record and not result.get("error"):
                try:
                    speak(f"[{progress.label}] recorded in "
                          f"{write_record(result, claim, start=start)}")
                except ValueError as exc:
                    speak(f"[{progress.label}] not recorded: {exc}")
            verdict = verdict_word(result)
            if result.get("error"):
                verdict += ": " + result["error"]
            cost = result.get("compute_seconds")
            reused = " (resumed: some work came from the cache)" if (
                result.get("cached_seeds") or result.get("cached_units")) else ""
            speak(f"[{progress.label}] {verdict} ({result['seconds']:.0f} s"
                  + (f"; {cost:.0f} s of compute in all{reused}" if cost is not None else "")
                  + f"); {record_line(record_summary(name))}")
            results.append(result)
    if rank != 0:
        return ReproduceResult(results, None)
    found = load_results(out_dir, known)
    summaries = {r["claim"]: record_summary(r["claim"]) for r in found}
    report = write_report(found, out_dir, summaries)
    if tracker is not None:
        for result in results:
            tracker.log_claim(result, out_dir / f"{result['claim']}.json", report)
    return ReproduceResult(results, report, summaries, terminal_table(results, summaries))


def broken_recipes() -> dict[str, str]:
    """Recipe modules that failed to import, with their error (loading them first)."""
    list_claims()
    return dict(BROKEN)
