"""``transferkit finetune`` and ``transferkit predict``: parse, then call the workflows.

The work is done by :func:`transferkit.workflows.run_finetune` and
:func:`transferkit.workflows.run_predict` (see :mod:`transferkit.workflows.finetune`).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import CLIError

HELP = {"finetune": "fine-tune a pretrained backbone on your labelled images",
        "predict": "per-image class probabilities of a fine-tuned model, as CSV"}


def _alpha(text: str) -> float | str | tuple[float, ...]:
    if text == "auto":
        return text
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number, a comma-separated list (0.01,0.1) or 'auto'; got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values


def _backbone(usable: list[str], absent: list[str]) -> Any:
    """``--backbone``'s type: a usable name, ``auto``, or an existing folder."""
    def parse(text: str) -> str:
        if text == "auto" or text in usable or Path(text).is_dir():
            return text
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither auto, one of {', '.join(usable)}, nor a folder"
            + (f" (not installed here: {'; '.join(absent)})" if absent else ""))
    return parse


def add_text_columns(p: Any) -> None:
    """``--text-column`` / ``--label-column``: where a table of texts holds them."""
    p.add_argument("--text-column", default=None,
                   help="texts: the column holding the text (default 'text'); a CSV, JSON "
                   "Lines or Parquet file with this column is read as texts")
    p.add_argument("--label-column", default=None,
                   help="the column holding the label (default 'label'; empty: unlabelled)")


def add_common(p: Any) -> None:
    """Options ``finetune`` and ``adapt`` share."""
    from ..nets import image_backbones, text_backbones

    found = {**image_backbones(), **text_backbones()}
    usable = [name for name, missing in found.items() if missing is None]
    absent = [f"{name} ({missing})" for name, missing in found.items() if missing]
    p.add_argument("--backbone", default="auto", type=_backbone(usable, absent),
                   metavar="NAME|FOLDER",
                   help="pretrained architecture: auto (efficientnet-lite0 for images, "
                   f"minilm-l6 for texts), {', '.join(usable)}, or for texts the folder of a "
                   "Hugging Face encoder (BERT, RoBERTa, DistilBERT...)"
                   + (f"; not installed: {'; '.join(absent)}" if absent else ""))
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="your own weights for --backbone (state dict or .safetensors)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (momentum 0.9)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--image-size", type=int, default=None,
                   help="input size (default: the backbone's, 224); smaller is faster")
    add_text_columns(p)
    p.add_argument("--max-length", type=int, default=128,
                   help="texts: tokens kept per text (default 128; longer texts are cut)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["float32", "bf16"], default="float32",
                   help="bf16: train under bfloat16 autocast (float32 weights); 1.45x faster "
                   "for MLP-sized networks on CPUs with bfloat16 instructions, slower for "
                   "the image backbones (their convolutions), whose weights are stored "
                   "channels_last instead (1.5-2x on a CPU)")
    p.add_argument("--device", default="auto", help="auto (GPU if any), cpu, cuda, cuda:N")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip (and count) unreadable image files instead of stopping")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--force", action="store_true",
                   help="write into an --out folder that holds other files")
    p.add_argument("--out", type=Path, required=True, help="folder for the model and reports")
    p.add_argument("--track", nargs="?", const="", default=None, metavar="URI",
                   help="log the run to MLflow (the extra 'tracking'): settings, per-epoch "
                   "curves, final metrics and the files written; to the local store "
                   "sqlite:///mlflow.db unless a tracking URI is given")


def finish(args: argparse.Namespace, command: str, result: Any,
           curves: Mapping[str, Mapping[str, Any]]) -> int:
    """Print what a workflow did and track it when asked (rank 0 only under torchrun)."""
    from ..distributed import rank_and_world_size

    if rank_and_world_size()[0] != 0:
        return 0
    print("\n".join(result.lines()))
    print(f"wrote {', '.join(str(p) for p in result.written)}")
    if args.track is not None:
        from ..tracking import open_tracker

        try:
            tracker = open_tracker(args.track)
        except ImportError as exc:
            raise CLIError(str(exc)) from None
        run_id = tracker.log_result(command, result, curves)
        print(f"tracked as MLflow run {run_id} at {tracker.uri}")
    return 0


