"""``transferkit reproduce``: run claims, print the verdicts, write JSON and a report."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import CLIError


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


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
        return f", about {_duration(elapsed / self.computed * left)} left"

    def seed(self, seed: int, record: Mapping[str, Any]) -> None:
        self.done += 1
        cached = bool(record.get("cached"))
        self.computed += 0 if cached else 1
        took = "from the cache" if cached else f"{record['seconds']:.0f} s"
        self.say(f"[{self.label}] seed {self.done}/{self.n_seeds} (seed {seed}) done, {took}; "
                 f"{_duration(time.monotonic() - self.start)} elapsed{self._eta()}")

    def unit(self, seed: int, unit: str, seconds: float, cached: bool) -> None:
        took = "from the cache" if cached else f"{seconds:.0f} s"
        self.say(f"[{self.label}] seed {self.done + 1}/{self.n_seeds}: {unit} done, {took}")


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


HELP = {"reproduce": "re-check papers' claims over several seeds"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "reproduce",
        help=HELP["reproduce"],
        description="Run claims (all when none is named), print each verdict, and write "
        "OUT/<claim>.json and OUT/report.md with plots. Finished seeds are cached under "
        "OUT/.partial, so a killed run resumes.",
    )
    p.add_argument(
        "claims", nargs="*", metavar="CLAIM", help="claims to run (see `transferkit list`)"
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--quick",
        dest="budget",
        action="store_const",
        const="quick",
        help="small budget, a minute or so per claim (default)",
    )
    budget.add_argument(
        "--full",
        dest="budget",
        action="store_const",
        const="full",
        help="the budget verdicts are made with (>= 10 seeds)",
    )
    p.set_defaults(budget="quick")
    p.add_argument(
        "--seeds", type=_positive, default=None, help="number of seeds (overrides the budget)"
    )
    p.add_argument("--out", default="results", help="output directory (default: results)")
    p.add_argument(
        "--jobs", type=_positive, default=None,
        help="seeds run in parallel processes (default: one per CPU core); every seed runs "
        "on one intra-op thread, so the numbers do not depend on it",
    )
    p.add_argument(
        "--executor", choices=("process", "ray", "serial"), default="process",
        help="where the seeds run: a local process pool (default), a Ray cluster (the extra "
        "'ray'; a local Ray instance without --address), or this process",
    )
    p.add_argument("--address", default=None,
                   help="the Ray cluster to join (ray://HOST:10001, HOST:6379 or auto)")
    p.add_argument("--track", nargs="?", const="", default=None, metavar="URI",
                   help="log each claim to MLflow (the extra 'tracking'): config, per-seed arm "
                   "values, the JSON and the report; to the local store sqlite:///mlflow.db "
                   "unless a tracking URI is given")
    p.add_argument("--record", action="store_true",
                   help="with --full: write each claim's result as its shipped record "
                   "(transferkit/claims/records/<claim>.json), the evidence later quick runs "
                   "are shown beside")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-seed lines")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        metavar="FIELD=VALUE",
        help="override a field of the claim's config (repeatable; nested: black_box.steps=300); "
        "recorded in the JSON",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..claims import create_claim, list_claims
    from ..claims.base import BROKEN
    from ..claims.executors import create_executor
    from ..claims.overrides import apply_overrides, parse_assignments
    from ..claims.records import record_summary
    from ..claims.report import load_results, terminal_table, write_report
    from ..claims.runner import check_out_dir
    from ..distributed import rank_and_world_size
    from ..tracking import open_tracker

    known = list_claims()
    for module, error in BROKEN.items():
        print(f"transferkit: warning: recipe {module!r} failed to load: {error}", file=sys.stderr)
    unknown = [c for c in args.claims if c not in known]
    if unknown:
        raise CLIError(f"unknown claim {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    names = list(dict.fromkeys(args.claims)) or known
    try:
        overrides = parse_assignments(args.overrides)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    for name in names:  # check every override before any work starts
        try:
            apply_overrides(create_claim(name).config(args.budget), overrides)
        except ValueError as exc:
            raise CLIError(f"--set for claim {name!r}: {exc}") from None
    try:
        out = check_out_dir(args.out)
    except OSError as exc:
        raise CLIError(
            f"cannot write to output directory {args.out!r}: {exc.strerror or exc}"
        ) from None
    if args.address is not None and args.executor != "ray":
        raise CLIError("--address is for --executor ray")
    if args.record and (args.budget != "full" or args.seeds is not None or overrides):
        raise CLIError("--record writes the record of a full run as the recipe defines it: "
                       "use it with --full, without --seeds or --set")
    rank, world = rank_and_world_size()
    if world > 1 and args.executor != "process":
        raise CLIError("under torchrun the ranks train each seed together, one seed after "
                       f"another; --executor {args.executor} does not apply")
    if args.quiet or rank != 0:
        os.environ["TRANSFERKIT_QUIET"] = "1"

    def say(msg: str) -> None:
        if not args.quiet and rank == 0:
            print(msg, file=sys.stderr, flush=True)

    jobs = args.jobs if args.jobs is not None else max(1, os.cpu_count() or 1)
    tracker = None
    if args.track is not None and rank == 0:
        try:
            tracker = open_tracker(args.track)
        except ImportError as exc:
            raise CLIError(str(exc)) from None
    if world > 1:
        executor = create_executor("serial")
        where = f"{world} ranks under torch.distributed"
    else:
        serial = args.executor == "serial" or (args.executor == "process" and jobs <= 1)
        try:
            executor = create_executor("serial" if serial else args.executor, jobs=jobs,
                                       address=args.address)
        except ImportError as exc:
            raise CLIError(str(exc)) from None
        except (ConnectionError, RuntimeError, ValueError) as exc:  # Ray could not start
            raise CLIError(f"--executor {args.executor}: {exc}") from None
        where = ("1 process" if serial else
                 f"{jobs} process{'es' if jobs > 1 else ''}" if args.executor == "process"
                 else "Ray" + (f" at {args.address}" if args.address else " (local)"))
    with executor:
        results = _run_all(args, names, overrides, out, executor, where, say)
    if rank != 0:
        return 0 if not any(r.get("error") for r in results) else 1
    # the report covers every claim whose JSON is in OUT, so claims run one at a time add up
    found = load_results(out, known)
    records = {r["claim"]: record_summary(r["claim"]) for r in found}
    print(terminal_table(results, records))
    report = write_report(found, out, records)
    print(f"\nwrote {len(results)} result file(s) and {report}")
    if tracker is not None:
        for result in results:
            tracker.log_claim(result, out / f"{result['claim']}.json", report)
        print(f"tracked {len(results)} run(s) in MLflow at {tracker.uri}")
    crashed = [r["claim"] for r in results if r.get("error")]
    if crashed:  # a verdict that does not hold is a result; a crash is not
        print(f"transferkit: error: claim(s) ended in ERROR: {', '.join(crashed)}",
              file=sys.stderr)
        return 1
    return 0


def _run_all(args: argparse.Namespace, names: list[str], overrides: Mapping[str, str],
             out: Any, executor: Any, where: str, say: Callable[[str], None]
             ) -> list[dict[str, Any]]:
    from ..claims import create_claim
    from ..claims.overrides import apply_overrides
    from ..claims.records import before_run, record_summary, write_record
    from ..claims.report import record_line, verdict_word
    from ..claims.runner import run_claim

    results = []
    for i, name in enumerate(names, 1):
        cfg = apply_overrides(create_claim(name).config(args.budget), overrides)
        progress = _Progress(f"claim {i}/{len(names)} {name}", args.seeds or int(cfg.seeds),
                             say)
        say(f"[{progress.label}] running ({args.budget}, {progress.n_seeds} seeds, {where})")
        start = before_run(create_claim(name)) if args.record else None
        result = run_claim(name, args.budget, args.seeds, out, on_seed=progress.seed,
                           overrides=overrides, on_unit=progress.unit, executor=executor)
        verdict = verdict_word(result)
        if result.get("error"):
            verdict += ": " + result["error"]
        cost = result.get("compute_seconds")
        reused = " (resumed: some work came from the cache)" if (
            result.get("cached_seeds") or result.get("cached_units")) else ""
        if args.record and not result.get("error"):
            try:
                path = write_record(result, create_claim(name), start=start)
                say(f"[{progress.label}] recorded in {path}")
            except ValueError as exc:
                say(f"[{progress.label}] not recorded: {exc}")
        say(f"[{progress.label}] {verdict} ({result['seconds']:.0f} s"
            + (f"; {cost:.0f} s of compute in all{reused}" if cost is not None else "")
            + f"); {record_line(record_summary(name))}")
        results.append(result)
    return results
