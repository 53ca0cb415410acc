"""``transferkit reproduce``: run claims, print the verdicts, write JSON and a report."""

from __future__ import annotations

import argparse
import os
import sys
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
    """Parse, then call :func:`transferkit.claims.reproduce`; print the table."""
    from ..claims.orchestration import broken_recipes, reproduce
    from ..claims.overrides import parse_assignments
    from ..distributed import rank_and_world_size

    for module, error in broken_recipes().items():
        print(f"transferkit: warning: recipe {module!r} failed to load: {error}", file=sys.stderr)
    try:
        overrides = parse_assignments(args.overrides)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    rank = rank_and_world_size()[0]
    if args.quiet or rank != 0:
        os.environ["TRANSFERKIT_QUIET"] = "1"
    tracker = None
    if args.track is not None and rank == 0:
        from ..tracking import open_tracker

        try:
            tracker = open_tracker(args.track)
        except ImportError as exc:
            raise CLIError(str(exc)) from None
    try:
        run = reproduce(args.claims, budget=args.budget, seeds=args.seeds, out=args.out,
                        jobs=args.jobs, executor=args.executor, address=args.address,
                        overrides=overrides, record=args.record, tracker=tracker,
                        **({"say": None} if args.quiet else {}))
    except OSError as exc:
        raise CLIError(f"cannot write to output directory {args.out!r}: "
                       f"{exc.strerror or exc}") from None
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    except (ValueError, ConnectionError, RuntimeError) as exc:  # bad input; Ray not started
        raise CLIError(_flag_names(str(exc))) from None
    if run.report is None:  # a rank other than 0 under torchrun
        return 1 if run.crashed else 0
    print(run.table)
    print(f"\nwrote {len(run.results)} result file(s) and {run.report}")
    if tracker is not None:
        print(f"tracked {len(run.results)} run(s) in MLflow at {tracker.uri}")
    if run.crashed:  # a verdict that does not hold is a result; a crash is not
        print(f"transferkit: error: claim(s) ended in ERROR: {', '.join(run.crashed)}",
              file=sys.stderr)
        return 1
    return 0


def _flag_names(message: str) -> str:
    """The library's words for the options, as the command line spells them."""
    for word, flag in (("override for claim", "--set for claim"),
                       ("record writes", "--record writes"),
                       ("with the full budget, without seeds or overrides",
                        "with --full, without --seeds or --set"),
                       ("an address is for the ray executor", "--address is for --executor ray")):
        message = message.replace(word, flag)
    return message
