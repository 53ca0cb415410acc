"""Claim ``l2sp``: fine-tuning pulled towards the starting point (L2-SP) beats plain L2.

Li, Grandvalet, Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional
Networks", ICML 2018, https://arxiv.org/abs/1802.01483.

Two regimes, each with k in {3, 10} labelled target images per class:

- ``overlap`` (the ImageNet -> Stanford Dogs analogue, where the paper's gain is largest):
  source = all ten classes of MNIST-5k (optdigits-style 8x8, see ``_digits``), target =
  scikit-learn's digits (other writers, another scanner), ten classes;
- ``disjoint`` (the MIT-67 analogue): source = MNIST-5k digits 0-4, target = digits 5-9.

The source MLP (64-256-256) is pretrained once per seed. Every fine-tuned arm starts from
it with a new, freshly initialised head (the same head for every arm of a seed), trains
*all* layers for a fixed number of steps (no early stopping) with SGD, momentum 0.9, the
same learning rate for every arm and **no optimiser weight decay**; the only difference
between arms is the penalty added to the mean cross-entropy:

- ``l2``: ``alpha/2 ||w_S||^2 + beta/2 ||w_head||^2`` (weight decay, the baseline);
- ``l2sp``: ``alpha/2 ||w_S - w0||^2 + beta/2 ||w_head||^2``;
- ``l1sp``, ``group-lasso-sp``: the L1 and per-output-unit group-lasso distances to ``w0``;
- ``l2sp-fisher``: L2-SP weighted by the diagonal Fisher of the source model on source
  data (``fisher_diagonal``, expected over the model's predictions, on
  ``fisher_examples`` source images), rescaled to mean 1 over the penalised weights so
  the same alpha grid applies (a constant rescaling is only a reparametrisation of alpha);
- ``frozen-features`` (reference): pretrained features frozen, the new head trained with
  L2 of strength ``alpha`` on the head;
- ``scratch`` (reference): the same network randomly initialised, L2 of strength ``alpha``
  on every weight.

Only conv/linear weights are penalised (no biases), as in the paper's code; ``beta`` is
fixed at the paper's 0.01. ``alpha`` is chosen **per arm, per setting and per seed** on a
validation split carved from the target's few labels (``max(1, k // 3)`` per class):
every alpha of the arm's grid is trained on the other labels and scored on the
validation images (accuracy, then cross-entropy to break ties); the arm's result is the
test accuracy of the model trained on all k labels per class with the chosen alpha. The
test set (all other target images) is never used to choose anything. L1-SP and
Group-Lasso-SP penalties are not quadratic, so their grid is the common grid times
their registered ``alpha_scale`` (0.01; :func:`transferkit.finetune.alpha_grid`).

The models trained on all k labels for every alpha also give the alpha sweep (target
accuracy against alpha for every arm; extras and the ``l2sp_alpha`` plot), and the arms
``<setting>/l2@alpha=0.1`` and ``<setting>/l2sp@alpha=0.1`` for the second comparison.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...data import Domain, few_shot_split, stratified_split
from ...finetune import (
    alpha_grid,
    create_regularizer,
    fisher_diagonal,
    freeze,
    list_finetune_methods,
    list_regularizers,
    regularizer_class,
    select_alpha,
)
from ...finetune.freezing import trainable
from ...nets import replace_head
from ...train import accuracy, predict_logits, seeded
from ..base import Claim, Comparison, SeedResult, register_claim
from ..plotting import figure
from ..units import unit
from ._digits import SourceSpec, build_net, pretrained_source, source_domain, targets
from ._training import fit_classifier

ARMS = ("l2", "l2sp", "l1sp", "group-lasso-sp", "l2sp-fisher", "frozen-features", "scratch")
SETTINGS = ("overlap-k3", "overlap-k10", "disjoint-k3", "disjoint-k10")
SWEEP_ALPHA = 0.1  # the alpha of the second comparison (the paper's default)


@dataclass(frozen=True)
class L2SPConfig:
    """Budget of the ``l2sp`` claim (see the module docstring)."""

    seeds: int = 10
    settings: tuple[str, ...] = SETTINGS
    arms: tuple[str, ...] = ARMS  # the verdict needs l2 and l2sp
    overlap_source: SourceSpec = field(default_factory=SourceSpec)
    disjoint_source: SourceSpec = field(
        default_factory=lambda: SourceSpec(classes=(0, 1, 2, 3, 4))
    )
    steps: int = 500
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    alphas: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    beta: float = 0.01
    fisher_examples: int = 1000


def _parse(setting: str) -> tuple[str, int]:
    regime, _, k = setting.partition("-k")
    if regime not in ("overlap", "disjoint") or not k.isdigit():
        raise ValueError(f"a setting is 'overlap-k<k>' or 'disjoint-k<k>'; got {setting!r}")
    return regime, int(k)


_METHOD = {"l2": "finetune", "frozen-features": "linear-probe"}  # arm -> fine-tuning method


def _grid(cfg: L2SPConfig, arm: str) -> tuple[float, ...]:
    method = _METHOD.get(arm, arm)
    return alpha_grid(method, cfg.alphas) if method in list_finetune_methods() else cfg.alphas


def _spec(cfg: L2SPConfig, regime: str) -> SourceSpec:
    return cfg.overlap_source if regime == "overlap" else cfg.disjoint_source


@lru_cache(maxsize=8)
def _fisher(spec: SourceSpec, seed: int, n_examples: int) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of the pretrained source net on source images, rescaled to mean 1."""
    source = source_domain(spec)
    idx = torch.randperm(len(source), generator=torch.Generator().manual_seed(seed))
    images = source.images[idx[:n_examples]]
    fisher = fisher_diagonal(pretrained_source(spec, seed), images, mode="expected")
    mean = torch.cat([f.flatten() for f in fisher.values()]).mean()
    return {n: f / mean for n, f in fisher.items()}


