"""Claim ``curriculum``: ordering the training data by a transferred teacher's confidence
speeds up learning and raises final accuracy.

Weinshall, Cohen, Amir, ICML 2018 (https://arxiv.org/abs/1802.03796); the protocol follows
the authors' code (GuyHacohen/curriculum_learning: ``main_reproduce_paper.py``,
``transfer_learning.py``, ``models/cifar100_model.py``).

Task, as the paper's small hard subsets (a CIFAR-100 superclass: 5 classes x 500 images,
trained from scratch): Fashion-MNIST's five upper-body garments, T-shirt/top, pullover,
dress, coat and shirt, which are close to one another (the Debian package
``dataset-fashion-mnist``; see :func:`transferkit.data.load_fashion_mnist`). Per seed,
``per_class`` training and ``val_per_class`` validation images per class are drawn from the
first ``pool_per_class`` of the training file; the test set is the first
``test_per_class`` of each class in the test file. Images are standardised with the
training images' mean and standard deviation.

Teacher (the paper's is Inception trained on ImageNet): EfficientNet-Lite0 with its
packaged ImageNet weights (extra ``vision``), images resized to ``image_size`` (grey to RGB,
the network's normalisation), pooled features computed once per process for the pool.
Scores, the authors' way: an SVC with Platt probabilities fitted on the raw features of the
training images, each image scored in-sample by the probability of its true class
(``SVC(probability=True)``, written as scikit-learn 1.9 asks:
``CalibratedClassifierCV(SVC(), ensemble=False)``). Ours beside it (``crossfit``):
standardised features and out-of-fold scores (5 folds), so that a score does not reward
the SVC's memory of the image.

Student: a small CNN trained from scratch (conv 3x3 -> ELU -> max-pool twice, dropout 0.25,
dense, ELU, dropout 0.5, softmax; the authors' stVGG has the same parts, with eight
convolutions and an L2 penalty that this CPU-sized student leaves out). Plain SGD, batches
of 100 (the authors'), ``steps`` steps; the learning rate starts at ``lr`` and is divided
by ``decay`` every ``decay_every`` steps, never below 1e-4 (the authors'
``exponent_decay_lr``). Pacing (the authors'): 4% of the data, x1.9 every ``step_length``
batches, classes interleaved; the authors jump every 100 of their 3,500 batches (140
epochs of 25), so that all the data is in use from about 17% of training on, and
``step_length`` keeps that proportion at our shorter ``steps`` (30 of 1,000).

Arms:

- ``vanilla``: shuffled epochs over all the data;
- ``curriculum``: easiest first by the authors' scores;
- ``curriculum-crossfit``: easiest first by the cross-fitted scores (when ``crossfit``), at
  the schedule of ``curriculum`` (not tuned on its own, for run time);
- ``random-pacing``: the same pacing over a random order;
- ``anti-curriculum``: hardest first by the authors' scores.

Tuning, the same for every arm: each tries every (lr, decay) of the grid and keeps the one
with the best area under its *validation* accuracy curve (the test curve is never used to
choose). The full budget does it as the authors did, once, on development data, and fixes
each arm's schedule for every confirmation seed (``schedules``, from
:func:`tune_schedules` on seed 0); without fixed schedules every seed tunes every arm over
the grid. The chosen values, and whether one sits at an end of the grid (no decay, 1.0, is
a natural end and not counted), are in the extras. The authors' hand-tuned schedules were,
e.g., curriculum lr 0.03 / 1.1 per 100 batches, vanilla 0.035 / 1.8 per 600.

Metrics (the paper's): the area under the test-accuracy curve over the whole of training
(the mean of the accuracies measured every ``eval_every`` steps; the claim's metric),
final test accuracy (``final/...``) and the area over the first ``early_fraction`` of the
steps (``early/...``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ...curriculum import (
    CurriculumSampler,
    TransferScorer,
    exponential_pacing,
    monte_carlo_gains,
)
from ...data import FASHION_CLASSES, load_fashion_mnist
from ...train import (
    Evaluate,
    NonFiniteLossError,
    Phase,
    Stream,
    Trainer,
    accuracy,
    classification_step,
    predict_logits,
    seeded,
)
from ..base import Claim, Comparison, SeedResult, register_claim
from ..plotting import figure
from ..units import unit
from ._splits import per_class_parts

ORDER = {"curriculum": "curriculum", "curriculum-crossfit": "curriculum",
         "random-pacing": "random", "anti-curriculum": "anti"}


@dataclass(frozen=True)
class CurriculumConfig:
    seeds: int = 6
    classes: tuple[int, ...] = (0, 2, 3, 4, 6)  # T-shirt/top, pullover, dress, coat, shirt
    pool_per_class: int = 1000
    per_class: int = 500
    val_per_class: int = 100
    test_per_class: int = 500
    image_size: int = 64
    steps: int = 1000
    batch_size: int = 100
    lrs: tuple[float, ...] = (0.03, 0.1, 0.3)
    decays: tuple[float, ...] = (1.0, 1.2)
    decay_every: int = 100
    min_lr: float = 1e-4
    channels: tuple[int, int] = (8, 16)
    hidden: int = 64
    start: float = 0.04
    multiplier: float = 1.9
    step_length: int = 30  # the authors' 100 of 3,500 batches, scaled to ``steps``
    eval_every: int = 50
    early_fraction: float = 0.2
    crossfit: bool = True
    # (arm, lr, decay): schedules fixed beforehand (see tune_schedules); the others are
    # tuned per seed over lrs x decays
    schedules: tuple[tuple[str, float, float], ...] = ()


def arms(cfg: CurriculumConfig) -> tuple[str, ...]:
    extra = ("curriculum-crossfit",) if cfg.crossfit else ()
    return ("vanilla", "curriculum", *extra, "random-pacing", "anti-curriculum")


@lru_cache(maxsize=2)
def _pool(classes: tuple[int, ...], pool_per_class: int,
          image_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """(images, labels, ImageNet teacher features) of the pool, once per process."""
    from ...nets import create_backbone

    pool = load_fashion_mnist("train", classes=classes, per_class=pool_per_class)
    net = create_backbone("efficientnet-lite0", image_size=image_size).eval()
    with torch.no_grad():
        feats = predict_logits(net.features, net.input_spec.preprocess(pool.images),
                               batch_size=250)
    return pool.images, pool.labels, feats


@lru_cache(maxsize=2)
def _test(classes: tuple[int, ...], per_class: int) -> tuple[Tensor, Tensor]:
    test = load_fashion_mnist("test", classes=classes, per_class=per_class)
    return test.images, test.labels


def _scores(feats: Tensor, y: Tensor, seed: int, crossfit: bool) -> np.ndarray:
    """Easiness of each training image: the authors' in-sample SVC on raw features, or
    (``crossfit``) ours, standardised and out-of-fold."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    if crossfit:
        scorer = TransferScorer(cross_fit=5, random_state=seed)
    else:
        scorer = TransferScorer(classifier=CalibratedClassifierCV(SVC(random_state=seed),
                                                                  ensemble=False),
                                cross_fit=0, random_state=seed)
    return scorer.fit_score(feats.numpy(), y.numpy())


