"""Which MLLS (EM) variant to make the default: weight error under Dirichlet shifts.

The black box is the ``bbse-estimation`` claim's (an MLP on 14x14 MNIST-5k, 200 training
images per class; its pool is never trained on). Per black-box seed and trial: a holdout of
1,000 pool images with the pool's prior, and a target of 2,000 drawn with a Dirichlet(alpha)
prior; every variant estimates the weights from the same probabilities. Printed: the mean
squared error of the weights (and its standard error) over all seeds and trials, per alpha.
It informs a library default only; no claim's verdict depends on it.

    python benchmarks/bench_mlls_defaults.py [--seeds 3] [--trials 20]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch

from transferkit.claims.recipes._labelshift import BlackBoxSpec, black_box
from transferkit.data import dirichlet_prior, sample_with_prior
from transferkit.labelshift import BBSE, MLLS

VARIANTS = {
    "mlls (no calibration, label prior)": lambda: MLLS(calibration=None, interval="none"),
    "mlls (no calibration, predicted prior)": lambda: MLLS(
        calibration=None, source_prior="predictions", interval="none"),
    "mlls + ts": lambda: MLLS(calibration="ts", interval="none"),
    "mlls + bcts": lambda: MLLS(calibration="bcts", interval="none"),
    "bbse (hard)": lambda: BBSE(interval="none"),
    "bbse (soft)": lambda: BBSE(soft=True, interval="none"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    errors: dict[tuple[float, str], list[float]] = {}
    for seed in range(args.seeds):
        bb = black_box(BlackBoxSpec(), seed)
        rng = np.random.default_rng([seed, 7])
        uniform = np.bincount(bb.pool_y, minlength=10) / len(bb.pool_y)
        for alpha in (1.0, 10.0):
            for _ in range(args.trials):
                h = sample_with_prior(bb.pool_y, uniform, 1000, rng)
                q = dirichlet_prior(10, alpha, rng)
                t = sample_with_prior(bb.pool_y, q, 2000, rng)
                p_h = np.bincount(bb.pool_y[h], minlength=10) / len(h)
                if (p_h == 0).any():
                    continue
                true_w = (np.bincount(bb.pool_y[t], minlength=10) / len(t)) / p_h
                for name, make in VARIANTS.items():
                    est = make()
                    hx = bb.pool_proba[h]
                    tx = bb.pool_proba[t]
                    if isinstance(est, BBSE) and not est.soft:
                        hx, tx = hx.argmax(1), tx.argmax(1)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        w = est.fit(hx, bb.pool_y[h]).estimate(tx).weights
                    errors.setdefault((alpha, name), []).append(float(np.mean((w - true_w) ** 2)))
    for alpha in (1.0, 10.0):
        print(f"Dirichlet alpha = {alpha:g} (mean squared weight error, lower is better)")
        rows = sorted(((np.mean(v), np.std(v) / np.sqrt(len(v)), name)
                       for (a, name), v in errors.items() if a == alpha))
        for mean, se, name in rows:
            print(f"  {name:40s} {mean:9.5f} +- {se:.5f}")


if __name__ == "__main__":
    main()
