"""``transferkit labelshift``: is the class balance shifting, how much, and what now?

Parses the arguments and dispatches to :func:`transferkit.workflows.run_labelshift`, which
reads a labelled holdout and unlabelled target predictions of the same model, runs the BBSD
shift test, estimates the target prior with intervals and the class weights (any
registered estimator), and writes the corrected target probabilities. The input formats
are documented in :mod:`transferkit.workflows.labelshift`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import CLIError

HELP = {"labelshift": "detect, estimate and correct label shift from a model's predictions"}


def add_parser(sub: Any) -> None:
    from ..labelshift import list_estimators

    p = sub.add_parser(
        "labelshift",
        help=HELP["labelshift"],
        description=(
            "Detect label shift (chi-squared test on predicted labels), estimate the target "
            "class prior and weights, and write corrected target probabilities. Lipton, "
            "Wang, Smola, ICML 2018."
        ),
    )
    p.add_argument("--holdout", required=True, type=Path,
                   help="labelled holdout: CSV (label + p_<class>... or pred), .npy or Parquet")
    p.add_argument("--target", required=True, type=Path,
                   help="target predictions in the same format without labels")
    p.add_argument("--method", choices=list_estimators(), default="bbse",
                   help="a registered label-shift estimator (default bbse)")
    p.add_argument("--soft", action="store_true",
                   help="BBSE/RLLS: use probabilities (soft confusion) instead of argmax")
    p.add_argument("--calibration", choices=("none", "ts", "bcts"), default=None,
                   help="MLLS: calibrate probabilities on the holdout first (default: the "
                   "estimator's own, bcts)")
    p.add_argument("--alpha", type=float, default=0.05, help="level of the shift test")
    p.add_argument("--confidence", type=float, default=0.95, help="of the intervals")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for corrected_target.csv|.npy and labelshift.json")
    p.add_argument("--force", action="store_true",
                   help="estimate even from a target of fewer than 5 rows per class (exact, "
                   "wide intervals) or a holdout that cannot tell the classes apart")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..workflows import InputError, run_labelshift

    options: dict[str, Any] = {}
    if args.soft:
        options["soft"] = True
    if args.calibration is not None:
        options["calibration"] = None if args.calibration == "none" else args.calibration
    try:
        report, written = run_labelshift(args.holdout, args.target, args.out, args.method,
                                         alpha=args.alpha, confidence=args.confidence,
                                         force=args.force, options=options)
    except InputError as exc:
        raise CLIError(str(exc)) from None
    print("\n".join(report.lines()))
    if written:
        print(f"wrote {' and '.join(str(p) for p in written)}")
    return 0