def _student(cfg: CurriculumConfig, n_classes: int) -> nn.Module:
    c1, c2 = cfg.channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ELU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ELU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(c2 * 7 * 7, cfg.hidden), nn.ELU(), nn.Dropout(0.5),
        nn.Linear(cfg.hidden, n_classes))


def _decay(lr: float, decay: float, cfg: CurriculumConfig) -> Any:
    """The authors' step decay as a multiplier of the initial rate."""
    floor = cfg.min_lr / lr
    every = cfg.decay_every
    return lambda step: max(decay ** -(step // every), floor)


def _train(arm: str, lr: float, decay: float, data: dict[str, tuple[Tensor, Tensor]],
           scores: np.ndarray | None, cfg: CurriculumConfig, seed: int) -> dict[str, list]:
    """One arm at one schedule: validation and test accuracy every ``eval_every`` steps."""
    x, y = data["train"]
    with seeded(seed):
        net = _student(cfg, len(cfg.classes))
    if arm == "vanilla":
        stream = Stream(x, y, batch_size=cfg.batch_size, seed=seed)
    else:
        assert scores is not None
        pacing = partial(exponential_pacing, start=cfg.start, multiplier=cfg.multiplier,
                         step_length=cfg.step_length)
        sampler = CurriculumSampler(scores, y.numpy(), cfg.batch_size, pacing,
                                    order=ORDER[arm], seed=seed)
        stream = Stream(x, y, sampler=sampler)
    curve = Evaluate(lambda m: {"val": accuracy(m, *data["val"]),
                                "test": accuracy(m, *data["test"])}, every=cfg.eval_every)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _decay(lr, decay, cfg))
    phase = Phase(classification_step(), opt, {"train": stream}, scheduler=sched)
    try:
        history = Trainer(net, phase, cfg.steps, callbacks=[curve], seed=seed,
                          log_losses_every=0,
                          desc=f"curriculum {arm} lr {lr:g} decay {decay:g}").fit()
    except NonFiniteLossError:  # the rate is too high for this schedule: not a candidate
        return {"steps": [], "val": [], "test": []}
    steps, val = history.series("val")
    return {"steps": steps, "val": val, "test": history.series("test")[1]}


def _area(steps: list[int], values: list[float], horizon: float | None = None) -> float:
    return float(np.mean([v for s, v in zip(steps, values, strict=True)
                          if horizon is None or s <= horizon]))


def _val_area(curve: dict[str, list]) -> float:
    """The validation area a schedule is chosen by; -inf for a run that diverged."""
    return _area(curve["steps"], curve["val"]) if curve["val"] else -math.inf


def _tuned(arm: str, data: dict[str, tuple[Tensor, Tensor]], scores: np.ndarray | None,
           cfg: CurriculumConfig, seed: int,
           grid: tuple[tuple[float, float], ...] | None = None) -> dict[str, Any]:
    """Every (lr, decay) of ``grid`` (the config's whole grid by default); the one with the
    best validation area is kept."""
    grid = grid or tuple((lr, decay) for lr in cfg.lrs for decay in cfg.decays)
    best: tuple[float, float, float, dict[str, list]] | None = None
    for lr, decay in grid:
        curve = _train(arm, lr, decay, data, scores, cfg, seed)
        val_area = _val_area(curve)
        if best is None or val_area > best[0]:
            best = (val_area, lr, decay, curve)
    assert best is not None
    val_area, lr, decay, curve = best
    if not curve["val"]:  # every schedule diverged: a result (the runner counts it as a
        nan = math.nan    # loss), not a crash
        return {"area": nan, "final": nan, "early": nan, "val_area": None, "lr": lr,
                "decay": decay, "at_edge": [], "diverged": True, "steps": [], "test": []}
    # a choice at an end of its grid says the grid may not hold the best value; no decay
    # (1.0) is a natural end, not one
    edge = [name for name, values, value in (("lr", cfg.lrs, lr), ("decay", cfg.decays, decay))
            if len(values) > 1 and value in (min(values), max(values))
            and not (name == "decay" and value == 1.0)]
    steps, test = curve["steps"], curve["test"]
    return {"area": _area(steps, test), "final": test[-1],
            "early": _area(steps, test, cfg.early_fraction * cfg.steps),
            "val_area": val_area, "lr": lr, "decay": decay, "at_edge": edge,
            "steps": steps, "test": test}


def tune_schedules(cfg: CurriculumConfig, seeds: tuple[int, ...] = (0,),
                   arm_names: tuple[str, ...] | None = None) -> dict[str, dict[str, Any]]:
    """Each arm's (lr, decay) with the best mean *validation* area over ``seeds`` (the
    development seeds), from the grid ``cfg.lrs x cfg.decays``: the authors tuned each
    arm's schedule once and kept it for every repeat. Give the result to the config as
    ``schedules``. Returns arm -> {"lr", "decay", "val_area" (per grid point)}."""
    names = arm_names or tuple(a for a in arms(cfg) if a != "curriculum-crossfit")
    table: dict[str, dict[tuple[float, float], list[float]]] = {a: {} for a in names}
    for seed in seeds:
        data, feats = _data(cfg, seed)
        scores = _scores(feats, data["train"][1], seed, crossfit=False)
        for arm in names:
            for lr in cfg.lrs:
                for decay in cfg.decays:
                    curve = _train(arm, lr, decay, data, None if arm == "vanilla" else scores,
                                   cfg, seed)
                    table[arm].setdefault((lr, decay), []).append(_val_area(curve))
    out = {}
    for arm, areas in table.items():
        (lr, decay), _ = max(areas.items(), key=lambda kv: float(np.mean(kv[1])))
        # a schedule that diverged at any seed shows as None
        out[arm] = {"lr": lr, "decay": decay,
                    "val_area": {f"{k[0]:g}/{k[1]:g}": float(np.mean(v)) if np.isfinite(
                        np.mean(v)) else None for k, v in areas.items()}}
    return out


def _data(cfg: CurriculumConfig, seed: int) -> tuple[dict[str, tuple[Tensor, Tensor]], Tensor]:
    images, labels, feats = _pool(cfg.classes, cfg.pool_per_class, cfg.image_size)
    tr, va, _ = per_class_parts(labels, (cfg.per_class, cfg.val_per_class), seed)
    mean, std = images[tr].mean(), images[tr].std()
    test_x, test_y = _test(cfg.classes, cfg.test_per_class)
    data = {"train": ((images[tr] - mean) / std, labels[tr]),
            "val": ((images[va] - mean) / std, labels[va]),
            "test": ((test_x - mean) / std, test_y)}
    return data, feats[tr]


def run(cfg: CurriculumConfig, seed: int) -> SeedResult:
    if cfg.early_fraction * cfg.steps < cfg.eval_every:
        raise ValueError(f"the early window (the first {cfg.early_fraction:g} of {cfg.steps} "
                         f"steps) holds no evaluation; evaluations come every "
                         f"{cfg.eval_every} steps: lower eval_every or raise early_fraction")
    data, feats = _data(cfg, seed)
    y = data["train"][1]
    scores = {"authors": _scores(feats, y, seed, crossfit=False)}
    if cfg.crossfit:
        scores["crossfit"] = _scores(feats, y, seed, crossfit=True)
    result: dict[str, float] = {}
    extras: dict[str, Any] = {"chosen": {}, "curves": {},
                              "score_mean": {k: float(v.mean()) for k, v in scores.items()}}
    fixed = {a: ((lr, decay),) for a, lr, decay in cfg.schedules}
    for arm in arms(cfg):
        arm_scores = None if arm == "vanilla" else \
            scores["crossfit" if arm == "curriculum-crossfit" else "authors"]
        # the cross-fitted variant runs at the schedule chosen for the curriculum arm
        grid = ((extras["chosen"]["curriculum"]["lr"], extras["chosen"]["curriculum"]["decay"]),
                ) if arm == "curriculum-crossfit" else fixed.get(arm)
        out = unit(arm, partial(_tuned, arm, data, arm_scores, cfg, seed, grid))
        result[arm] = out["area"]
        result[f"final/{arm}"] = out["final"]
        result[f"early/{arm}"] = out["early"]
        extras["chosen"][arm] = {k: out[k] for k in ("lr", "decay", "at_edge", "val_area")}
        extras["curves"][arm] = {"steps": out["steps"], "test": out["test"]}
    return SeedResult(arms=result, extras=extras)


def plot(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Mean test-accuracy curves of the tuned arms (the early window shaded), and the
    paper's two theorems checked by Monte Carlo on linear regression."""
    cfg = result["config"]
    extras = result.get("extras", {})
    paths = [_plot_theory(out_dir)]
    per_seed = [e for e in extras.values() if "curves" in e]
    if not per_seed:
        return paths
    names = ", ".join(FASHION_CLASSES[c] for c in cfg["classes"])
    with figure(out_dir, "curriculum_curves", figsize=(6.4, 4.0)) as (fig, path):
        ax = fig.add_subplot(1, 1, 1)
        for i, arm in enumerate(per_seed[0]["curves"]):
            curves = [e["curves"][arm] for e in per_seed if e["curves"][arm]["test"]]
            if not curves:  # diverged at every seed
                continue
            steps = curves[0]["steps"]
            mean = 100 * np.mean([c["test"] for c in curves], axis=0)
            lost = len(per_seed) - len(curves)
            label = arm if not lost else f"{arm} ({lost} diverged seed(s) left out)"
            ax.plot(steps, mean, label=label, color=f"C{i}", marker=".")
        ax.axvspan(0, cfg["early_fraction"] * cfg["steps"], color="0.9", zorder=0)
        ax.set_xlabel(f"training step (batches of {cfg['batch_size']})")
        ax.set_ylabel("test accuracy (%), mean over seeds")
        ax.set_title(f"Fashion-MNIST {names}; {cfg['per_class']} per class; shaded: "
                     "the early window", fontsize=8)
        ax.legend(fontsize=8)
    return [path, *paths]


def _plot_theory(out_dir: Path) -> Path:
    gains = monte_carlo_gains()
    with figure(out_dir, "curriculum_theory", figsize=(8.0, 3.2)) as (fig, path):
        ax = fig.add_subplot(1, 2, 1)
        ax.plot(gains["difficulty_bins"], gains["gain_by_difficulty"], marker="o")
        ax.set_xlabel("difficulty: loss of the optimal hypothesis")
        ax.set_ylabel("mean one-step gain  E[d^2 - d'^2]")
        ax.set_title("theorem 1: easier points help more", fontsize=9)
        ax = fig.add_subplot(1, 2, 2)
        ax.plot(gains["loss_bins"], gains["gain_by_loss"], marker="o", color="C1")
        ax.set_xlabel("loss under the current hypothesis (fixed difficulty)")
        ax.set_title("theorem 2: at equal difficulty, higher loss helps more", fontsize=9)
    return path


register_claim(
    Claim(
        name="curriculum",
        paper=("Weinshall, Cohen, Amir. Curriculum Learning by Transfer Learning: Theory and "
               "Experiments with Deep Networks. ICML 2018. https://arxiv.org/abs/1802.03796"),
        statement=("Ordering the training images easiest-first by an ImageNet teacher's "
                   "confidence raises the area under the test-accuracy curve of a small CNN "
                   "trained from scratch on five close Fashion-MNIST classes, against plain "
                   "training and against hardest-first, by more than 0.5 points each"),
        metric="test_accuracy_area",
        higher_is_better=True,
        bounds=(0.0, 1.0),
        budgets={"quick": CurriculumConfig(seeds=6, pool_per_class=400, per_class=200,
                                           val_per_class=50, test_per_class=300, steps=500,
                                           step_length=15, lrs=(0.03,), decays=(1.1,),
                                           eval_every=25, crossfit=False),
                 "full": CurriculumConfig(
                     seeds=10, lrs=(0.1, 0.3, 1.0), decays=(1.0, 1.2, 1.5),
                     schedules=tuple((arm, 0.3, 1.5) for arm in (
                         "vanilla", "curriculum", "random-pacing", "anti-curriculum")))},
        series=4,
        run=run,
        comparisons=[
            Comparison("curriculum", "vanilla", 0.005),
            Comparison("curriculum", "anti-curriculum", 0.005),
            Comparison("curriculum", "random-pacing", 0.0, own=False),
            Comparison("final/curriculum", "final/vanilla", 0.0, own=False),
            Comparison("early/curriculum", "early/vanilla", 0.0, own=False),
            Comparison("curriculum-crossfit", "vanilla", 0.0, own=False, optional=True),
        ],
        plot=plot,
        notes=(
            "Protocol revised on 2026-12-06 (issue 30), after a full run of the old one "
            "(confirmation-1, seeds 1000-1009: MNIST-5k at 8x8, a 64-32-10 MLP student, a "
            "teacher MLP trained on scikit-learn's digits, cross-fitted SVC scores, 1,500 "
            "SGD steps of 32, constant learning rates {0.02, 0.05, 0.1} chosen per arm on "
            "the validation area over the first 20% of steps: curriculum - vanilla -0.087, "
            "does not hold) and a review against the authors' code: (8) the authors' "
            "scores, an SVC with Platt probabilities on raw teacher features, in-sample, are "
            "the curriculum arm, ours (standardised, 5-fold cross-fitted) the arm "
            "curriculum-crossfit; (9) the teacher is an ImageNet network (EfficientNet-Lite0, "
            "the packaged weights, at 64x64 for its cost on 2 cores); (10) the task is a "
            "small hard subset trained from scratch by a small CNN: five close Fashion-MNIST "
            "classes, 500 training images each as the paper's CIFAR-100 superclasses, "
            "batches of 100, and per arm a learning-rate schedule (initial rate x step "
            "decay) chosen on validation from the same grid; (11) the metrics are the "
            "area under the whole test curve (the claim's), final accuracy and the early "
            "area, with random-pacing and anti-curriculum as controls. "
            "Fixed before any result of the new protocol: the classes, the data sizes, "
            "the teacher at 64x64, the student (conv 8 and 16 channels, dense 64), 1,000 "
            "steps in full, the authors' pacing start and multiplier, evaluations every 50 "
            "steps, the 0.5-point margin. Changed after the first quick run of the new "
            "protocol (seeds 0-5), "
            "which showed that the authors' jump every 100 batches left the curriculum "
            "arms short of the full data for most of a 500- or 1,000-step run (all of it "
            "from step 600 only): the jump now comes every 30 of 1,000 steps (15 of 500 in "
            "quick), the authors' proportion of 100 in 3,500. Quick before that change: "
            "curriculum - vanilla -0.047 [-0.055, -0.039], does not hold; curriculum - "
            "anti-curriculum +0.137 [+0.094, +0.181]. After it (the quick verdict of this "
            "recipe): +0.003 [-0.001, +0.007], inconclusive; against anti-curriculum +0.027 "
            "[+0.017, +0.036], holds; against random pacing +0.005 [+0.002, +0.007]; final "
            "accuracy +0.003 [-0.004, +0.009] (vanilla 0.718, curriculum 0.720). "
            "The first full run (series 2) was stopped when the vanilla arm of its first two "
            "seeds (2000, 2001) had chosen lr 0.1 and decay 1.1 per 100 steps, both at an "
            "end of the grid {0.01, 0.03, 0.1} x {1.1, 1.5} (validation areas 0.762 and "
            "0.754; their test areas, 0.758 and 0.752, were seen too, no other arm's). The "
            "second (series 3, grid {0.03, 0.1, 0.3} x {1.0, 1.2}) was stopped when "
            "vanilla chose 0.3 and 1.2, again both ends, at seeds 3000 and 3001 (only "
            "the choices were seen). Tuning every arm at every seed over a grid wide "
            "enough costs more than 2 cores allow, so the full budget now tunes as the "
            "authors did, once per arm on development data (tune_schedules, seed 0, "
            "validation areas), over {0.1, 0.3, 1.0} x {1.0, 1.2, 1.5}: lr 1.0 diverged "
            "for every arm and every arm chose lr 0.3 with decay 1.5 (validation areas "
            "vanilla 0.812, curriculum 0.806, random-pacing 0.806, anti-curriculum 0.785). "
            "Decay 1.5 is the grid's top: at lr 0.3 every arm's validation area rose with "
            "the decay (vanilla 0.784, 0.805, 0.812 at 1.0, 1.2, 1.5), so a stronger decay "
            "may do better still; it was not tried, for run time, and every arm runs the "
            "same schedule. curriculum-crossfit runs the curriculum arm's schedule. The "
            "full verdict runs on confirmation series 4 (seeds 4000-4009), which no run "
            "has used. It stopped at first when the curriculum arm diverged (a NaN loss "
            "at lr 0.3) on a seed: the recipe raised instead of returning the NaN the "
            "runner counts as a loss; fixed (no setting changed) and resumed from its "
            "finished units. Full verdict (series 4, 2026-12-06): does not hold. Test "
            "area vanilla 0.776, curriculum 0.727 (diverged at seeds 4004 and 4005, "
            "counted as the worst value; at the other eight it is 0.762-0.774, below "
            "vanilla at every one of them), curriculum-crossfit 0.768, random-pacing "
            "0.772, anti-curriculum 0.747; curriculum - vanilla -0.049 [-0.114, +0.016], "
            "does not hold; against anti-curriculum -0.020 [-0.082, +0.041], "
            "inconclusive; curriculum-crossfit - vanilla -0.008 [-0.011, -0.005]; final "
            "accuracy vanilla 0.798, curriculum 0.750, crossfit 0.797; early area "
            "-0.055 [-0.098, -0.012]. "
            "Quick cuts, for run time: 200 training and 50 validation images per "
            "class from the first 400, 300 test images per class, 500 steps, one schedule "
            "(lr 0.03, decay 1.1 per 100 steps, the authors' curriculum values) for every "
            "arm instead of the tuned grid, and no curriculum-crossfit arm."
        ),
    )
)
