"""Claim ``bbse-detection``: the chi-squared test on predicted labels is calibrated, and under
tweak-one shift it has more power than an MMD test on the inputs.

Lipton, Wang, Smola, ICML 2018 (https://proceedings.mlr.press/v80/lipton18a.html), Sec. 5.

Black box and pool as in ``bbse-estimation`` (MNIST-5k at 14x14, MLP trained on 200 images
per class, 3,000-image pool drawn from with replacement). Per seed:

- ``null/chi2`` (``null/ks``): the fraction of ``null_trials`` two-sample tests at
  alpha = 0.05 that reject when holdout and target (``n_null`` each) have the same prior.
  The claim's bounds "null/chi2 > 0.02" and "null/chi2 < 0.08" are one-sample tests over
  seeds.
- ``n<N>/chi2``, ``n<N>/ks``, ``n<N>/mmd``: the power curve, the fraction of
  ``power_trials`` tests that reject when the target (``N`` images, as the holdout) has a
  tweak-one prior (one class, drawn per trial, at ``delta``; the others share the rest),
  for N in ``ns``. MMD: :func:`transferkit.labelshift.mmd_shift_test` on the flattened
  14x14 inputs (Gaussian kernel, median heuristic, permutation p-value).

Pre-registration of the claim's own power comparison: at delta = 0.5 and n = 1,000 (the
first design) every test had power 1.0 on this black box, so no difference could show.
The comparison point must be where the weaker test's power lies in [0.2, 0.8]; it was
taken from the earlier 10-seed run on development seeds 0..9 (delta = 0.2, n = 200: chi2
0.373, MMD 0.260) *before* this recipe was run, and is fixed as ``n200/chi2`` against
``n200/mmd`` with a margin of 0.05 (five points of power). The other points of the curve
are reported beside it and plotted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data import sample_with_prior, tweak_one_prior
from ...labelshift import chi2_shift_test, ks_shift_test, mmd_shift_test
from ..base import Bound, Claim, Comparison, SeedResult, register_claim
from ..plotting import figure
from ._labelshift import PAPER, BlackBoxSpec, black_box

TESTS = ("chi2", "ks", "mmd")


@dataclass(frozen=True)
class DetectionConfig:
    seeds: int = 3
    n_null: int = 1000
    null_trials: int = 200
    ns: tuple[int, ...] = (100, 200, 400, 800)  # must hold 200, the pre-registered point
    delta: float = 0.2
    power_trials: int = 30
    permutations: int = 200
    alpha: float = 0.05
    black_box: BlackBoxSpec = BlackBoxSpec()


def run(cfg: DetectionConfig, seed: int) -> SeedResult:
    bb = black_box(cfg.black_box, seed)
    rng = np.random.default_rng([seed, 52018])
    gen = torch.Generator().manual_seed(seed)
    k = 10
    uniform = np.full(k, 1.0 / k)
    pool_x = bb.pool_x.reshape(len(bb.pool_x), -1)
    pred, prob = bb.pool_proba.argmax(axis=1), bb.pool_proba
    null_chi2, null_ks = [], []
    for _ in range(cfg.null_trials):
        h = sample_with_prior(bb.pool_y, uniform, cfg.n_null, rng)
        t = sample_with_prior(bb.pool_y, uniform, cfg.n_null, rng)
        null_chi2.append(chi2_shift_test(pred[h], pred[t], cfg.alpha, n_classes=k).reject)
        null_ks.append(ks_shift_test(prob[h], prob[t], cfg.alpha).reject)
    arms = {"null/chi2": float(np.mean(null_chi2)), "null/ks": float(np.mean(null_ks))}
    for n in cfg.ns:
        power: dict[str, list[bool]] = {name: [] for name in TESTS}
        for _ in range(cfg.power_trials):
            q = tweak_one_prior(k, cfg.delta, seed=rng)
            h = sample_with_prior(bb.pool_y, uniform, n, rng)
            t = sample_with_prior(bb.pool_y, q, n, rng)
            power["chi2"].append(chi2_shift_test(pred[h], pred[t], cfg.alpha, n_classes=k).reject)
            power["ks"].append(ks_shift_test(prob[h], prob[t], cfg.alpha).reject)
            power["mmd"].append(mmd_shift_test(
                pool_x[torch.from_numpy(h)], pool_x[torch.from_numpy(t)], cfg.alpha,
                cfg.permutations, gen).reject)
        arms.update({f"n{n}/{name}": float(np.mean(v)) for name, v in power.items()})
    return SeedResult(arms=arms)


def plot(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Power against n for each test (mean over seeds, 95% t interval as a band)."""
    ns = result["config"]["ns"]
    summary = result["summary"]
    with figure(out_dir, "bbse-detection_power") as (fig, path):
        ax = fig.add_subplot(1, 1, 1)
        for name in TESTS:
            mean = [summary[f"n{n}/{name}"]["mean"] for n in ns]
            lo = [summary[f"n{n}/{name}"]["ci95"][0] for n in ns]
            hi = [summary[f"n{n}/{name}"]["ci95"][1] for n in ns]
            ax.plot(ns, mean, marker="o", label=name)
            ax.fill_between(ns, lo, hi, alpha=0.15)
        ax.axhspan(0.2, 0.8, color="grey", alpha=0.08, label="power 0.2-0.8")
        from matplotlib.ticker import NullLocator

        ax.set_xscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("n (holdout = target size)")
        ax.set_ylabel(f"power at tweak-one delta = {result['config']['delta']}")
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower right")
    return [path]