def _build(
    arm: str, alpha: float, cfg: L2SPConfig, spec: SourceSpec, n_classes: int, seed: int
) -> tuple[nn.Module, nn.Module]:
    """The network of an arm (pretrained + new head, or scratch) and its penalty."""
    if arm == "scratch":
        with seeded(seed + 1):
            net = build_net(spec, n_classes)
        return net, create_regularizer("l2", model=net, alpha=alpha, beta=alpha, new=["head"])
    net = pretrained_source(spec, seed)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    with seeded(seed + 1):
        replace_head(net, n_classes)
    kw: dict[str, Any] = {"model": net, "source": start, "new": ["head"]}
    if arm == "frozen-features":  # a linear probe: only the new head trains
        freeze(net, blocks=len(net.features))
        return net, create_regularizer("l2", alpha=0.0, beta=alpha, **kw)
    if arm not in list_regularizers():
        raise ValueError(f"unknown arm {arm!r}; the arms are {ARMS}")
    if regularizer_class(arm).needs_fisher:
        kw["fisher"] = _fisher(spec, seed, cfg.fisher_examples)
    return net, create_regularizer(arm, alpha=alpha, beta=cfg.beta, **kw)


def _train(
    arm: str, alpha: float, data: Domain, cfg: L2SPConfig, spec: SourceSpec, n_classes: int,
    seed: int,
) -> nn.Module:
    net, reg = _build(arm, alpha, cfg, spec, n_classes, seed)
    return fit_classifier(net, (data.images, data.labels), steps=cfg.steps,
                          batch_size=cfg.batch_size, lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=0.0, seed=seed, params=trainable(net), regularizer=reg,
                          desc=f"l2sp {arm} alpha={alpha:g}")


def _drift(net: nn.Module, spec: SourceSpec, seed: int) -> float:
    """Relative distance ||w - w0|| / ||w0|| of the pretrained hidden weights."""
    start = pretrained_source(spec, seed).state_dict()
    num = den = 0.0
    for name, p in net.named_parameters():
        if name.startswith("features") and name.endswith("weight"):
            num += float((p.detach() - start[name]).pow(2).sum())
            den += float(start[name].pow(2).sum())
    return math.sqrt(num / den) if den else float("nan")


