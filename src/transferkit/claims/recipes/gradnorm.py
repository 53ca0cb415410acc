"""Claim ``gradnorm``: loss balancing on a real multi-task set with very different loss scales.

GradNorm (Chen et al., ICML 2018, https://arxiv.org/abs/1711.02257) on scikit-learn's
8x8 digits with three tasks read off each image: the digit (10-way cross-entropy, loss
~2.3 at the start), its parity (2-way cross-entropy, ~0.7) and "bold ink", the total ink
(UCI 0-16 counts) in the pixels that are at least half full (a thresholded, nonlinear
statistic; regression by squared error on its raw scale, centred on the training mean:
std ~40, so its loss starts ~10^3 times the cross-entropies). The metric is the
multi-task literature's Delta_m% (Maninis et al. 2019; Vandenhende et al. 2021): the
mean over tasks of the relative change of the task's test metric against a single-task
network of the same size, sign-flipped where lower is better (accuracy for digit and
parity, RMSE for bold ink); higher is better.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from ...data import load_digits
from ...multitask import SharedTrunk, create_weighting, multitask_step
from ...train import Phase, Stream, Trainer, evaluating, seeded
from ..base import Claim, Comparison, SeedResult, register_claim
from ..units import unit
from .gradnorm_toy import PAPER

ARMS = ("equal", "uncertainty", "dwa", "gradnorm")
TASKS = {"digit": "ce", "parity": "ce", "bold_ink": "mse"}
OUT_DIM = {"digit": 10, "parity": 2, "bold_ink": 1}
LOWER_IS_BETTER = {"digit": False, "parity": False, "bold_ink": True}


@dataclass(frozen=True)
class DigitsMTLConfig:
    seeds: int = 3
    n_train: int = 600
    n_val: int = 300
    hidden: tuple[int, ...] = (128, 128)
    steps: int = 600
    batch_size: int = 64
    lr: float = 1e-3
    alpha: float = 1.5
    weighting_lr: float = 0.025


def digit_tasks() -> tuple[Tensor, dict[str, Tensor]]:
    """Flattened digits in [0, 1] (n, 64) and the three targets."""
    d = load_digits()
    x = d.images.reshape(len(d.labels), -1)
    counts = x * 16.0
    bold = (counts * (counts >= 8.0)).sum(dim=1, keepdim=True)
    return x, {"digit": d.labels, "parity": d.labels % 2, "bold_ink": bold}


def _split(n: int, cfg: DigitsMTLConfig, seed: int) -> dict[str, Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(7919 * seed + 3))
    a, b = cfg.n_train, cfg.n_train + cfg.n_val
    return {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}


def _model(cfg: DigitsMTLConfig, tasks: Mapping[str, str]) -> SharedTrunk:
    layers: list[nn.Module] = []
    d = 64
    for h in cfg.hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    return SharedTrunk(nn.Sequential(*layers), {t: nn.Linear(d, OUT_DIM[t]) for t in tasks},
                       dict(tasks))


def task_metrics(model: SharedTrunk, x: Tensor, ys: Mapping[str, Tensor]) -> dict[str, float]:
    """Accuracy for the classification tasks, RMSE for the regression, on ``(x, ys)``."""
    out = evaluating(model, lambda m: m(x))
    res = {}
    for t in model.tasks:
        if TASKS[t] == "ce":
            res[t] = float((out[t].argmax(dim=1) == ys[t]).float().mean())
        else:
            res[t] = float(((out[t] - ys[t]) ** 2).mean().sqrt())
    return res


def train(cfg: DigitsMTLConfig, seed: int, tasks: Mapping[str, str], arm: str,
          x: Tensor, ys: Mapping[str, Tensor], idx: Mapping[str, Tensor]) -> dict[str, float]:
    """Train a network on ``tasks`` with weighting ``arm``; return its test metrics."""
    with seeded(seed):
        model = _model(cfg, tasks)
    names = list(model.tasks)
    tr = idx["train"]
    stream = Stream(x[tr], *[ys[t][tr] for t in names], batch_size=cfg.batch_size, seed=seed)
    kw: dict[str, Any] = {}
    if arm == "gradnorm":
        kw = {"alpha": cfg.alpha, "lr": cfg.weighting_lr}
    elif arm == "uncertainty":  # Kendall et al.'s form per likelihood
        forms = {"ce": "classification", "mse": "regression"}
        kw = {"lr": cfg.weighting_lr, "forms": [forms[tasks[t]] for t in names]}
    elif arm == "dwa":
        kw = {"period": max(1, cfg.n_train // cfg.batch_size)}
    strategy = create_weighting(arm, tasks=names, **kw)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    phase = Phase(multitask_step(), opt, {"train": stream}, combiner=strategy)
    Trainer(model, phase, cfg.steps, seed=seed, log_losses_every=0, desc=f"digits {arm}").fit()
    te = idx["test"]
    return task_metrics(model, x[te], {t: ys[t][te] for t in names})


def _single(cfg: DigitsMTLConfig, seed: int, task: str, x: Tensor, ys: Mapping[str, Tensor],
            idx: Mapping[str, Tensor]) -> float:
    """The single-task network's test metric on ``task``."""
    return train(cfg, seed, {task: TASKS[task]}, "equal", x, ys, idx)[task]