def common_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of :func:`add_common` that the workflows' option classes take."""
    return {"backbone": args.backbone, "epochs": args.epochs, "lr": args.lr,
            "checkpoint": None if args.checkpoint is None else str(args.checkpoint),
            "batch_size": args.batch_size, "image_size": args.image_size, "seed": args.seed,
            "text_column": args.text_column or "text",
            "label_column": args.label_column or "label", "max_length": args.max_length,
            "precision": args.precision}


def add_parser(sub: Any) -> None:
    from ..finetune import list_finetune_methods

    p = sub.add_parser(
        "finetune", help=HELP["finetune"],
        description="Fine-tune a pretrained backbone (or your checkpoint) on your images or "
        "texts (a CSV, JSON Lines or Parquet table with a text column) or on a folder of class "
        "folders, a CSV of path,label or an .npz; L2-SP and its family (Li et al., ICML "
        "2018). Writes the model, metrics.json, confusion.png and learning_curve.png.",
    )
    p.add_argument("--train", type=Path, required=True,
                   help="labelled images (DIR|CSV|NPZ) or texts (CSV|JSONL|PARQUET with a "
                   "text column)")
    p.add_argument("--val", type=Path, default=None,
                   help="validation set (default: a stratified 20%% of --train)")
    p.add_argument("--test", type=Path, default=None, help="test set, only reported")
    p.add_argument("--method", choices=list_finetune_methods(), default="l2sp")
    p.add_argument("--freeze", type=int, default=0, help="freeze the first N feature blocks")
    p.add_argument("--alpha", type=_alpha, default=0.1,
                   help="penalty strength (default 0.1); a list such as 0.01,0.1, or 'auto' "
                   "for 0.001,0.01,0.1,1 (times 0.01 for l1sp and group-lasso-sp): the best "
                   "value on the validation set is kept, found as --search says")
    p.add_argument("--search", choices=["grid", "halving"], default="grid",
                   help="with several alphas: 'grid' (default) trains one model per value to "
                   "the end (4 times one model's cost for auto); 'halving' trains all for a "
                   "short share of the epochs and the better half on, until one trains to "
                   "the end (twice the cost), but chose worse alphas on the l2sp claims' "
                   "settings (benchmarks/bench_alpha_search.py)")
    p.add_argument("--keep-runs", action="store_true",
                   help="with several alphas, keep every model's weights under runs/ (by "
                   "default only the chosen one's)")
    add_common(p)
    p.set_defaults(func=run)

    q = sub.add_parser(
        "predict", help=HELP["predict"],
        description="Write path,[label,]p_<class>... for every image (row,... for every "
        "text); the CSV is what "
        "`transferkit labelshift` reads (--holdout with labels, --target without).",
    )
    q.add_argument("--model", type=Path, required=True,
                   help="the --out folder of `transferkit finetune` or `adapt`")
    q.add_argument("--images", type=Path, required=True,
                   help="DIR|CSV|NPY|NPZ, or for a text model a CSV/JSONL/Parquet of texts")
    add_text_columns(q)
    q.add_argument("--out", type=Path, required=True, help="the CSV to write")
    q.add_argument("--device", default="auto")
    q.add_argument("--workers", type=int, default=0)
    q.add_argument("--skip-bad", action="store_true")
    q.set_defaults(func=run_predict)


def run(args: argparse.Namespace) -> int:
    from ..workflows import FinetuneOptions, InputError, run_finetune

    opts = FinetuneOptions(method=args.method, alpha=args.alpha, freeze=args.freeze,
                           keep_runs=args.keep_runs, search=args.search,
                           **common_options(args))
    try:
        result = run_finetune(args.train, args.out, val=args.val, test=args.test, options=opts,
                              device=args.device, workers=args.workers, resume=args.resume,
                              skip_bad=args.skip_bad, force=args.force)
    except InputError as exc:
        raise CLIError(str(exc)) from None
    return finish(args, "finetune", result, result.metrics["curves"])


def run_predict(args: argparse.Namespace) -> int:
    from ..workflows import InputError
    from ..workflows import run_predict as predict
    from ..workflows.images import accuracy_text

    try:
        columns = {k: v for k, v in (("text_column", args.text_column),
                                     ("label_column", args.label_column)) if v}
        path, metrics = predict(args.model, args.images, args.out, device=args.device,
                                workers=args.workers, skip_bad=args.skip_bad, columns=columns)
    except InputError as exc:
        raise CLIError(str(exc)) from None
    if metrics is not None:
        print(accuracy_text(metrics, f"labelled {metrics.get('input', 'items')}"))
    print(f"wrote {path}")
    return 0