def _sweep(
    arm: str, cfg: L2SPConfig, spec: SourceSpec, n_classes: int, seed: int,
    data: tuple[Domain, Domain, Domain, Domain],
) -> dict[str, Any]:
    """One arm over its alpha grid: validation scores (models fitted on ``fit_part``) and
    test accuracy (models fitted on all k labels); the chosen alpha is the best on
    validation accuracy, then cross-entropy, then the smaller alpha."""
    fit_part, val, train, test = data
    grid = _grid(cfg, arm)
    val_acc, val_ce, test_acc, drift = [], [], [], []
    for alpha in grid:
        net = _train(arm, alpha, fit_part, cfg, spec, n_classes, seed)
        logits = predict_logits(net, val.images)  # accuracy and CE from the same logits
        val_acc.append(float((logits.argmax(1) == val.labels).float().mean()))
        val_ce.append(float(F.cross_entropy(logits, val.labels)))
        net = _train(arm, alpha, train, cfg, spec, n_classes, seed)
        test_acc.append(accuracy(net, test.images, test.labels))
        drift.append(_drift(net, spec, seed) if arm != "scratch" else float("nan"))
    best = select_alpha(val_acc, val_ce)
    return {"alphas": list(grid), "val_acc": val_acc, "val_ce": val_ce, "test_acc": test_acc,
            "drift": drift, "chosen": grid[best], "best": best}


