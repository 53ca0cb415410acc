"""``transferkit multitask``: parse, then call :func:`transferkit.workflows.run_multitask`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import CLIError
from .finetune import finish

HELP = {"multitask": "train several targets of one table together (texts or feature columns)"}


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def add_parser(sub: Any) -> None:
    from ..multitask import list_weightings

    p = sub.add_parser(
        "multitask", help=HELP["multitask"],
        description="Multi-task learning on your table (CSV, JSON Lines or Parquet): one "
        "input, a text column or numeric feature columns, and several targets, classes, "
        "numbers and, for texts, per-word tags (whitespace-separated, one per word), "
        "trained together on a shared encoder with a loss weighting (GradNorm, Chen et al. "
        "ICML 2018, by default). Writes metrics.json (per task), curves.png (loss and weight "
        "per task by epoch) and the model.",
    )
    p.add_argument("--train", type=Path, required=True, help="the table (CSV|JSONL|PARQUET)")
    p.add_argument("--val", type=Path, default=None,
                   help="validation table (default: a random 20%% of --train)")
    p.add_argument("--task", action="append", required=True, metavar="NAME:KIND[:COLUMN]",
                   help="a task: KIND is class, regression or tags (COLUMN defaults to NAME); "
                   "repeat for each task")
    p.add_argument("--text-column", default="text", help="the input text (default 'text')")
    p.add_argument("--features", type=_names, default=(), metavar="COL,COL,...",
                   help="numeric input columns instead of a text")
    p.add_argument("--weighting", choices=list_weightings(), default="gradnorm")
    p.add_argument("--gradnorm-alpha", type=float, default=1.5,
                   help="GradNorm's asymmetry alpha (default 1.5, the paper's)")
    p.add_argument("--backbone", default="auto",
                   help="texts: auto (minilm-l6) or the folder of a Hugging Face encoder")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (momentum 0.9)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128, help="texts: tokens per text")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["float32", "bf16"], default="float32",
                   help="bf16: train under bfloat16 autocast (float32 weights)")
    p.add_argument("--device", default="auto")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--force", action="store_true",
                   help="write into an --out folder that holds other files")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--track", nargs="?", const="", default=None, metavar="URI",
                   help="log the run to MLflow (the extra 'tracking')")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..workflows import InputError
    from ..workflows.multitask import MultitaskOptions, run_multitask

    opts = MultitaskOptions(tasks=tuple(args.task), weighting=args.weighting,
                            backbone=args.backbone, text_column=args.text_column,
                            features=args.features, epochs=args.epochs, lr=args.lr,
                            batch_size=args.batch_size, max_length=args.max_length,
                            gradnorm_alpha=args.gradnorm_alpha, seed=args.seed,
                            precision=args.precision)
    try:
        result = run_multitask(args.train, args.out, val=args.val, options=opts,
                               device=args.device, resume=args.resume, force=args.force)
    except InputError as exc:
        raise CLIError(str(exc)) from None
    curves = {t: {"epoch": result.metrics["curves"]["epoch"], **c}
              for t, c in result.metrics["curves"].items() if t != "epoch"}
    return finish(args, "multitask", result, curves)
