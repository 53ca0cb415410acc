"""Claim ``maml``: a MAML initialisation adapts to a new sinusoid in one step far better than
a network pre-trained on all tasks.

Finn, Abbeel, Levine, ICML 2017 (https://arxiv.org/abs/1703.03400), section 5.1; Reptile:
Nichol, Achiam, Schulman 2018 (https://arxiv.org/abs/1803.02999).

Sinusoid regression as in the paper: amplitude in [0.1, 5], phase in [0, pi], inputs in
[-5, 5]; K = 5 and K = 10 support points (and K query points at meta-training); a 1-40-40-1
ReLU network; one inner gradient step at lr 0.01; Adam (lr 1e-3) outer, meta-batches of 25
tasks. Arms per K (``k5/...``, ``k10/...``), all evaluated the same way, on 200 held-out
tasks with 100 query points each, after one gradient step on the K support points (the
paper's protocol); metric: query MSE, lower is better. The step of that one gradient step
is tuned for every arm alike, on 100 meta-validation tasks drawn apart from the evaluation
tasks, over the grid 0.002..0.1 (the paper tunes its pretrained baseline's step: its
figure 2 shows it at 0.01 for K = 5 and 0.02 for K = 10; MAML itself is evaluated at its
meta-training step 0.01 in the paper, and gets the same grid here so that neither arm has
more tuning than the other); the chosen steps are in the extras (``step``):

- ``pretrained``: the same network trained on all tasks jointly (MSE on every point of the
  meta-batch's tasks, the same number of Adam steps), then fine-tuned like the others;
- ``maml``: second-order MAML; ``fomaml``: its first-order approximation;
- ``reptile``: Reptile, 5 inner SGD steps at lr 0.01 per task on the task's support *and*
  query points (the 2K points MAML sees per task; Reptile has no query set), its direction
  fed to the same Adam outer optimiser (the Reptile paper notes Adam on the direction
  works).

Beside the claim, the report holds a few-shot classification setting: 5-way 1-shot tasks
over scikit-learn's digits (8x8), meta-training on 5 digit classes and meta-testing on the
other 5 (chosen at random per seed), a 64-64-64-5 ReLU MLP, one inner step at lr 0.4 (the
paper's Omniglot step size) at meta-training, meta-batches of 10 tasks; the test-time step
is tuned per arm on meta-validation tasks of the meta-training classes over 0.1..1.6; the
metric is the query *error rate* (so that lower is better there too), arms
``5way1shot/...``; ``pretrained`` there is a 5-class classifier trained on the
meta-training classes and fine-tuned like the others.

The budgets are far below the paper's 70,000 meta-iterations (CPU minutes): at full, 2,000
for the sinusoids and 800 for the digits, with 200 evaluation tasks; quick halves them all
(1,000, 400, 100) to stay near a minute; the extras hold the 10-step MSE too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ...data import load_digits
from ...meta import (
    MAML,
    FewShotTasks,
    SinusoidTasks,
    create_meta_learner,
    list_meta_learners,
    split_classes,
)
from ...train import GeneratedStream, Phase, Trainer, seeded
from ..base import Claim, Comparison, SeedResult, register_claim
from ..plotting import bars_with_intervals, figure

ARMS = ("pretrained", "maml", "fomaml", "reptile")


@dataclass(frozen=True)
class MAMLConfig:
    seeds: int = 4
    ks: tuple[int, ...] = (5, 10)
    iterations: int = 2000
    meta_batch: int = 25
    inner_lr: float = 0.01
    outer_lr: float = 1e-3
    reptile_steps: int = 5
    eval_tasks: int = 200
    eval_query: int = 100
    # every arm's test-time step is chosen on meta-validation tasks (drawn apart from the
    # evaluation tasks) from the same grid, by the query loss after one step
    val_tasks: int = 100
    step_grid: tuple[float, ...] = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
    cls_step_grid: tuple[float, ...] = (0.1, 0.2, 0.4, 0.8, 1.6)
    # the few-shot classification setting of the report
    cls_iterations: int = 800
    cls_meta_batch: int = 10
    cls_inner_lr: float = 0.4
    cls_query: int = 15
    # the arms run (the verdict needs pretrained and maml) and whether the digits setting runs
    arms: tuple[str, ...] = ARMS
    classification: bool = True


def _sine_net() -> nn.Module:
    return nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(),
                         nn.Linear(40, 1))


def _mlp(d_in: int, n_way: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, n_way))


def _joint_step(loss_fn: Callable[..., torch.Tensor]) -> Callable[..., dict[str, torch.Tensor]]:
    """Pre-training on all tasks jointly: every point of the meta-batch is a plain example."""

    def step(model: nn.Module, batches: Any, ctx: Any) -> dict[str, torch.Tensor]:
        sx, sy, qx, qy = batches["tasks"]
        x = torch.cat([sx, qx], dim=1).flatten(0, 1)
        y = torch.cat([sy, qy], dim=1).flatten(0, 1)
        return {"joint": loss_fn(model(x), y)}

    return step


def _learner_options(cfg: MAMLConfig) -> dict[str, dict[str, Any]]:
    """Keywords of the meta-learners beyond the inner lr (Reptile's inner steps)."""
    return {"reptile": {"inner_steps": cfg.reptile_steps}}


def _check_arms(arms: tuple[str, ...]) -> None:
    unknown = [a for a in arms if a != "pretrained" and a not in list_meta_learners()]
    if unknown:
        raise ValueError(f"unknown arms {unknown}; an arm is 'pretrained' or a registered "
                         f"meta-learner ({', '.join(list_meta_learners())})")


def _train(arm: str, make_net: Callable[[], nn.Module], loss_fn: Callable[..., torch.Tensor],
           stream: GeneratedStream, inner_lr: float, cfg: MAMLConfig, iterations: int,
           seed: int, pretrain: Any = None) -> nn.Module:
    """Meta-train (or pre-train) one arm in the loop; return the initialisation."""
    with seeded(seed):
        net = make_net()
    kwargs: dict[str, Any] = {}
    model: nn.Module
    if arm == "pretrained":
        model, step = net, pretrain if pretrain is not None else _joint_step(loss_fn)
    else:
        learner = create_meta_learner(arm, net, loss_fn, inner_lr=inner_lr,
                                      **_learner_options(cfg).get(arm, {}))
        model, step = learner, learner.training_step()
        if learner.update_rule() is not None:
            kwargs["update"] = learner.update_rule()
    phase = Phase(step, torch.optim.Adam(model.parameters(), lr=cfg.outer_lr),
                  {"tasks": stream}, **kwargs)
    Trainer(model, phase, iterations, seed=seed, log_losses_every=0,
            desc=f"maml {arm}").fit()
    return net


def _after_adaptation(net: nn.Module, loss_fn: Callable[..., torch.Tensor], batch: tuple,
                      inner_lr: float, steps: int) -> float:
    """Mean query loss over the evaluation tasks after ``steps`` inner steps."""
    evaluator = MAML(net, loss_fn, inner_lr=inner_lr, inner_steps=steps, first_order=True)
    with torch.no_grad():
        return float(evaluator(*batch))


def _tuned_step(net: nn.Module, loss_fn: Callable[..., torch.Tensor], val_batch: tuple,
                grid: tuple[float, ...]) -> float:
    """The step of the grid with the lowest meta-validation query loss after one step (ties
    to the smaller step)."""
    losses = [_after_adaptation(net, loss_fn, val_batch, lr, 1) for lr in grid]
    finite = [(loss, lr) for loss, lr in zip(losses, grid, strict=True) if loss == loss]
    if not finite:
        raise ValueError(f"every step of {list(grid)} gave a non-finite validation loss")
    return min(finite)[1]


def _error_rate(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(dim=-1) != y).float().mean()


def _classification(cfg: MAMLConfig, seed: int, arms: dict[str, float],
                    steps: dict[str, float]) -> None:
    digits = load_digits()
    x, y = digits.flat(), digits.labels
    g = torch.Generator().manual_seed(seed * 7919 + 3)
    train_classes, test_classes = split_classes(range(10), 5, g)
    train = FewShotTasks(x, y, train_classes, n_way=5, k_shot=1, k_query=cfg.cls_query)
    test = FewShotTasks(x, y, test_classes, n_way=5, k_shot=1, k_query=cfg.cls_query)
    stream = GeneratedStream(lambda gen: train.meta_batch(cfg.cls_meta_batch, gen),
                             seed=seed * 31 + 1)
    eval_batch = test.meta_batch(cfg.eval_tasks, torch.Generator().manual_seed(seed * 31 + 2))
    # meta-validation: tasks of the meta-training classes (the test classes stay unseen)
    val_batch = train.meta_batch(cfg.val_tasks, torch.Generator().manual_seed(seed * 31 + 5))
    mask = torch.isin(y, torch.tensor(train_classes))
    relabel = {c: i for i, c in enumerate(train_classes)}
    joint_y = torch.tensor([relabel[int(v)] for v in y[mask]])
    joint_x = x[mask]

    def pretrain_step(model: nn.Module, batches: Any, ctx: Any) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, len(joint_x), (cfg.cls_meta_batch * 5 * (1 + cfg.cls_query),),
                            generator=torch.Generator().manual_seed(seed * 31 + ctx.step))
        return {"ce": F.cross_entropy(model(joint_x[idx]), joint_y[idx])}

    for arm in cfg.arms:
        net = _train(arm, lambda: _mlp(64, 5), F.cross_entropy, stream, cfg.cls_inner_lr, cfg,
                     cfg.cls_iterations, seed, pretrain=pretrain_step)
        step = _tuned_step(net, F.cross_entropy, val_batch, cfg.cls_step_grid)
        steps[f"5way1shot/{arm}"] = step
        evaluator = MAML(net, F.cross_entropy, inner_lr=step, first_order=True)
        errors = []
        for task in zip(*eval_batch, strict=True):
            adapted = evaluator.adapt(task[0], task[1])
            with torch.no_grad():
                errors.append(_error_rate(adapted(task[2]), task[3]))
        arms[f"5way1shot/{arm}"] = float(torch.stack(errors).mean())


