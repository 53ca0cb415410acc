"""Claim ``finetune``: the basic recipe of transfer beats training from scratch on few labels.

Source: all ten classes of MNIST-5k brought to 8x8 the way UCI made optdigits; the source
network (an MLP 64-256-256) is pretrained once per seed and shared by the arms. Target:
scikit-learn's digits (other writers, another scanner), ``k`` labelled images per class
drawn per seed, all the rest as the test set. Arms, per setting ``k<k>``:

- ``scratch``: the same architecture, steps, optimiser and weight decay, randomly
  initialised (a matched baseline: nothing but the initialisation differs);
- ``linear-probe``: pretrained features frozen, a new head trained;
- ``finetune``: the shallow block frozen, the deep block and a new head trained;
- ``finetune-all``: nothing frozen, pretrained layers at a tenth of the head's learning rate;
- ``source-only`` (reference): the source network applied to the target unchanged.

Every trained arm uses the same SGD settings and the same weight decay; none is tuned on
the test set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch

from ...data import few_shot_split
from ...finetune import freeze, param_groups
from ...nets import replace_head
from ...train import seeded
from ..base import Claim, Comparison, SeedResult, register_claim
from ..units import unit
from ._digits import SourceSpec, build_net, pretrained_source, target_accuracy, targets
from ._training import fit_classifier


@dataclass(frozen=True)
class FinetuneConfig:
    seeds: int = 5
    ks: tuple[int, ...] = (3, 10)
    source: SourceSpec = field(default_factory=SourceSpec)
    steps: int = 300
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    pretrained_lr_factor: float = 0.1
    frozen_blocks: int = 2  # flatten + the first hidden block of the MLP


def _train(net: torch.nn.Module, groups: list, train, cfg: FinetuneConfig, seed: int) -> None:
    fit_classifier(net, (train.images, train.labels), steps=cfg.steps,
                   batch_size=cfg.batch_size, lr=cfg.lr, momentum=cfg.momentum,
                   weight_decay=cfg.weight_decay, seed=seed, params=groups, desc="finetune")


def _arm(cfg: FinetuneConfig, seed: int, k: int, arm: str) -> float:
    """Target test accuracy of one arm at k labels per class (a cached unit of work)."""
    target = targets(None, cfg.source.resolution)
    train, test = few_shot_split(target, k, seed=seed)
    n_classes = target.n_classes
    if arm == "source-only":
        return target_accuracy(pretrained_source(cfg.source, seed), test)
    if arm == "scratch":
        with seeded(seed + 1):
            net = build_net(cfg.source, n_classes)
        _train(net, param_groups(net, cfg.lr, cfg.lr), train, cfg, seed)
        return target_accuracy(net, test)
    net = pretrained_source(cfg.source, seed)
    blocks, factor = {"linear-probe": (len(net.features), 1.0),
                      "finetune": (cfg.frozen_blocks, 1.0),
                      "finetune-all": (0, cfg.pretrained_lr_factor)}[arm]
    with seeded(seed + 1):
        replace_head(net, n_classes)
    freeze(net, blocks=blocks)
    _train(net, param_groups(net, cfg.lr, cfg.lr * factor), train, cfg, seed)
    return target_accuracy(net, test)


ARMS = ("source-only", "scratch", "linear-probe", "finetune", "finetune-all")


def run(cfg: FinetuneConfig, seed: int) -> SeedResult:
    arms: dict[str, float] = {}
    for k in cfg.ks:
        for arm in ARMS:
            name = f"k{k}/{arm}"
            arms[name] = unit(name, partial(_arm, cfg, seed, k, arm))
    return SeedResult(arms)


CLAIM = register_claim(
    Claim(
        name="finetune",
        paper="Yosinski et al., How transferable are features in deep neural networks? "
        "NeurIPS 2014 (the fine-tuning baseline the ICML 2018 transfer papers build on)",
        statement="Fine-tuning a pretrained network (shallow layers frozen) beats a matched "
        "network trained from scratch on a target with 3 labels per class",
        metric="target_accuracy",
        higher_is_better=True,
        bounds=(0.0, 1.0),
        budgets={"quick": FinetuneConfig(seeds=6), "full": FinetuneConfig(seeds=25)},
        run=run,
        comparisons=[
            Comparison("k3/finetune", "k3/scratch", 0.02),
            Comparison("k10/finetune", "k10/scratch", 0.02, own=False),
            Comparison("k3/finetune", "k3/linear-probe", 0.0, own=False),
            Comparison("k3/finetune-all", "k3/scratch", 0.02, own=False),
        ],
        notes=(
            "Quick budget (2026-12-06): 6 seeds (0..5), so that a quick verdict can say something "
            "(at least 5 seeds; a sixth costs no wall time on 2 cores). Changed after the earlier "
            "quick verdict was seen, for run time and seeds only: the old budget (4 seeds), "
            "re-judged with three outcomes, gave inconclusive at 4 seeds (k3/finetune vs "
            "k3/scratch +0.040 [-0.026, +0.106]); the new one gives inconclusive at 6 seeds "
            "(k3/finetune vs k3/scratch +0.035 [-0.001, +0.072]). The full budget is unchanged. "
            "Before that, the quick budget: 4 seeds (0..3); 8 until 2026-12-02, cut for the "
            "main job's run time only (about twice as slow on this day's machines). "
            "Protocol: quick runs seeds 0..5 (development), full 1000..1024 (confirmation); "
        "the matched scratch arm uses the fine-tuned arms' architecture, steps, SGD settings "
        "and weight decay (5e-4, fixed from the prototype, not tuned); nothing was chosen by "
        "comparing arms. "
        "Reference (issue prototype, MLP 64-256-256, 8 seeds, k = 3): source-only 59.2, "
        "scratch 77.7, linear-probe 83.4, finetune 83.9, finetune-all 83.4 "
        "(finetune - scratch +6.2 +- 1.7). Source: MNIST-5k (optdigits-style 8x8); target: "
        "scikit-learn digits, k labelled per class, the rest as test set."
        ),
    )
)
