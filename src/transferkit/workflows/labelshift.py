"""The label-shift workflow on the user's files or arrays: test, estimate, correct, write.

``transferkit labelshift`` is a thin wrapper over :func:`run_labelshift`; from Python,
:func:`run_labelshift` takes the same files and :func:`correct_label_shift` takes arrays.
Lipton, Wang, Smola, ICML 2018 (https://proceedings.mlr.press/v80/lipton18a.html).

Input formats (chosen by extension):

- CSV with a header. Holdout: a column ``label`` and either one column ``p_<class>`` per
  class (probabilities) or a column ``pred`` (hard predictions). Target: the same without
  ``label``. Class names are the ``p_`` suffixes (or the labels seen in the holdout).
- ``.npy``: holdout ``(n, 1 + k)`` = label then k probabilities, or ``(n, 2)`` = label
  and hard prediction; target ``(n, k)`` probabilities or ``(n,)`` hard predictions.
  Classes are ``0 .. k - 1``.
- Parquet (``.parquet``/``.pq``, needs ``pip install transferkit[parquet]``): the CSV
  columns.

Bad input raises :class:`InputError` (a ``ValueError``) naming the file, row and column,
before anything is written.
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..labelshift.estimators import MIN_ROWS_PER_CLASS

__all__ = ["InputError", "LabelShiftReport", "correct_label_shift", "run_labelshift"]

SUM_TOL = 1e-3


class InputError(ValueError):
    """Input that cannot be used, with what was expected and what was given.

    Examples
    --------
    Every workflow raises it, before writing anything, for input it cannot use; the CLI turns
    it into a one-line message:

    >>> from transferkit.workflows import FinetuneOptions, run_finetune
    >>> run_finetune("missing.npz", "out", options=FinetuneOptions())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    transferkit.workflows.labelshift.InputError: --train: ...
    """


ID_COLUMNS = ("path", "row")
"""Columns that name the items of a predictions file (``predict`` writes ``path`` for
images, ``row`` for texts); kept in ``corrected_target.csv``."""


@dataclass
class _Table:
    """Predictions read from one file."""

    classes: list[str]  # class names from p_ columns ([] when hard predictions)
    proba: np.ndarray | None  # (n, k) float64
    pred: list[str] | np.ndarray | None  # hard predictions (names or ints)
    labels: list[str] | np.ndarray | None
    kind: str  # "csv", "npy", "parquet"
    paths: list[str] | None = None  # the items' ids (image paths, text rows), when named
    id_column: str = "path"  # the column that named them: "path" (images) or "row" (texts)


def _fmt_row(i: int) -> str:
    return f"row {i + 2}"  # header is row 1


def _parse_float(text: str, where: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(v):
        raise InputError(f"{where}: value is {text!r} (NaN or infinite)")
    return v


def _columns_table(cols: dict[str, list[Any]], path: Path, holdout: bool, kind: str) -> _Table:
    names = list(cols)
    has_label = "label" in cols
    if holdout and not has_label:
        raise InputError(f"{path}: the holdout needs a 'label' column; found {names}")
    if not holdout and has_label:
        names_wo = [c for c in names if c != "label"]
        cols = {c: cols[c] for c in names_wo}
    p_cols = [c for c in cols if c.startswith("p_")]
    if p_cols and "pred" in cols:
        raise InputError(f"{path}: give either p_<class> columns or a 'pred' column, not both")
    other = [c for c in cols if c not in p_cols and c not in ("pred", "label", *ID_COLUMNS)]
    if other:
        raise InputError(f"{path}: unexpected column(s) {other}; expected "
                       f"{'label and ' if holdout else ''}p_<class>... or pred")
    labels = [str(v).strip() for v in cols["label"]] if holdout else None
    id_column = next((c for c in ID_COLUMNS if c in cols), "path")
    paths = [str(v) for v in cols[id_column]] if id_column in cols else None
    if p_cols:
        if len(p_cols) < 2:
            raise InputError(f"{path}: need at least 2 p_<class> columns; found {p_cols}")
        classes = [c[2:] for c in p_cols]
        n = len(cols[p_cols[0]])
        proba = np.empty((n, len(p_cols)))
        for j, c in enumerate(p_cols):
            for i, v in enumerate(cols[c]):
                proba[i, j] = _parse_float(str(v), f"{path}: {_fmt_row(i)}, column {c}")
        return _Table(classes, proba, None, labels, kind, paths, id_column)
    if "pred" not in cols:
        raise InputError(f"{path}: no prediction columns: expected p_<class>... or pred")
    return _Table([], None, [str(v).strip() for v in cols["pred"]], labels, kind, paths,
                  id_column)


def _read_csv(path: Path, holdout: bool) -> _Table:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is dropped
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); "
            "save the file as UTF-8 CSV"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    first = text.split("\n", 1)[0]
    # comma-separated by default; a header with semicolons (or tabs) and no comma is read
    # with that delimiter, as spreadsheets in many locales write it
    delimiter = next((d for d in (";", "\t") if d in first and "," not in first), ",")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError(f"{path}: empty file (expected a header row)") from None
    if len(set(header)) != len(header):
        raise InputError(f"{path}: duplicate column names in the header {header}")
    cols: dict[str, list[str]] = {h: [] for h in header}
    for i, row in enumerate(reader):
        if not row:
            continue
        if len(row) != len(header):
            raise InputError(
                f"{path}: {_fmt_row(i)} has {len(row)} columns; the header has {len(header)}"
            )
        for h, v in zip(header, row, strict=True):
            cols[h].append(v)
    if not cols[header[0]]:
        raise InputError(f"{path}: no data rows")
    return _columns_table(cols, path, holdout, "csv")


def _read_parquet(path: Path, holdout: bool) -> _Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            f"{path}: reading Parquet needs pyarrow: pip install 'transferkit[parquet]'"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise InputError(f"cannot read {path} as Parquet: {exc}") from None
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    if not table.num_rows:
        raise InputError(f"{path}: no data rows")
    for name, values in cols.items():
        if any(v is None for v in values):
            i = next(i for i, v in enumerate(values) if v is None)
            raise InputError(f"{path}: {_fmt_row(i)}, column {name}: missing value")
    return _columns_table(cols, path, holdout, "parquet")


def _read_npy(path: Path, holdout: bool) -> _Table:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} as .npy: {exc}") from None
    if np.iscomplexobj(arr):
        raise InputError(f"{path}: complex values (dtype {arr.dtype}); expected real numbers")
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{path}: expected a numeric array; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.size == 0:
        raise InputError(f"{path}: empty array")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argwhere(bad)[0][0])
        raise InputError(f"{path}: row {i} has NaN or infinite values")
    labels = None
    if holdout:
        if arr.ndim != 2 or arr.shape[1] < 2:
            raise InputError(f"{path}: a holdout .npy must be (n, 1 + k) [label, p...] or "
                           f"(n, 2) [label, pred]; got shape {arr.shape}")
        labels, arr = arr[:, 0], arr[:, 1:]
        if arr.shape[1] == 1:
            arr = arr[:, 0]
    if arr.ndim == 1:
        return _Table([], None, _int_column(arr, path, "prediction"), labels, "npy")
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a 1-d or 2-d array; got shape {arr.shape}")
    classes = [str(j) for j in range(arr.shape[1])]
    return _Table(classes, arr, None, labels, "npy")


def _int_column(values: np.ndarray, path: Path, what: str) -> np.ndarray:
    if np.any(values != np.round(values)) or np.any(values < 0):
        i = int(np.flatnonzero((values != np.round(values)) | (values < 0))[0])
        raise InputError(f"{path}: row {i}: {what} {values[i]:g} is not a class index >= 0")
    return values.astype(np.int64)


def _read(path: Path, holdout: bool) -> _Table:
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if suffix == ".csv":
        return _read_csv(path, holdout)
    if suffix == ".npy":
        return _read_npy(path, holdout)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path, holdout)
    raise InputError(f"{path}: unknown format {suffix!r}; expected .csv, .npy or .parquet")


def _check_rows_sum(proba: np.ndarray, path: Path, kind: str) -> None:
    sums = proba.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOL)
    if len(off):
        i = int(off[0])
        where = _fmt_row(i) if kind != "npy" else f"row {i}"
        raise InputError(f"{path}: {where}: probabilities sum to {sums[i]:.6g}, not 1")
    if proba.min() < 0:
        i = int(np.flatnonzero((proba < 0).any(axis=1))[0])
        raise InputError(f"{path}: row {i}: negative probability")


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
            raise InputError(f"{path}: {where}: unknown {what} {v!r}; classes are {classes}")
        out[i] = j
    return out


def _load_inputs(holdout: Path, target: Path) -> dict[str, Any]:
    hold = _read(holdout, holdout=True)
    targ = _read(target, holdout=False)
    assert hold.labels is not None
    if (hold.proba is None) != (targ.proba is None):
        raise InputError(
            f"{holdout} and {target} must both hold probabilities (p_<class>) or "
            "both hard predictions (pred)"
        )
    if hold.proba is not None and targ.proba is not None:
        classes = hold.classes
        if targ.classes != classes:
            raise InputError(
                f"{target} has {len(targ.classes)} class columns {targ.classes}; "
                f"{holdout} has {len(classes)}: {classes}"
            )
        _check_rows_sum(hold.proba, holdout, hold.kind)
        _check_rows_sum(targ.proba, target, targ.kind)
        labels_raw = hold.labels
        if isinstance(labels_raw, np.ndarray):
            labels_raw = _int_column(labels_raw, holdout, "label")
        y = _encode(labels_raw, classes, holdout, "label", hold.kind)
        h_pred: np.ndarray = hold.proba
        t_pred: np.ndarray = targ.proba
    else:
        assert hold.pred is not None and targ.pred is not None
        labels_raw = hold.labels
        if isinstance(labels_raw, np.ndarray):
            labels_raw = _int_column(labels_raw, holdout, "label")
            classes = [str(c) for c in range(int(max(labels_raw.max(), np.max(hold.pred))) + 1)]
        else:
            names = sorted(set(labels_raw))
            classes = sorted(names, key=int) if all(_is_int(c) for c in names) else names
        y = _encode(labels_raw, classes, holdout, "label", hold.kind)
        h_pred = _encode(hold.pred, classes, holdout, "prediction", hold.kind)
        t_pred = _encode(targ.pred, classes, target, "prediction", targ.kind)
    counts = np.bincount(y, minlength=len(classes))
    missing = [classes[j] for j in np.flatnonzero(counts == 0)]
    if missing:
        raise InputError(
            f"{holdout}: class(es) {missing} missing from the holdout labels; every class "
            "needs labelled holdout examples"
        )
    return {"classes": classes, "y": y, "holdout": h_pred, "target": t_pred,
            "target_paths": targ.paths,
            "target_id_column": targ.id_column,
            "proba": hold.proba is not None, "kind": targ.kind}


def _is_int(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return False
    return True


@dataclass
class LabelShiftReport:
    """What the workflow found: the shift test(s), the estimate, and corrected probabilities.

    Attributes
    ----------
    classes : list of str
    method : str
        The registered estimator's name.
    options : dict
        The estimator's parameters that were set (``soft``, ``calibration``, ...).
    source_prior : ndarray, shape (k,)
    estimate : LabelShiftEstimate
    chi2 : ShiftTestResult
        Chi-squared test on predicted labels (BBSD).
    ks : ShiftTestResult or None
        KS test on each class's probability (Bonferroni), when probabilities were given.
    corrected : ndarray, shape (n_target, k)
        Target probabilities corrected for the estimated shift.
    warnings : list of str
    alpha, confidence : float
    n_holdout, n_target : int

    Examples
    --------
    What :func:`correct_label_shift` returns:

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> holdout = np.where(rng.random(400) < 0.9, y, 1 - y)
    >>> target = np.where(rng.random(300) < 0.9, 1, 0)
    >>> report = correct_label_shift(holdout, y, target, classes=["neg", "pos"])
    >>> report.classes, report.corrected.shape, sorted(report.summary())[:3]
    (['neg', 'pos'], (300, 2), ['classes', 'confidence', 'method'])
    """

    classes: list[str]
    method: str
    options: dict[str, Any]
    source_prior: np.ndarray
    estimate: Any
    chi2: Any
    ks: Any
    corrected: np.ndarray
    alpha: float
    confidence: float
    n_holdout: int
    n_target: int
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON written as ``labelshift.json``."""
        est, test = self.estimate, self.chi2
        return {
            "method": self.method, "soft": bool(self.options.get("soft", False)),
            "options": self.options, "classes": self.classes,
            "source_prior": self.source_prior.tolist(), "target_prior": est.prior.tolist(),
            "target_prior_interval": est.prior_interval.tolist(),
            "weights": est.weights.tolist(),
            "weights_interval": est.weights_interval.tolist(),
            "confidence": self.confidence,
            "shift_test": {"method": "chi2", "statistic": test.statistic,
                           "p_value": test.p_value, "alpha": self.alpha,
                           "reject": bool(test.reject),
                           "min_detectable_shift": test.min_detectable_shift},
            "warnings": self.warnings,
        }

    def lines(self) -> list[str]:
        """The report as a person reads it in a terminal."""
        test, est = self.chi2, self.estimate
        verdict = "shift detected" if test.reject else "no shift detected"
        out = [f"shift test (chi-squared on predicted labels, {self.n_holdout} holdout vs "
               f"{self.n_target} target): statistic {test.statistic:.4g}, "
               f"p = {test.p_value:.3g} -> {verdict} at alpha = {self.alpha:g}; smallest "
               f"detectable shift (Cohen's w, power 0.8) = {test.min_detectable_shift:.3g}"]
        if self.ks is not None:
            out.append(f"shift test (KS on probabilities, Bonferroni): statistic "
                       f"{self.ks.statistic:.4g}, p = {self.ks.p_value:.3g}")
        out += [f"warning: {w}" for w in self.warnings]
        pct = f"{self.confidence:.0%}"
        out.append(f"method: {self.method}{' (soft)' if self.options.get('soft') else ''}")
        width = max(5, max(len(c) for c in self.classes))
        out.append(f"{'class':<{width}}  {'source':>7}  {'target':>7}  "
                   f"{pct + ' interval':>17}  {'weight':>7}  {pct + ' interval':>17}")
        for j, c in enumerate(self.classes):
            ql, qh = est.prior_interval[j]
            wl, wh = est.weights_interval[j]
            out.append(f"{c:<{width}}  {self.source_prior[j]:7.4f}  {est.prior[j]:7.4f}  "
                       f"[{ql:7.4f}, {qh:7.4f}]  {est.weights[j]:7.3f}  [{wl:7.3f}, {wh:7.3f}]")
        return out