def run(cfg: MAMLConfig, seed: int) -> SeedResult:
    _check_arms(cfg.arms)
    arms: dict[str, float] = {}
    extras: dict[str, Any] = {"mse_after_10_steps": {}, "step": {}}
    for k in cfg.ks:
        train = SinusoidTasks(k_support=k, k_query=k)
        stream = GeneratedStream(partial(train.meta_batch, cfg.meta_batch), seed=seed * 100 + k)
        held_out = SinusoidTasks(k_support=k, k_query=cfg.eval_query)
        batch = held_out.meta_batch(cfg.eval_tasks,
                                    torch.Generator().manual_seed(10_000 + seed * 100 + k))
        val_batch = held_out.meta_batch(cfg.val_tasks,
                                        torch.Generator().manual_seed(20_000 + seed * 100 + k))
        for arm in cfg.arms:
            net = _train(arm, _sine_net, F.mse_loss, stream, cfg.inner_lr, cfg,
                         cfg.iterations, seed)
            step = _tuned_step(net, F.mse_loss, val_batch, cfg.step_grid)
            extras["step"][f"k{k}/{arm}"] = step
            arms[f"k{k}/{arm}"] = _after_adaptation(net, F.mse_loss, batch, step, 1)
            extras["mse_after_10_steps"][f"k{k}/{arm}"] = _after_adaptation(
                net, F.mse_loss, batch, step, 10)
    if cfg.classification:
        _classification(cfg, seed, arms, extras["step"])
    return SeedResult(arms=arms, extras=extras)


