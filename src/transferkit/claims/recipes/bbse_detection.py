"""Claim ``bbse-detection``: the chi-squared test on predicted labels is calibrated, and under
tweak-one shift it has more power than an MMD test on the inputs.

Lipton, Wang, Smola, ICML 2018 (https://proceedings.mlr.press/v80/lipton18a.html), Sec. 5.

Black box and pool as in ``bbse-estimation`` (MNIST-5k at 14x14, MLP trained on 200 images
per class, 3,000-image pool drawn from with replacement). Per seed:

- ``null/chi2`` (``null/ks``): the fraction of ``null_trials`` two-sample tests at
  alpha = 0.05 that reject when holdout and target (``n`` each) have the same uniform prior.
- ``tweak/chi2``, ``tweak/ks``, ``tweak/mmd``: the fraction that reject when the target has a
  tweak-one prior (one class, drawn per trial, at ``delta``; the others share the rest).
  MMD: Gaussian kernel on the flattened 14x14 inputs, bandwidth by the median heuristic,
  biased MMD^2 with a permutation p-value (``permutations`` draws).
- ``small/chi2``, ``small/ks``, ``small/mmd``: the same at a smaller shift (``small_delta``
  = 0.2 at ``small_n`` = 200), reported beside the claim because at delta = 0.5 and
  n = 1,000 every test reaches power 1 on this black box.
- ``bound/fpr-min`` and ``bound/fpr-max`` are the constants 0.02 and 0.08: the comparisons
  "null/chi2 > bound/fpr-min" and "bound/fpr-max > null/chi2" are one-sample t-tests over
  seeds that the false-positive rate lies inside [0.02, 0.08].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...data import sample_with_prior, tweak_one_prior
from ...labelshift import chi2_shift_test, ks_shift_test
from ..base import Claim, Comparison, SeedResult, register_claim
from .bbse_estimation import PAPER, BlackBoxSpec, black_box


@dataclass(frozen=True)
class DetectionConfig:
    seeds: int = 3
    n: int = 1000
    delta: float = 0.5
    null_trials: int = 200
    power_trials: int = 10
    permutations: int = 200
    alpha: float = 0.05
    # a smaller shift, reported beside the claim (both tests saturate at delta = 0.5)
    small_n: int = 200
    small_delta: float = 0.2
    small_trials: int = 30
    black_box: BlackBoxSpec = BlackBoxSpec()


def mmd_permutation_test(
    x: torch.Tensor, y: torch.Tensor, permutations: int, gen: torch.Generator
) -> float:
    """p-value of a Gaussian-kernel MMD two-sample test (median heuristic, permutations)."""
    z = torch.cat([x, y]).double()
    d2 = torch.cdist(z, z).pow_(2)
    n = len(z)
    med = d2[torch.triu_indices(n, n, 1, device=d2.device).unbind()].median()
    kern = torch.exp(-d2 / med.clamp_min(1e-12))
    m = len(x)
    labels = torch.cat([torch.full((m,), 1.0 / m), torch.full((n - m,), -1.0 / (n - m))])
    labels = labels.double()
    perms = torch.stack([labels[torch.randperm(n, generator=gen)] for _ in range(permutations)],
                        dim=1)
    signs = torch.cat([labels[:, None], perms], dim=1)  # (n, 1 + P)
    stats = (signs * (kern @ signs)).sum(dim=0)  # biased MMD^2 for each labelling
    return float((1 + (stats[1:] >= stats[0]).sum()) / (1 + permutations))


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
        h = sample_with_prior(bb.pool_y, uniform, cfg.n, rng)
        t = sample_with_prior(bb.pool_y, uniform, cfg.n, rng)
        null_chi2.append(chi2_shift_test(pred[h], pred[t], cfg.alpha, n_classes=k).reject)
        null_ks.append(ks_shift_test(prob[h], prob[t], cfg.alpha).reject)
    arms_power: dict[str, float] = {}
    for setting, n, delta, trials in (("tweak", cfg.n, cfg.delta, cfg.power_trials),
                                      ("small", cfg.small_n, cfg.small_delta,
                                       cfg.small_trials)):
        power: dict[str, list[bool]] = {"chi2": [], "ks": [], "mmd": []}
        for _ in range(trials):
            q = tweak_one_prior(k, delta, seed=rng)
            h = sample_with_prior(bb.pool_y, uniform, n, rng)
            t = sample_with_prior(bb.pool_y, q, n, rng)
            power["chi2"].append(chi2_shift_test(pred[h], pred[t], cfg.alpha, n_classes=k).reject)
            power["ks"].append(ks_shift_test(prob[h], prob[t], cfg.alpha).reject)
            p = mmd_permutation_test(pool_x[torch.from_numpy(h)], pool_x[torch.from_numpy(t)],
                                     cfg.permutations, gen)
            power["mmd"].append(p < cfg.alpha)
        arms_power.update({f"{setting}/{name}": float(np.mean(v)) for name, v in power.items()})
    arms = {
        "null/chi2": float(np.mean(null_chi2)),
        "null/ks": float(np.mean(null_ks)),
        "bound/fpr-min": 0.02,
        "bound/fpr-max": 0.08,
    }
    arms.update(arms_power)
    return SeedResult(arms=arms)


CLAIM = register_claim(
    Claim(
        name="bbse-detection",
        paper=PAPER,
        statement=("The chi-squared test on predicted labels has a false-positive rate in "
                   "[0.02, 0.08] at alpha = 0.05 without shift, and under tweak-one shift "
                   "(delta = 0.5, n = 1,000) more power than an MMD test on the inputs"),
        metric="rejection_rate",
        higher_is_better=True,
        budgets={"quick": DetectionConfig(seeds=5, null_trials=200, power_trials=8,
                                          permutations=100),
                 "full": DetectionConfig(seeds=10, null_trials=300, power_trials=25,
                                         permutations=200, small_trials=60)},
        run=run,
        comparisons=[
            Comparison("null/chi2", "bound/fpr-min", 0.0),
            Comparison("bound/fpr-max", "null/chi2", 0.0),
            Comparison("tweak/chi2", "tweak/mmd", 0.0),
            Comparison("tweak/ks", "tweak/mmd", 0.0, own=False),
            Comparison("small/chi2", "small/mmd", 0.0, own=False),
            Comparison("small/ks", "small/mmd", 0.0, own=False),
        ],
        notes=(
            "`null/*` arms are false-positive rates, `tweak/*` arms are powers; "
            "`bound/*` are constants so that 'within [0.02, 0.08]' is two one-sample tests "
            "over seeds. When both tests reach power 1 the power comparison cannot hold "
            "(zero difference): that is reported as is, not tuned away."
        ),
    )
)
