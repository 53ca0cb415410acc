"""``transferkit labelshift``: is the class balance shifting, how much, and what now?

Reads a labelled holdout and unlabelled target predictions of the same model, runs the
BBSD shift test, estimates the target prior (BBSE, RLLS or MLLS) with intervals and the
class weights, and writes the corrected target probabilities.

Input formats (chosen by extension):

- CSV with a header. Holdout: a column ``label`` and either one column ``p_<class>`` per
  class (probabilities) or a column ``pred`` (hard predictions). Target: the same without
  ``label``. Class names are the ``p_`` suffixes (or the labels seen in the holdout).
- ``.npy``: holdout ``(n, 1 + k)`` = label then k probabilities, or ``(n, 2)`` = label
  and hard prediction; target ``(n, k)`` probabilities or ``(n,)`` hard predictions.
  Classes are ``0 .. k - 1``.
- Parquet (``.parquet``/``.pq``, needs ``pip install transferkit[parquet]``): the CSV
  columns.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import CLIError

SUM_TOL = 1e-3


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "labelshift",
        help="detect, estimate and correct label shift from a model's predictions",
        description=(
            "Detect label shift (chi-squared test on predicted labels), estimate the target "
            "class prior and weights (BBSE, RLLS or MLLS), and write corrected target "
            "probabilities. Lipton, Wang, Smola, ICML 2018."
        ),
    )
    p.add_argument("--holdout", required=True, type=Path,
                   help="labelled holdout: CSV (label + p_<class>... or pred), .npy or Parquet")
    p.add_argument("--target", required=True, type=Path,
                   help="target predictions in the same format without labels")
    p.add_argument("--method", choices=("bbse", "rlls", "mlls"), default="bbse")
    p.add_argument("--soft", action="store_true",
                   help="BBSE/RLLS: use probabilities (soft confusion) instead of argmax")
    p.add_argument("--calibration", choices=("none", "ts", "bcts"), default="bcts",
                   help="MLLS: calibrate probabilities on the holdout first (default bcts)")
    p.add_argument("--alpha", type=float, default=0.05, help="level of the shift test")
    p.add_argument("--confidence", type=float, default=0.95, help="of the intervals")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for corrected_target.csv|.npy and labelshift.json")
    p.set_defaults(func=run)


@dataclass
class _Table:
    """Predictions read from one file."""

    classes: list[str]  # class names from p_ columns ([] when hard predictions)
    proba: np.ndarray | None  # (n, k) float64
    pred: list[str] | np.ndarray | None  # hard predictions (names or ints)
    labels: list[str] | np.ndarray | None
    kind: str  # "csv", "npy", "parquet"


def _fmt_row(i: int) -> str:
    return f"row {i + 2}"  # header is row 1


def _parse_float(text: str, where: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise CLIError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(v):
        raise CLIError(f"{where}: value is {text!r} (NaN or infinite)")
    return v


def _columns_table(cols: dict[str, list[Any]], path: Path, holdout: bool, kind: str) -> _Table:
    names = list(cols)
    has_label = "label" in cols
    if holdout and not has_label:
        raise CLIError(f"{path}: the holdout needs a 'label' column; found {names}")
    if not holdout and has_label:
        names_wo = [c for c in names if c != "label"]
        cols = {c: cols[c] for c in names_wo}
    p_cols = [c for c in cols if c.startswith("p_")]
    if p_cols and "pred" in cols:
        raise CLIError(f"{path}: give either p_<class> columns or a 'pred' column, not both")
    other = [c for c in cols if c not in p_cols and c not in ("pred", "label")]
    if other:
        raise CLIError(f"{path}: unexpected column(s) {other}; expected "
                       f"{'label and ' if holdout else ''}p_<class>... or pred")
    labels = [str(v).strip() for v in cols["label"]] if holdout else None
    if p_cols:
        if len(p_cols) < 2:
            raise CLIError(f"{path}: need at least 2 p_<class> columns; found {p_cols}")
        classes = [c[2:] for c in p_cols]
        n = len(cols[p_cols[0]])
        proba = np.empty((n, len(p_cols)))
        for j, c in enumerate(p_cols):
            for i, v in enumerate(cols[c]):
                proba[i, j] = _parse_float(str(v), f"{path}: {_fmt_row(i)}, column {c}")
        return _Table(classes, proba, None, labels, kind)
    if "pred" not in cols:
        raise CLIError(f"{path}: no prediction columns: expected p_<class>... or pred")
    return _Table([], None, [str(v).strip() for v in cols["pred"]], labels, kind)


def _read_csv(path: Path, holdout: bool) -> _Table:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise CLIError(f"{path}: empty file (expected a header row)") from None
    if len(set(header)) != len(header):
        raise CLIError(f"{path}: duplicate column names in the header {header}")
    cols: dict[str, list[str]] = {h: [] for h in header}
    for i, row in enumerate(reader):
        if not row:
            continue
        if len(row) != len(header):
            raise CLIError(
                f"{path}: {_fmt_row(i)} has {len(row)} columns; the header has {len(header)}"
            )
        for h, v in zip(header, row, strict=True):
            cols[h].append(v)
    if not cols[header[0]]:
        raise CLIError(f"{path}: no data rows")
    return _columns_table(cols, path, holdout, "csv")


def _read_parquet(path: Path, holdout: bool) -> _Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise CLIError(
            f"{path}: reading Parquet needs pyarrow: pip install 'transferkit[parquet]'"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise CLIError(f"cannot read {path} as Parquet: {exc}") from None
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    if not table.num_rows:
        raise CLIError(f"{path}: no data rows")
    for name, values in cols.items():
        if any(v is None for v in values):
            i = next(i for i, v in enumerate(values) if v is None)
            raise CLIError(f"{path}: {_fmt_row(i)}, column {name}: missing value")
    return _columns_table(cols, path, holdout, "parquet")


def _read_npy(path: Path, holdout: bool) -> _Table:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot read {path} as .npy: {exc}") from None
    if not np.issubdtype(arr.dtype, np.number):
        raise CLIError(f"{path}: expected a numeric array; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.size == 0:
        raise CLIError(f"{path}: empty array")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argwhere(bad)[0][0])
        raise CLIError(f"{path}: row {i} has NaN or infinite values")
    labels = None
    if holdout:
        if arr.ndim != 2 or arr.shape[1] < 2:
            raise CLIError(f"{path}: a holdout .npy must be (n, 1 + k) [label, p...] or "
                           f"(n, 2) [label, pred]; got shape {arr.shape}")
        labels, arr = arr[:, 0], arr[:, 1:]
        if arr.shape[1] == 1:
            arr = arr[:, 0]
    if arr.ndim == 1:
        return _Table([], None, _int_column(arr, path, "prediction"), labels, "npy")
    if arr.ndim != 2:
        raise CLIError(f"{path}: expected a 1-d or 2-d array; got shape {arr.shape}")
    classes = [str(j) for j in range(arr.shape[1])]
    return _Table(classes, arr, None, labels, "npy")


def _int_column(values: np.ndarray, path: Path, what: str) -> np.ndarray:
    if np.any(values != np.round(values)) or np.any(values < 0):
        i = int(np.flatnonzero((values != np.round(values)) | (values < 0))[0])
        raise CLIError(f"{path}: row {i}: {what} {values[i]:g} is not a class index >= 0")
    return values.astype(np.int64)


def _read(path: Path, holdout: bool) -> _Table:
    suffix = path.suffix.lower()
    if not path.exists():
        raise CLIError(f"{path}: no such file")
    if suffix == ".csv":
        return _read_csv(path, holdout)
    if suffix == ".npy":
        return _read_npy(path, holdout)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path, holdout)
    raise CLIError(f"{path}: unknown format {suffix!r}; expected .csv, .npy or .parquet")


def _check_rows_sum(proba: np.ndarray, path: Path, kind: str) -> None:
    sums = proba.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOL)
    if len(off):
        i = int(off[0])
        where = _fmt_row(i) if kind != "npy" else f"row {i}"
        raise CLIError(f"{path}: {where}: probabilities sum to {sums[i]:.6g}, not 1")
    if proba.min() < 0:
        i = int(np.flatnonzero((proba < 0).any(axis=1))[0])
        raise CLIError(f"{path}: row {i}: negative probability")


def _encode(
    values: list[str] | np.ndarray, classes: list[str], path: Path, what: str, kind: str
) -> np.ndarray:
    index = {c: j for j, c in enumerate(classes)}
    if isinstance(values, np.ndarray):  # npy: already class indices
        values = [str(int(v)) for v in values]
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        j = index.get(v)
        if j is None:
            where = _fmt_row(i) if kind != "npy" else f"row {i}"
            raise CLIError(f"{path}: {where}: unknown {what} {v!r}; classes are {classes}")
        out[i] = j
    return out


def _load_inputs(args: argparse.Namespace) -> dict[str, Any]:
    hold = _read(args.holdout, holdout=True)
    targ = _read(args.target, holdout=False)
    assert hold.labels is not None
    if (hold.proba is None) != (targ.proba is None):
        raise CLIError(
            f"{args.holdout} and {args.target} must both hold probabilities (p_<class>) or "
            "both hard predictions (pred)"
        )
    if hold.proba is not None and targ.proba is not None:
        classes = hold.classes
        if targ.classes != classes:
            raise CLIError(
                f"{args.target} has {len(targ.classes)} class columns {targ.classes}; "
                f"{args.holdout} has {len(classes)}: {classes}"
            )
        _check_rows_sum(hold.proba, args.holdout, hold.kind)
        _check_rows_sum(targ.proba, args.target, targ.kind)
        labels_raw = hold.labels
        if isinstance(labels_raw, np.ndarray):
            labels_raw = _int_column(labels_raw, args.holdout, "label")
        y = _encode(labels_raw, classes, args.holdout, "label", hold.kind)
        h_pred: np.ndarray = hold.proba
        t_pred: np.ndarray = targ.proba
    else:
        assert hold.pred is not None and targ.pred is not None
        labels_raw = hold.labels
        if isinstance(labels_raw, np.ndarray):
            labels_raw = _int_column(labels_raw, args.holdout, "label")
            classes = [str(c) for c in range(int(max(labels_raw.max(), np.max(hold.pred))) + 1)]
        else:
            names = sorted(set(labels_raw))
            classes = sorted(names, key=int) if all(_is_int(c) for c in names) else names
        y = _encode(labels_raw, classes, args.holdout, "label", hold.kind)
        h_pred = _encode(hold.pred, classes, args.holdout, "prediction", hold.kind)
        t_pred = _encode(targ.pred, classes, args.target, "prediction", targ.kind)
    counts = np.bincount(y, minlength=len(classes))
    missing = [classes[j] for j in np.flatnonzero(counts == 0)]
    if missing:
        raise CLIError(
            f"{args.holdout}: class(es) {missing} missing from the holdout labels; every class "
            "needs labelled holdout examples"
        )
    return {"classes": classes, "y": y, "holdout": h_pred, "target": t_pred,
            "proba": hold.proba is not None, "kind": targ.kind}


def _is_int(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    from ..labelshift import (
        BBSE,
        MLLS,
        RLLS,
        IllConditionedWarning,
        chi2_shift_test,
        ks_shift_test,
        reweight_posteriors,
    )

    if not 0 < args.alpha < 1:
        raise CLIError(f"--alpha must be in (0, 1); got {args.alpha}")
    if not 0 < args.confidence < 1:
        raise CLIError(f"--confidence must be in (0, 1); got {args.confidence}")
    data = _load_inputs(args)
    classes, proba = data["classes"], data["proba"]
    k = len(classes)
    if args.method == "mlls" and not proba:
        raise CLIError("--method mlls needs probabilities (p_<class> columns), not hard 'pred'")
    if args.soft and not proba:
        raise CLIError("--soft needs probabilities (p_<class> columns), not hard 'pred'")

    import warnings

    est: Any
    if args.method == "bbse":
        est = BBSE(soft=args.soft, n_classes=k, confidence=args.confidence)
    elif args.method == "rlls":
        est = RLLS(soft=args.soft, n_classes=k, confidence=args.confidence)
    else:
        cal = None if args.calibration == "none" else args.calibration
        est = MLLS(calibration=cal, n_classes=k, confidence=args.confidence)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", IllConditionedWarning)
        try:
            est.fit(data["holdout"], data["y"])
            result = est.estimate(data["target"])
            test = chi2_shift_test(data["holdout"], data["target"], alpha=args.alpha, n_classes=k)
            ks = ks_shift_test(data["holdout"], data["target"], args.alpha) if proba else None
        except ValueError as exc:
            raise CLIError(str(exc)) from None
    if proba:
        corrected = reweight_posteriors(data["target"], result.weights)
    else:  # posterior of each class given only the predicted label
        joint = est.conditional_confusion_ * result.prior[None, :]
        rows = joint.sum(axis=1, keepdims=True)
        table = np.where(rows > 0, joint / np.where(rows > 0, rows, 1.0), 1.0 / k)
        corrected = table[data["target"]]

    verdict = "shift detected" if test.reject else "no shift detected"
    print(f"shift test (chi-squared on predicted labels, {len(data['y'])} holdout vs "
          f"{len(data['target'])} target): statistic {test.statistic:.4g}, "
          f"p = {test.p_value:.3g} -> {verdict} at alpha = {args.alpha:g}; smallest "
          f"detectable shift (Cohen's w, power 0.8) = {test.min_detectable_shift:.3g}")
    if ks is not None:
        print(f"shift test (KS on probabilities, Bonferroni): statistic {ks.statistic:.4g}, "
              f"p = {ks.p_value:.3g}")
    for w in caught:
        print(f"warning: {w.message}")
    pct = f"{args.confidence:.0%}"
    print(f"method: {args.method}{' (soft)' if args.soft else ''}")
    width = max(5, max(len(c) for c in classes))
    print(f"{'class':<{width}}  {'source':>7}  {'target':>7}  {pct + ' interval':>17}  "
          f"{'weight':>7}  {pct + ' interval':>17}")
    for j, c in enumerate(classes):
        ql, qh = result.prior_interval[j]
        wl, wh = result.weights_interval[j]
        print(f"{c:<{width}}  {est.source_prior_[j]:7.4f}  {result.prior[j]:7.4f}  "
              f"[{ql:7.4f}, {qh:7.4f}]  {result.weights[j]:7.3f}  [{wl:7.3f}, {wh:7.3f}]")

    if args.out is not None:
        from .._io import atomic_write, atomic_write_json, atomic_write_text

        summary = {
            "method": args.method, "soft": bool(args.soft), "classes": classes,
            "source_prior": est.source_prior_.tolist(), "target_prior": result.prior.tolist(),
            "target_prior_interval": result.prior_interval.tolist(),
            "weights": result.weights.tolist(),
            "weights_interval": result.weights_interval.tolist(),
            "confidence": args.confidence,
            "shift_test": {"method": "chi2", "statistic": test.statistic,
                           "p_value": test.p_value, "alpha": args.alpha,
                           "reject": bool(test.reject),
                           "min_detectable_shift": test.min_detectable_shift},
        }
        if data["kind"] == "npy":
            path = args.out / "corrected_target.npy"
            atomic_write(path, lambda f: np.save(f, corrected))
        else:
            buf = io.StringIO()
            buf.write(",".join(f"p_{c}" for c in classes) + "\n")
            np.savetxt(buf, corrected, delimiter=",", fmt="%.8g")
            path = args.out / "corrected_target.csv"
            atomic_write_text(path, buf.getvalue())
        atomic_write_json(args.out / "labelshift.json", summary)
        print(f"wrote {path} and {args.out / 'labelshift.json'}")
    return 0
