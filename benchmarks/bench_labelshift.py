"""Label-shift estimation on 1,000,000 target probability rows x 10 classes, one thread.

Prints, side by side in one run, the median time of ``estimate`` (after ``fit`` on a
20,000-row holdout) and the estimate's error for our BBSE (hard and soft), RLLS and MLLS,
and for QuaPy (ACC, PACC, EMQ) and abstention (BBSE, EM) when they are installed
(optional; ``pip install quapy abstention``). Targets from the issue: our BBSE <= 10 ms,
our MLLS <= 150 ms, each at equal or lower error.

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

import numpy as np  # noqa: E402

from transferkit.data import dirichlet_prior  # noqa: E402
from transferkit.labelshift import BBSE, MLLS, RLLS  # noqa: E402
from transferkit.testing.labelshift import synthetic_label_shift  # noqa: E402


def median_ms(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    k = 10
    q = dirichlet_prior(k, 1.0, seed=3)
    p = np.full(k, 1.0 / k)
    hp, hy, tp, ty = synthetic_label_shift(p, q, 20_000, args.rows, seed=0, separation=3.0)
    hard_t = tp.argmax(axis=1)
    print(f"{args.rows:,} target rows x {k} classes (float64), holdout 20,000; "
          f"black-box accuracy on target {np.mean(hard_t == ty):.3f}; one thread; "
          f"median of {args.repeats}")
    ones = np.ones(len(tp))
    floor_ms, _ = median_ms(lambda: ones @ tp, args.repeats)  # the floor: one pass over P
    print(f"{'method':<38} {'ms':>9} {'x one pass':>10} {'max |q_hat - q|':>16} "
          f"{'rel. sq. err of w':>18}")

    def report(name: str, ms: float, prior: np.ndarray) -> None:
        prior = np.asarray(prior, dtype=float)
        w_hat, w = prior / p, q / p
        rel = ((w_hat - w) ** 2).sum() / (w**2).sum()
        print(f"{name:<38} {ms:9.1f} {ms / floor_ms:9.1f}x {np.abs(prior - q).max():16.5f} "
              f"{rel:18.2e}")

    ours: list[tuple[str, object, np.ndarray]] = [
        ("BBSE hard, int predictions", BBSE(interval="none"), hard_t),
        ("BBSE hard, probabilities->argmax", BBSE(interval="none"), tp),
        ("BBSE soft", BBSE(soft=True, interval="none"), tp),
        ("BBSE soft + delta interval", BBSE(soft=True), tp),
        ("RLLS hard", RLLS(interval="none"), hard_t),
        ("MLLS (no calibration)", MLLS(interval="none"), tp),
        ("MLLS + Fisher interval", MLLS(), tp),
        ("MLLS + BCTS", MLLS(calibration="bcts", interval="none"), tp),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, est, target in ours:
            holdout = hp.argmax(axis=1) if target.ndim == 1 else hp
            est.fit(holdout, hy)  # type: ignore[attr-defined]
            ms, res = median_ms(lambda e=est, t=target: e.estimate(t),  # type: ignore
                                args.repeats)
            report(f"ours: {name}", ms, res.prior)
        for name, fn in peers(hp, hy, tp).items():
            try:
                ms, prior = median_ms(fn, args.repeats)
                report(name, ms, prior)
            except Exception as exc:
                print(f"{name}: failed ({type(exc).__name__}: {exc})")
    print(f"{'reference: one pass (ones @ P)':<38} {floor_ms:9.1f} {1.0:9.1f}x")


if __name__ == "__main__":
    main()
