"""Label-shift estimation on 1,000,000 target probability rows, one thread.

Prints, side by side in one run and for each number of classes (``--classes``, default
10 and 100), the median time of ``estimate`` (after ``fit`` on a 20,000-row holdout) and
the estimate's error for our BBSE (hard and soft), RLLS and MLLS, and for QuaPy (ACC,
PACC, EMQ) and abstention (BBSE, EM) when they are installed (optional, the ``bench``
extra). The floor is one numpy sum over the same array (``P.sum()``). Then the issue's
ratios: BBSE hard and soft against the floor, BBSE hard against PACC, MLLS's time per EM
pass against the floor and MLLS against EMQ (both to convergence, errors printed beside).
``--scaling`` adds time per element of each estimator over n = 10^4 .. 10^7 rows.

Whether the compiled kernels run (numba installed, ``TRANSFERKIT_NUMBA`` not ``0``) is
printed first; ``TRANSFERKIT_NUMBA=0 python benchmarks/bench_labelshift.py`` times the
numpy code instead.

Data: an exact black box (1-d Gaussian classes, true source posteriors; see
``transferkit.testing.labelshift.synthetic_label_shift``), source prior uniform, target
prior Dirichlet(1) drawn with seed 3. Run: ``python benchmarks/bench_labelshift.py``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from transferkit.data import dirichlet_prior  # noqa: E402
from transferkit.labelshift import BBSE, MLLS, RLLS  # noqa: E402
from transferkit.testing.labelshift import synthetic_label_shift  # noqa: E402


def median_ms(fn: Callable[[], Any], repeats: int, budget_s: float = 20.0) -> tuple[float, Any]:
    """Median time of ``fn`` after a warm-up; fewer repeats for calls slower than the budget."""
    t0 = time.perf_counter()
    out = fn()  # warm-up (and the numba kernels' first load)
    first = time.perf_counter() - t0
    times = []
    for _ in range(max(1, min(repeats, int(budget_s / max(first, 1e-9))))):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times)), out


def peers(hp: np.ndarray, hy: np.ndarray, tp: np.ndarray) -> dict[str, Callable[[], np.ndarray]]:
    """Peer estimators on the same arrays, where installed (each returns a prior)."""
    out: dict[str, Callable[[], np.ndarray]] = {}
    k = hp.shape[1]
    source = np.bincount(hy, minlength=k) / len(hy)
    try:
        from quapy.method.aggregative import ACC, EMQ, PACC  # type: ignore[import-not-found]
        from sklearn.base import BaseEstimator, ClassifierMixin

        class _Fitted(ClassifierMixin, BaseEstimator):  # the (already applied) black box

            def fit(self, X: np.ndarray, y: np.ndarray) -> _Fitted:
                return self

            def predict(self, X: np.ndarray) -> np.ndarray:
                return np.asarray(X).argmax(axis=1)

            def predict_proba(self, X: np.ndarray) -> np.ndarray:
                return np.asarray(X)

        def fitted() -> _Fitted:
            clf = _Fitted()
            clf.classes_ = np.arange(k)
            return clf

        acc = ACC(classifier=fitted(), fit_classifier=False)
        acc.aggregation_fit(hp.argmax(1), hy)
        pacc = PACC(classifier=fitted(), fit_classifier=False)
        pacc.aggregation_fit(hp, hy)
        emq = EMQ(classifier=fitted(), fit_classifier=False)
        emq.aggregation_fit(hp, hy)
        emq.train_prevalence = source
        hard = tp.argmax(1)
        out["quapy ACC (int predictions)"] = lambda: np.asarray(acc.aggregate(hard))
        out["quapy PACC"] = lambda: np.asarray(pacc.aggregate(tp))
        out["quapy EMQ"] = lambda: np.asarray(emq.aggregate(tp))
    except ImportError:
        print("quapy: not installed (optional)")
    except Exception as exc:  # API differs across versions
        print(f"quapy: skipped ({type(exc).__name__}: {exc})")
    try:
        from abstention.label_shift import (  # type: ignore[import-not-found]
            BBSEImbalanceAdapter,
            EMImbalanceAdapter,
        )

        onehot = np.eye(k)[hy]

        def abs_bbse() -> np.ndarray:
            fn = BBSEImbalanceAdapter(soft=False)(onehot, tp, hp)
            return np.asarray(fn.multipliers) * source

        def abs_em() -> np.ndarray:  # defaults: source prior = mean holdout posterior
            fn = EMImbalanceAdapter()(tp, hp, onehot)
            return np.asarray(fn.multipliers) * hp.mean(axis=0)

        out["abstention BBSE"] = abs_bbse
        out["abstention EM"] = abs_em
    except ImportError:
        print("abstention: not installed (optional)")
    return out


def compare(k: int, rows: int, repeats: int) -> None:
    q = dirichlet_prior(k, 1.0, seed=3)
    p = np.full(k, 1.0 / k)
    hp, hy, tp, ty = synthetic_label_shift(p, q, 20_000, rows, seed=0, separation=3.0)
    hard_t = tp.argmax(axis=1)
    print(f"\n{rows:,} target rows x {k} classes (float64), holdout 20,000; "
          f"black-box accuracy on target {np.mean(hard_t == ty):.3f}; median of {repeats}")
    floor_ms, _ = median_ms(lambda: tp.sum(), repeats)  # the floor: one numpy sum over P
    print(f"{'method':<42} {'ms':>9} {'x the sum':>10} {'max |q_hat - q|':>16} "
          f"{'rel. sq. err of w':>18}")
    times: dict[str, float] = {}
    errors: dict[str, float] = {}

    def report(name: str, ms: float, prior: np.ndarray) -> None:
        prior = np.asarray(prior, dtype=float)
        w_hat, w = prior / p, q / p
        rel = ((w_hat - w) ** 2).sum() / (w**2).sum()
        times[name], errors[name] = ms, float(np.abs(prior - q).max())
        print(f"{name:<42} {ms:9.1f} {ms / floor_ms:9.2f}x {errors[name]:16.5f} {rel:18.2e}")

    ours: list[tuple[str, Any, np.ndarray]] = [
        ("BBSE hard, int predictions", BBSE(interval="none"), hard_t),
        ("BBSE hard, probabilities->argmax", BBSE(interval="none"), tp),
        ("BBSE soft", BBSE(soft=True, interval="none"), tp),
        ("BBSE soft + delta interval", BBSE(soft=True), tp),
        ("RLLS hard", RLLS(interval="none"), hard_t),
        ("MLLS calibration=None", MLLS(calibration=None, interval="none"), tp),
        ("MLLS calibration=None + Fisher interval", MLLS(calibration=None), tp),
        ("MLLS calibration='bcts' (the default)",
         MLLS(calibration="bcts", interval="none"), tp),
        ("MLLS calibration=None, tol=1e-4 (EMQ's)",
         MLLS(calibration=None, interval="none", tol=1e-4), tp),
    ]
    passes = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, est, target in ours:
            holdout = hp.argmax(axis=1) if target.ndim == 1 else hp
            est.fit(holdout, hy)
            ms, res = median_ms(lambda e=est, t=target: e.estimate(t), repeats)
            report(f"ours: {name}", ms, res.prior)
            if name == "MLLS calibration=None":
                passes = est.n_iter_
        for name, fn in peers(hp, hy, tp).items():
            try:
                ms, prior = median_ms(fn, repeats)
                report(name, ms, prior)
            except Exception as exc:
                print(f"{name}: failed ({type(exc).__name__}: {exc})")
    print(f"{'reference: one numpy sum (P.sum())':<42} {floor_ms:9.1f} {1.0:9.2f}x")
    hard = times["ours: BBSE hard, probabilities->argmax"]
    soft = times["ours: BBSE soft"]
    mlls = times["ours: MLLS calibration=None"]
    print(f"K={k}: BBSE hard {hard / floor_ms:.2f}x the sum (target <= 3x); "
          f"BBSE soft {soft / floor_ms:.2f}x the sum (target <= 2x)")
    print(f"K={k}: MLLS {passes} EM passes, {mlls / passes:.1f} ms per pass = "
          f"{mlls / passes / floor_ms:.2f}x the sum per pass (target <= 2x; includes the "
          f"validating pass), {1e6 * mlls / passes / tp.size:.2f} ns per element per pass")
    if "quapy PACC" in times:
        print(f"K={k}: BBSE hard {times['quapy PACC'] / hard:.2f}x faster than quapy PACC "
              f"(target >= 4x); BBSE soft (PACC's own estimator: the mean posterior) "
              f"{times['quapy PACC'] / soft:.2f}x faster")
    if "quapy EMQ" in times:
        print(f"K={k}: MLLS calibration=None {times['quapy EMQ'] / mlls:.2f}x faster than "
              f"quapy EMQ (uncalibrated too; target >= 10x at equal error: ours "
              f"{errors['ours: MLLS calibration=None']:.5f}, EMQ {errors['quapy EMQ']:.5f})")


def scaling(k: int, sizes: list[int], max_gb: float) -> None:
    """Time per element of each estimator over the number of target rows."""
    q = dirichlet_prior(k, 1.0, seed=3)
    p = np.full(k, 1.0 / k)
    base = min(max(sizes), 1_000_000)
    hp, hy, tp, _ = synthetic_label_shift(p, q, 20_000, base, seed=0, separation=3.0)
    ests = {"BBSE hard": BBSE(interval="none").fit(hp, hy),
            "BBSE soft": BBSE(soft=True, interval="none").fit(hp, hy),
            "MLLS": MLLS(calibration=None, interval="none").fit(hp, hy)}
    sum_ns: list[float] = []
    mlls_ns: list[float] = []
    print(f"\nscaling, K={k} (ns per element; larger n repeat the 1,000,000 rows; "
          f"the sum is P.sum())")
    print(f"{'n':>12} {'sum':>8} " + " ".join(f"{name:>10}" for name in ests)
          + f" {'MLLS passes':>12}")
    for n in sizes:
        if n * k * 8 / 2**30 > max_gb:
            print(f"{n:>12,} skipped: {n * k * 8 / 2**30:.1f} GB > --max-gb {max_gb}")
            continue
        P = tp[:n] if n <= base else np.tile(tp, (n // base, 1))
        cells = [median_ms(lambda P=P: P.sum(), 3)[0]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for est in ests.values():
                cells.append(median_ms(lambda e=est, P=P: e.estimate(P), 3)[0])
        per = [1e6 * ms / P.size for ms in cells]
        print(f"{n:>12,} {per[0]:8.3f} " + " ".join(f"{v:10.3f}" for v in per[1:])
              + f" {ests['MLLS'].n_iter_:>12}")
        sum_ns.append(per[0])
        mlls_ns.append(per[3] / ests["MLLS"].n_iter_)
    if len(mlls_ns) > 1:
        print(f"K={k}: MLLS per element per pass {mlls_ns[0]:.2f} ns at the smallest n, "
              f"{mlls_ns[-1]:.2f} at the largest: {mlls_ns[-1] / mlls_ns[0]:.2f}x "
              f"(the sum {sum_ns[-1] / sum_ns[0]:.2f}x; target: flat in n)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--classes", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--scaling", action="store_true",
                    help="also time per element over n = 10^4 .. 10^7 rows")
    ap.add_argument("--max-gb", type=float, default=9.0,
                    help="skip scaling sizes whose array would exceed this")
    args = ap.parse_args()
    from transferkit.labelshift import _kernels

    print("compiled kernels (numba):",
          "on" if _kernels._compiled() is not None else "off (numba missing or "
          "TRANSFERKIT_NUMBA=0)", "(loaded first: used from USE_ELEMENTS entries); one thread")
    for k in args.classes:
        compare(k, args.rows, args.repeats)
    if args.scaling:
        for k in args.classes:
            scaling(k, [10**4, 10**5, 10**6, 10**7], args.max_gb)


if __name__ == "__main__":
    main()