def delta_m(multi: Mapping[str, float], single: Mapping[str, float]) -> float:
    """Delta_m% = 100/T sum_k (-1)^{lower_k} (M_k - S_k) / S_k."""
    total = 0.0
    for t, s in single.items():
        sign = -1.0 if LOWER_IS_BETTER[t] else 1.0
        total += sign * (multi[t] - s) / s
    return 100.0 * total / len(single)


def run(cfg: DigitsMTLConfig, seed: int) -> SeedResult:
    """Single-task baselines, then each weighting arm; Delta_m% of each arm."""
    x, ys = digit_tasks()
    idx = _split(len(x), cfg, seed)
    # centred on the training mean, raw scale kept (std ~40: loss ~10^3 x the CE losses)
    ys = {**ys, "bold_ink": ys["bold_ink"] - ys["bold_ink"][idx["train"]].mean()}
    single = {t: unit(f"single/{t}", partial(_single, cfg, seed, t, x, ys, idx)) for t in TASKS}
    arms: dict[str, float] = {}
    per_task: dict[str, dict[str, float]] = {"single": single}
    for arm in ARMS:
        m = unit(arm, partial(train, cfg, seed, TASKS, arm, x, ys, idx))
        per_task[arm] = m
        arms[arm] = delta_m(m, single)
    return SeedResult(arms=arms, extras={"test_metrics": per_task})


NOTES = """\
Protocol. Quick runs seeds 0..5 (development), full 1000..1009 (confirmation). Chosen by
looking at development results: the bold-ink target is centred (an uncentred first trial
collapsed every multi-task arm); the quick budget first had 600 steps and 3 seeds, and
after its verdict (+0.45, p = 0.43, does not hold) it was set to the full regime's 1,500
steps with 6 seeds (both results are in the closing note of that change). GradNorm's
alpha (1.5) is the paper's NYUv2 value; no per-arm tuning.

Tasks on scikit-learn's digits (8x8, values 0-16): digit (10-way CE), parity (2-way CE),
bold ink = total ink in pixels at least half full (MSE on its raw scale, ~300 +- 40,
centred on the training mean; its initial loss is ~10^3 times the CE losses; uncentred,
the head's bias could not reach ~300 at Adam's step size and every multi-task arm
collapsed in a first trial, so the targets are centred). Per seed: 600 train / 300 held
out (unused: no tuning here) / 897 test images, a random split; trunk MLP 64-128-128
(ReLU), one linear head per task. Every network (single-task baselines of the same size
and every multi-task arm) trains with Adam, lr 1e-3, batch 64, for the same number of
steps (1500 in both budgets; quick has fewer seeds); no per-arm tuning in this claim.
GradNorm alpha = 1.5 (the paper's NYUv2 value), Adam lr 0.025 on the weights;
uncertainty weighting Adam lr 0.025 on log sigma^2, in Kendall et al.'s forms
(classification exp(-s) L + s/2 for digit and parity, regression exp(-s) L / 2 + s/2 for
bold ink); DWA temperature 2, period = one epoch.
Metric: Delta_m% against the single-task networks (accuracy for digit and parity, RMSE for
bold ink, sign-flipped); per-task test metrics are in the extras.
"""

CLAIM = register_claim(Claim(
    name="gradnorm",
    paper=PAPER,
    statement="On a real multi-task set whose losses differ in scale by ~10^3 (digits: class, "
              "parity, bold-ink regression), GradNorm's multi-task network beats equal "
              "weighting by more than 0.5 points of Delta_m% against single-task networks",
    metric="delta_m_percent",
    higher_is_better=True,
    budgets={"quick": DigitsMTLConfig(seeds=6, steps=1500),  # the full regime, fewer seeds
             "full": DigitsMTLConfig(seeds=10, steps=1500)},
    run=run,
    comparisons=[
        Comparison("gradnorm", "equal", 0.5),
        Comparison("gradnorm", "uncertainty", 0.0, own=False),
        Comparison("gradnorm", "dwa", 0.0, own=False),
    ],
    notes=(
            "Quick budget (2026-12-06): 6 seeds (0..5), so that a quick verdict can say something "
            "(at least 5 seeds; a sixth costs no wall time on 2 cores). Changed after the earlier "
            "quick verdict was seen, for run time and seeds only: the old budget (2 seeds), "
            "re-judged with three outcomes, gave inconclusive at 2 seeds (gradnorm vs equal "
            "+5.064 [-6.421, +16.550]); the new one gives holds at 6 seeds (gradnorm vs equal "
            "+3.952 [+1.579, +6.324]). The full budget is unchanged. "
            "Before that, the quick budget: 2 seeds (0..1); 6 until 2026-12-02, cut for the "
            "main job's run time only (about twice as slow on this day's machines). The quick "
            "verdict, seen before and after the cut: it held at 6 seeds and does not at 2 "
            "(+2.40, CI [-18.0, +22.8]). The full budget is unchanged. "
            + NOTES),
))