def correct_label_shift(
    holdout: Any,
    labels: Any,
    target: Any,
    method: str = "bbse",
    *,
    classes: Sequence[str] | None = None,
    alpha: float = 0.05,
    confidence: float = 0.95,
    force: bool = False,
    **options: Any,
) -> LabelShiftReport:
    """Test for label shift, estimate the target prior and weights, correct the target.

    Parameters
    ----------
    holdout : array, shape (m, k) probabilities or (m,) class indices
        The model's outputs on a labelled holdout from the source.
    labels : array, shape (m,)
        The holdout's class indices in ``0 .. k-1``.
    target : array, shape (n, k) or (n,)
        The model's outputs on the (unlabelled) target, of the same kind.
    method : str
        A registered estimator (:func:`transferkit.labelshift.list_estimators`).
    classes : sequence of str, optional
        Class names for the report (default ``"0" .. "k-1"``).
    alpha : float
        Level of the shift tests.
    confidence : float
        Of the intervals.
    force : bool
        Estimate from a target smaller than ``MIN_ROWS_PER_CLASS`` rows per class
        (intervals are then exact bounds, or absent), and from a holdout that cannot tell
        the classes apart; by default both are an :class:`InputError`.
    **options
        Parameters of the estimator (``soft=True``, ``calibration="ts"``, ...); one it does
        not have is an error.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> holdout = np.where(rng.random(400) < 0.9, y, 1 - y)      # a 90%-accurate model
    >>> ty = (rng.random(600) < 0.8).astype(int)                   # target: 80% class 1
    >>> target = np.where(rng.random(600) < 0.9, ty, 1 - ty)
    >>> report = correct_label_shift(holdout, y, target)
    >>> report.chi2.reject, bool(report.estimate.prior[1] > 0.7)
    (True, True)
    """
    from ..labelshift import (
        chi2_shift_test,
        create_estimator,
        ks_shift_test,
        list_estimators,
        reweight_posteriors,
    )

    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1); got {alpha}")
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be in (0, 1); got {confidence}")
    if method not in list_estimators():
        raise InputError(f"unknown method {method!r}; known: {', '.join(list_estimators())}")
    h = np.asarray(holdout)
    t = np.asarray(target)
    proba = h.ndim == 2
    k = h.shape[1] if proba else int(max(np.max(labels), np.max(h), np.max(t))) + 1
    names = list(classes) if classes is not None else [str(j) for j in range(k)]
    if len(names) != k:
        raise InputError(f"{len(names)} class names for {k} classes")
    est: Any = create_estimator(method, n_classes=k, confidence=confidence)
    unknown = [o for o in options if o not in est.get_params()]
    if unknown:
        raise InputError(f"method {method!r} has no option {unknown[0]!r}; its options: "
                         f"{', '.join(sorted(est.get_params()))}")
    if options.get("soft") and not proba:
        raise InputError("soft needs probabilities (p_<class> columns), not hard predictions")
    est.set_params(**options)
    n_min = MIN_ROWS_PER_CLASS * k
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est.fit(h, labels)
            if len(t) < n_min and not force:
                raise InputError(
                    f"the target has {len(t)} rows: too few to estimate {k} class shares "
                    f"from (at least {MIN_ROWS_PER_CLASS} per class, {n_min}); force it to "
                    "get exact but wide intervals"
                )
            if not est.identifiable_ and not force:
                never = [names[j] for j in range(k) if est.classes_[j] in est.never_predicted_]
                ways = ["a holdout where the model predicts every class"]
                if proba and method == "bbse" and not options.get("soft"):
                    ways.append("--soft (BBSE on the probabilities)")
                ways += ["--method rlls (regularised, shrinks towards no shift)"]
                if proba and method != "mlls":
                    ways.append("--method mlls")
                raise InputError(
                    f"{method} cannot identify the target prior from this holdout: the "
                    f"confusion matrix's condition number is {est.condition_number_:.3g}"
                    + (f" and class(es) {never} are never predicted" if never else "")
                    + f"; use {', or '.join(ways)}; or --force to get the estimate anyway "
                    "(not to be trusted)"
                )
            result = est.estimate(t)
            test = chi2_shift_test(h, t, alpha=alpha, n_classes=k)
            ks = ks_shift_test(h, t, alpha) if proba else None
        except ValueError as exc:
            raise InputError(str(exc)) from None
    if proba:
        corrected = reweight_posteriors(t, result.weights)
    else:  # posterior of each class given only the predicted label
        joint = est.conditional_confusion_ * result.prior[None, :]
        rows = joint.sum(axis=1, keepdims=True)
        table = np.where(rows > 0, joint / np.where(rows > 0, rows, 1.0), 1.0 / k)
        corrected = table[t]
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    w_int = np.asarray(result.weights_interval, dtype=np.float64)
    if np.isfinite(w_int).all() and bool(((w_int[:, 0] <= 1) & (w_int[:, 1] >= 1)).all()):
        notes.append(f"the estimate is consistent with no shift: every weight's "
                     f"{confidence:.0%} interval contains 1, so the corrected probabilities "
                     "differ from the model's by noise only; keep the model's")
    elif not test.reject:
        notes.append(f"the shift test does not reject 'no shift' (p = {test.p_value:.3g}): "
                     "the correction may not help")
    return LabelShiftReport(
        classes=names, method=method, options=dict(options), source_prior=est.source_prior_,
        estimate=result, chi2=test, ks=ks, corrected=np.asarray(corrected), alpha=alpha,
        confidence=confidence, n_holdout=len(h), n_target=len(t),
        warnings=notes,
    )


