"""ReForm's mapping against POT's own Sinkhorn on the same cost matrix.

1,000 old and 1,200 new features with 2-d meta-information (random points in the unit
square), entropic regularisation 1e-2 (about 320 log-domain iterations), 10 output
classes. Ours: `transport_model` (POT's log-domain Sinkhorn, then the model transport
W_hat = d_new * W T); POT: `ot.sinkhorn` with the same arguments. Median of
interleaved repeats, side by side in one run.

    python benchmarks/bench_reform.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import ot

from transferkit.heterogeneous import feature_cost, transport_model

REPEATS = 3


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: check it runs")
    smoke = ap.parse_args().smoke
    d_old, d_new = (100, 120) if smoke else (1000, 1200)
    repeats = 1 if smoke else REPEATS
    rng = np.random.default_rng(0)
    cost = feature_cost(rng.random((d_old, 2)), rng.random((d_new, 2)))
    reg = 1e-2
    W = rng.normal(size=(10, d_old))
    a, b = np.full(d_old, 1 / d_old), np.full(d_new, 1 / d_new)
    times: dict[str, list[float]] = {"pot-sinkhorn": [], "transferkit-transport": []}
    for _ in range(repeats):
        start = time.perf_counter()
        ot.sinkhorn(a, b, cost, reg, method="sinkhorn_log", numItermax=10_000, stopThr=1e-9,
                    warn=False)
        times["pot-sinkhorn"].append(time.perf_counter() - start)
        start = time.perf_counter()
        transport_model(W, cost, reg, max_iter=10_000)
        times["transferkit-transport"].append(time.perf_counter() - start)
    base = statistics.median(times["pot-sinkhorn"])
    print(f"{d_old} -> {d_new} features, reg {reg:.3g}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:22s} {1e3 * med:8.1f} ms  {med / base:5.2f}x POT")


if __name__ == "__main__":
    main()