def run(cfg: L2SPConfig, seed: int) -> SeedResult:
    """One seed of every setting and arm: alpha chosen on validation, test accuracy."""
    if SWEEP_ALPHA not in cfg.alphas:
        raise ValueError(f"alphas must contain {SWEEP_ALPHA} (the second comparison's alpha)")
    arms: dict[str, float] = {}
    extras: dict[str, Any] = {}
    for setting in cfg.settings:
        regime, k = _parse(setting)
        spec = _spec(cfg, regime)
        classes = None if regime == "overlap" else (5, 6, 7, 8, 9)
        target = targets(classes, spec.resolution)
        n_classes = target.n_classes
        train, test = few_shot_split(target, k, seed=seed)
        val, fit_part = stratified_split(train, max(1, k // 3), seed=seed + 1000)
        sweep: dict[str, Any] = {}
        for arm in cfg.arms:
            data = (fit_part, val, train, test)
            sweep[arm] = unit(f"{setting}/{arm}",
                              partial(_sweep, arm, cfg, spec, n_classes, seed, data))
            arms[f"{setting}/{arm}"] = sweep[arm]["test_acc"][sweep[arm]["best"]]
        for arm in ("l2", "l2sp"):
            i = list(cfg.alphas).index(SWEEP_ALPHA)
            arms[f"{setting}/{arm}@alpha={SWEEP_ALPHA:g}"] = sweep[arm]["test_acc"][i]
        extras[setting] = sweep
    return SeedResult(arms, {"sweep": extras})


def plot(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Target accuracy against alpha for every arm and setting (mean +- std over seeds)."""
    per_seed = result.get("extras") or {}
    if not per_seed:
        return []

    first = next(iter(per_seed.values()))["sweep"]
    settings = list(first)
    with figure(out_dir, "l2sp_alpha", figsize=(3.6 * len(settings) + 1.4, 3.4)) as (fig, path):
        axes = fig.subplots(1, len(settings), squeeze=False)
        _draw_sweep(fig, axes, first, per_seed, settings, result)
    return [path]


def _draw_sweep(fig: Any, axes: Any, first: Mapping[str, Any], per_seed: Mapping[str, Any],
                settings: list[str], result: Mapping[str, Any]) -> None:
    import numpy as np

    for ax, setting in zip(axes[0], settings, strict=True):
        for arm in first[setting]:
            alphas = np.asarray(first[setting][arm]["alphas"], dtype=float)
            acc = np.asarray(
                [seed["sweep"][setting][arm]["test_acc"] for seed in per_seed.values()],
                dtype=float,
            )
            mean, std = acc.mean(0), acc.std(0, ddof=1 if len(acc) > 1 else 0)
            style = "--" if arm in ("frozen-features", "scratch") else "-"
            ax.errorbar(alphas, mean, yerr=std, label=arm, ls=style, marker="o", ms=3,
                        capsize=2, lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("alpha (L1-SP, Group-Lasso-SP: their own grid)")
        ax.set_title(setting, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("target test accuracy (all k labels)")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"l2sp: target accuracy vs alpha ({result.get('budget')}, "
                 f"{len(per_seed)} seeds)", fontsize=9)


_OWN = [Comparison(f"overlap-k{k}/l2sp", f"overlap-k{k}/l2", 0.005) for k in (3, 10)]
_OTHER = (
    [
        Comparison(f"overlap-k{k}/l2sp@alpha=0.1", f"overlap-k{k}/l2@alpha=0.1", 0.005,
                   own=False, optional=True)
        for k in (3, 10)
    ]
    + [Comparison(f"disjoint-k{k}/l2sp", f"disjoint-k{k}/l2", 0.005, own=False,
                  optional=True) for k in (3, 10)]
    + [
        Comparison(f"disjoint-k{k}/l2sp@alpha=0.1", f"disjoint-k{k}/l2@alpha=0.1", 0.005,
                   own=False, optional=True)
        for k in (3, 10)
    ]
    + [
        Comparison(f"overlap-k3/{arm}", "overlap-k3/l2", 0.005, own=False, optional=True)
        for arm in ("l1sp", "group-lasso-sp", "l2sp-fisher")
    ]
    + [Comparison("overlap-k3/l2sp", "overlap-k3/frozen-features", 0.0, own=False,
                  optional=True)]
)

CLAIM = register_claim(
    Claim(
        name="l2sp",
        paper="Li, Grandvalet, Davoine. Explicit Inductive Bias for Transfer Learning with "
        "Convolutional Networks. ICML 2018, https://arxiv.org/abs/1802.01483",
        statement="Fine-tuning with L2-SP (L2 towards the pretrained weights) beats fine-tuning "
        "with plain L2 weight decay on a small target whose classes the source covers",
        metric="target_accuracy",
        higher_is_better=True,
        bounds=(0.0, 1.0),
        budgets={
            "quick": L2SPConfig(
                seeds=6,
                settings=("overlap-k3", "overlap-k10"),
                arms=("l2", "l2sp"),
                steps=150,
                alphas=(0.01, 0.1, 1.0),
                overlap_source=SourceSpec(steps=600),
                disjoint_source=SourceSpec(classes=(0, 1, 2, 3, 4), steps=600),
                fisher_examples=300,
            ),
            "full": L2SPConfig(seeds=10),
        },
        run=run,
        comparisons=[*_OWN, *_OTHER],
        plot=plot,
        notes=(
            "Quick budget (2026-12-06): 6 seeds with the verdict's settings and arms only "
            "(overlap k = 3 and 10; l2 and l2sp) (seeds 0..5), so that a quick verdict can say "
            "something (at least 5 seeds; a sixth costs no wall time on 2 cores). Changed after "
            "the earlier quick verdict was seen, for run time and seeds only: the old budget (2 "
            "seeds, all four settings and seven arms; about 28 s a seed), re-judged with three "
            "outcomes, gave inconclusive at 2 seeds (overlap-k3/l2sp vs overlap-k3/l2 -0.009 "
            "[-0.016, -0.002]; overlap-k10/l2sp vs overlap-k10/l2 +0.006 [+0.002, +0.009]); the "
            "new one gives inconclusive at 6 seeds (overlap-k3/l2sp vs overlap-k3/l2 +0.007 "
            "[-0.016, +0.030]; overlap-k10/l2sp vs overlap-k10/l2 +0.001 [-0.008, +0.010]). The "
            "full budget is unchanged. "
            "Before that, the quick budget: 2 seeds (0..1); 3 until 2026-12-02, cut for the "
            "main job's run time only (about twice as slow on this day's machines). "
            "Regime: MNIST-5k (optdigits-style 8x8) -> scikit-learn digits; `overlap` = all "
        "ten classes, `disjoint` = source 0-4, target 5-9; k labelled target images per "
        "class. All layers trained, SGD momentum 0.9, no optimiser weight decay, the same lr "
        "for every arm, fixed number of steps (no early stopping), beta = 0.01; alpha chosen "
        "per arm and seed on a validation split of the k labels (never the test set). "
        "Issue prototype (MLP, 8 seeds, 1,000 steps, best alpha per arm, overlap): k = 3 "
        "L2-SP 84.2 vs L2 83.2; k = 10 92.1 vs 91.6; as alpha went 0.001 -> 1, L2 fell "
        "83.2 -> 73.5 and then to chance while L2-SP stayed within 83.0-84.2. The "
        "`l2sp_alpha` figure is the alpha sweep (models trained on all k labels); "
        "`@alpha=0.1` arms are its alpha = 0.1 column. Paper: L2-SP > L2 by several points "
        "on Stanford Dogs (ImageNet source); Fisher adds little. Protocol: quick runs seeds "
        "0..5 (development), full 1000..1009 (confirmation); alpha is selected inside the "
        "recipe on validation labels, beta fixed at the paper's 0.01; nothing else was "
        "chosen by looking at results."
        ),
    )
)