def plot(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Query MSE after one step per arm and K, and the 5-way 1-shot error rates."""
    cfg, summary = result["config"], result["summary"]
    arms = list(cfg.get("arms", ARMS))
    groups = [f"k{k}" for k in cfg["ks"]] + (["5way1shot"] if cfg.get("classification", True)
                                              else [])
    with figure(out_dir, "maml_arms", figsize=(4.0 * len(groups), 3.4)) as (fig, path):
        for i, group in enumerate(groups):
            ax = fig.add_subplot(1, len(groups), i + 1)
            bars_with_intervals(ax, arms, summary, [f"{group}/{arm}" for arm in arms])
            ax.set_title(f"sinusoid, K = {group[1:]}" if group.startswith("k")
                         else "digits, 5-way 1-shot", fontsize=9)
            ax.set_ylabel("query MSE after 1 step" if group.startswith("k")
                          else "query error rate after 1 step")
    return [path]


register_claim(
    Claim(
        name="maml",
        paper=("Finn, Abbeel, Levine. Model-Agnostic Meta-Learning for Fast Adaptation of Deep "
               "Networks. ICML 2017. https://arxiv.org/abs/1703.03400"),
        statement=("On the paper's sinusoid regression, a MAML initialisation fine-tuned with "
                   "one gradient step on K = 5 or 10 points has a query MSE lower by more "
                   "than 0.5 than a network pre-trained on all tasks and fine-tuned the same "
                   "way"),
        metric="query_mse_after_adaptation",
        higher_is_better=False,
        budgets={"quick": MAMLConfig(seeds=6, iterations=1000, eval_tasks=100,
                                     arms=("pretrained", "maml"), classification=False),
                 "full": MAMLConfig(seeds=10)},
        run=run,
        comparisons=[
            Comparison("k5/maml", "k5/pretrained", 0.5),
            Comparison("k10/maml", "k10/pretrained", 0.5),
            *[Comparison(f"k{k}/{arm}", f"k{k}/pretrained", 0.0, own=False, optional=True)
              for k in (5, 10) for arm in ("fomaml", "reptile")],
            Comparison("k10/maml", "k10/fomaml", 0.0, own=False, optional=True),
            Comparison("5way1shot/maml", "5way1shot/pretrained", 0.0, own=False,
                       optional=True),
            Comparison("5way1shot/reptile", "5way1shot/pretrained", 0.0, own=False,
                       optional=True),
        ],
        plot=plot,
        series=2,
        notes=(
            "Protocol of 2026-12-06 (issue 31), set before any result of it was seen: every "
            "arm's test-time step is tuned alike on meta-validation tasks (grid 0.002..0.1 "
            "for the sinusoids, 0.1..1.6 for the digits; the paper tunes its pretrained "
            "baseline's step, 0.01 at K = 5 and 0.02 at K = 10 in its figure 2), and Reptile "
            "meta-trains on each task's 2K support and query points, as MAML does. Quick "
            "runs seeds 0..5 (development); full runs the confirmation series 2 "
            "(2000..2009), unused before. "
            "Earlier protocol (every arm adapted at MAML's 0.01; Reptile on K points): full "
            "series 1 (1000..1009) held; quick seeds 0..5 gave k5/maml vs k5/pretrained "
            "+1.044 [+0.839, +1.249] and k10 +1.231 [+1.058, +1.404] (holds). "
            "Quick budget: 6 seeds with the verdict's arms only (pretrained and maml; "
            "FOMAML, Reptile and the digits setting run in the full budget), 1,000 "
            "iterations, 100 evaluation tasks, so that a quick verdict can say something (a "
            "first try at 600 iterations gave k5 +0.662 [+0.454, +0.869], inconclusive; the "
            "effect grows with meta-training). "
            "Settings from the papers, fixed before any run: the network, inner step, "
            "Adam 1e-3, meta-batch 25, 1-step evaluation (MAML); Reptile's 5 inner SGD "
            "steps at the same lr and Adam on its direction are our choices (the Reptile "
            "paper's sinusoid settings differ), and 2,000 meta-iterations (the paper: "
            "70,000) is the CPU budget (quick: 1,000). The margin 0.5 MSE was set from the "
            "paper's figure 2 (pre-trained about 2-3 after one step, MAML well below 1) "
            "before running. The classification setting's meta-training step 0.4 is the "
            "paper's Omniglot value; its MLP and 800 iterations are ours."
        ),
    )
)
