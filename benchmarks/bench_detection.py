"""Label-shift detection per call: our chi-squared and KS tests against what alibi-detect runs.

alibi-detect's ChiSquareDrift calls ``scipy.stats.chi2_contingency`` on each feature's
2 x k table of counts and its KSDrift ``scipy.stats.ks_2samp(..., mode="asymp")`` per
feature; both are timed here as written there (and alibi-detect itself when installed,
optional). Ours: ``chi2_shift_test`` on hard predictions and ``ks_shift_test`` (asymptotic
p-values, the same as alibi's to float precision) on probabilities, 10 classes, one
thread, median of many calls, ratios measured side by side in one run. Targets: no slower
than alibi (ratio <= 1.0x).

Run: ``python benchmarks/bench_detection.py [--repeats 50]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from transferkit.labelshift import chi2_shift_test, ks_shift_test  # noqa: E402


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def alibi(kind: str, ref: np.ndarray) -> Callable[[np.ndarray], Any] | None:
    try:
        from alibi_detect.cd import ChiSquareDrift, KSDrift  # type: ignore[import-not-found]
    except ImportError:
        return None
    det = ChiSquareDrift(ref) if kind == "chi2" else KSDrift(ref)
    return lambda x: det.predict(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    k = 10
    print(f"{k} classes, one thread, median of {args.repeats} calls")
    if alibi("chi2", np.zeros((2, 1))) is None:
        print("alibi-detect: not installed (optional); timing the scipy calls it makes")
    for n in args.sizes:
        a, b = rng.integers(0, k, n), rng.integers(0, k, n)
        ours = median_ms(lambda a=a, b=b: chi2_shift_test(a, b), args.repeats)

        def as_alibi(a: np.ndarray = a, b: np.ndarray = b) -> Any:
            table = np.stack([np.bincount(a, minlength=k), np.bincount(b, minlength=k)])
            return stats.chi2_contingency(table)

        peer = median_ms(as_alibi, args.repeats)
        print(f"chi2, n={n:>6,}: ours {ours:7.3f} ms, scipy chi2_contingency (alibi's call) "
              f"{peer:7.3f} ms: {ours / peer:.2f}x")
        det = alibi("chi2", a[:, None].astype(float))
        if det is not None:
            real = median_ms(lambda det=det, b=b: det(b[:, None].astype(float)), args.repeats)
            print(f"chi2, n={n:>6,}: alibi-detect ChiSquareDrift {real:7.3f} ms: "
                  f"ours {ours / real:.2f}x")
        pa, pb = rng.dirichlet(np.ones(k), n), rng.dirichlet(np.ones(k), n)
        reps = max(3, args.repeats // 5)
        ours = median_ms(lambda pa=pa, pb=pb: ks_shift_test(pa, pb), reps)
        peer = median_ms(lambda pa=pa, pb=pb: [stats.ks_2samp(pa[:, i], pb[:, i], method="asymp")
                                               for i in range(k)], reps)
        mine = ks_shift_test(pa, pb).p_value
        theirs = min(1.0, k * min(stats.ks_2samp(pa[:, i], pb[:, i], method="asymp").pvalue
                                  for i in range(k)))
        print(f"KS,   n={n:>6,}: ours {ours:7.2f} ms, scipy ks_2samp asymp per class (alibi's "
              f"call) {peer:7.2f} ms: {ours / peer:.2f}x; |p - p_alibi| = {abs(mine - theirs):.1e}")
        det = alibi("ks", pa)
        if det is not None:
            real = median_ms(lambda det=det, pb=pb: det(pb), reps)
            print(f"KS,   n={n:>6,}: alibi-detect KSDrift {real:7.2f} ms: ours {ours / real:.2f}x")


if __name__ == "__main__":
    main()