CLAIM = register_claim(
    Claim(
        name="bbse-detection",
        paper=PAPER,
        statement=("The chi-squared test on predicted labels has a false-positive rate in "
                   "[0.02, 0.08] at alpha = 0.05 without shift, and under tweak-one shift "
                   "(delta = 0.2, n = 200, where the weaker test's power is between 0.2 and "
                   "0.8) more power than an MMD test on the inputs, by more than 0.05"),
        metric="rejection_rate",
        higher_is_better=True,
        bounds=(0.0, 1.0),
        budgets={"quick": DetectionConfig(seeds=6, null_trials=200, power_trials=20,
                                          permutations=100),
                 "full": DetectionConfig(seeds=10, null_trials=300, power_trials=40,
                                         permutations=200)},
        run=run,
        comparisons=[
            Bound("null/chi2", 0.02, above=True),
            Bound("null/chi2", 0.08, above=False),
            Comparison("n200/chi2", "n200/mmd", 0.05),
            *[Comparison(f"n{n}/chi2", f"n{n}/mmd", 0.0, own=False) for n in (100, 400, 800)],
            Comparison("n200/ks", "n200/mmd", 0.0, own=False),
        ],
        plot=plot,
        notes=(
            "Quick budget (2026-12-06): 6 seeds (0..5), so that a quick verdict can say something "
            "(at least 5 seeds; a sixth costs no wall time on 2 cores). Changed after the earlier "
            "quick verdict was seen, for run time and seeds only: the old budget (3 seeds), "
            "re-judged with three outcomes, gave inconclusive at 3 seeds (null/chi2 > 0.02 +0.027 "
            "[+0.001, +0.053]; null/chi2 < 0.08 +0.033 [+0.007, +0.059]; n200/chi2 vs n200/mmd "
            "+0.100 [-0.148, +0.348]); the new one gives inconclusive at 6 seeds (null/chi2 > "
            "0.02 +0.028 [+0.017, +0.038]; null/chi2 < 0.08 +0.033 [+0.022, +0.043]; n200/chi2 vs "
            "n200/mmd +0.133 [-0.021, +0.288]). The full budget is unchanged. "
            "Before that, the quick budget: 3 seeds (0..2); 5 until 2026-12-02, cut for the "
            "main job's run time only (about twice as slow on this day's machines). "
            "`null/*` arms are false-positive rates, `n<N>/*` arms are powers at "
            "tweak-one delta = 0.2. The first design compared powers at delta = 0.5, "
            "n = 1,000, where every test reached power 1 (zero difference, p = 1): the "
            "comparison point was then moved, once, to the point where the weaker test's "
            "power was 0.26 in the earlier 10-seed development run (seeds 0..9), and fixed "
            "before the confirmation seeds were run. Quick runs seeds 0..5, full runs "
            "1000..1009."
        ),
    )
)
