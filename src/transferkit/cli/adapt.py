"""``transferkit adapt``: parse, then call :func:`transferkit.workflows.run_adapt`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import CLIError
from .finetune import add_common, common_options, finish

HELP = {"adapt": "adapt a pretrained backbone from labelled source to unlabelled target"}


def add_parser(sub: Any) -> None:
    from ..adaptation import list_adaptations

    p = sub.add_parser(
        "adapt", help=HELP["adapt"],
        description="Unsupervised domain adaptation (the registered objectives: DANN, MSTN, "
        "MMD, CORAL and any you register) from labelled source images or texts to "
        "unlabelled target ones; the checkpoint is chosen by deep "
        "embedded validation (no target labels). Writes the same files as finetune.",
    )
    p.add_argument("--source", type=Path, required=True,
                   help="labelled images (DIR|CSV|NPZ) or texts (CSV|JSONL|PARQUET)")
    p.add_argument("--target", type=Path, required=True,
                   help="unlabelled images (DIR|CSV|NPY|NPZ) or texts (labels, if any, only "
                   "reported)")
    p.add_argument("--method", choices=list_adaptations(), default="dann")
    p.add_argument("--weight", type=float, default=1.0, help="weight of the adaptation loss")
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..workflows import InputError
    from ..workflows.adapt import AdaptOptions, run_adapt

    opts = AdaptOptions(method=args.method, weight=args.weight, **common_options(args))
    try:
        result = run_adapt(args.source, args.target, args.out, options=opts,
                           device=args.device, workers=args.workers, resume=args.resume,
                           skip_bad=args.skip_bad, force=args.force)
    except InputError as exc:
        raise CLIError(str(exc)) from None
    return finish(args, "adapt", result, {args.method: result.metrics["curve"]})