def run_labelshift(
    holdout: str | os.PathLike[str],
    target: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    method: str = "bbse",
    *,
    alpha: float = 0.05,
    confidence: float = 0.95,
    force: bool = False,
    options: Mapping[str, Any] | None = None,
) -> tuple[LabelShiftReport, list[Path]]:
    """:func:`correct_label_shift` on files; with ``out``, write the corrected target
    probabilities (``corrected_target.csv``, or ``.npy`` for ``.npy`` input) and
    ``labelshift.json`` atomically. Returns the report and the paths written.

    Examples
    --------
    >>> import tempfile
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     d = Path(d)
    ...     pred = np.where(rng.random(400) < 0.9, y, 1 - y)
    ...     np.savetxt(d / "holdout.csv", np.c_[y, pred], fmt="%d", delimiter=",",
    ...                header="label,pred", comments="")
    ...     np.savetxt(d / "target.csv", rng.random(300) < 0.8, fmt="%d", header="pred",
    ...                comments="")
    ...     report, written = run_labelshift(d / "holdout.csv", d / "target.csv", d / "out")
    ...     report.chi2.reject, sorted(p.name for p in written)[:2]
    (True, ['corrected_target.csv', 'labelshift.json'])
    """
    from .._io import check_writable_dir

    holdout, target = Path(holdout), Path(target)
    if out is not None:  # before any work, so a bad --out loses nothing (and creates nothing)
        try:
            check_writable_dir(out)
        except OSError as exc:
            raise InputError(f"cannot write to output folder {str(out)!r}: {exc}") from None
    data = _load_inputs(holdout, target)
    report = correct_label_shift(data["holdout"], data["y"], data["target"], method,
                                 classes=data["classes"], alpha=alpha, confidence=confidence,
                                 force=force, **dict(options or {}))
    written: list[Path] = []
    if out is not None:
        from .._io import atomic_write, atomic_write_json, atomic_write_text

        out = Path(out)
        if data["kind"] == "npy":
            path = out / "corrected_target.npy"
            atomic_write(path, lambda f: np.save(f, report.corrected))
        else:
            buf = io.StringIO()
            paths = data.get("target_paths")
            writer = csv.writer(buf, lineterminator="\n")
            id_column = data.get("target_id_column", "path")
            writer.writerow([*([id_column] if paths else []),
                             *(f"p_{c}" for c in report.classes)])
            for i, row in enumerate(report.corrected):
                writer.writerow([*([paths[i]] if paths else []), *(f"{v:.8g}" for v in row)])
            path = out / "corrected_target.csv"
            atomic_write_text(path, buf.getvalue())
        written = [path, atomic_write_json(out / "labelshift.json", report.summary())]
    return report, written
