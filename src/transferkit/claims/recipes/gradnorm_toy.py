"""Claim ``gradnorm-toy``: GradNorm balances the paper's synthetic multi-task regression.

Chen et al., GradNorm, ICML 2018 (https://arxiv.org/abs/1711.02257), Section 4: T = 10
regression tasks ``f_i(x) = sigma_i tanh((B + eps_i) x)`` sharing ``B`` and differing in
``eps_i`` and in their scale ``sigma_i`` (spread over [1, 100]); a trunk of 4 fully
connected ReLU layers of 100 units and one linear head per task.

Choices the paper leaves open (documented in the claim's notes):

- ``sigma_i`` log-spaced over [1, 100]; ``B`` entries N(0, 10^2), ``eps_i`` entries
  N(0, 3.5^2) (standard deviations, as in public ports), drawn per seed.
- Scale of ``x``: the paper gives none. With ``x ~ N(0, I)`` the pre-activations have a
  standard deviation of about 170 and 99% of the tanh outputs are saturated (the targets
  are then sign patterns). We draw ``x ~ N(0, I / (250 (10^2 + 3.5^2)))``, which gives
  pre-activations of unit variance; it is the same as rescaling ``B`` and ``eps_i``
  together, keeping their ratio (the shared versus task-specific information).
- Kaiming (He) normal initialisation of every layer, zero biases: with PyTorch's default
  initialisation and SGD a prototype learned nothing.
- Heads' Kaiming weights scaled by 0.1, so that the initial outputs are near zero and
  ``L_i(0)`` is the task's own scale (with full-scale heads the initial output noise
  dominates ``L_i(0)`` of the small tasks and their ratios measure the noise's removal).
- Adam, batches of 100 (SGD with momentum was tried first: with any one learning rate it
  either diverged on the sigma = 100 tasks or barely moved in the short budget); each
  arm's learning rate is chosen per seed on a validation split from the same grid with the
  same small budget (the sum of validation loss ratios decides), then the arm trains for
  the full budget with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...multitask import SharedTrunk, Weighting, create_weighting, multitask_step
from ...train import Callback, NonFiniteLossError, Phase, Stream, Trainer, seeded
from ..base import Claim, Comparison, SeedResult, register_claim
from ..plotting import figure
from ..units import unit

ARMS = ("equal", "uncertainty", "dwa", "gradnorm")


@dataclass(frozen=True)
class ToyConfig:
    seeds: int = 3
    n_tasks: int = 10
    sigma_min: float = 1.0
    sigma_max: float = 100.0
    n_train: int = 2000
    n_val: int = 500
    n_test: int = 1000
    batch_size: int = 100
    steps: int = 400
    tune_steps: int = 150
    lr_grid: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    optimizer: str = "adam"
    momentum: float = 0.9
    alpha: float = 0.12
    weighting_lr: float = 0.025
    log_every: int = 20


def toy_problem(cfg: ToyConfig, seed: int) -> dict[str, Any]:
    """The seed's sigmas, B, eps and train/val/test splits (inputs and one target per task)."""
    gen = torch.Generator().manual_seed(10_007 * seed + 1)
    d_in, d_out, T = 250, 100, cfg.n_tasks
    sigmas = torch.logspace(math.log10(cfg.sigma_min), math.log10(cfg.sigma_max), T)
    B = 10.0 * torch.randn(d_out, d_in, generator=gen)
    eps = 3.5 * torch.randn(T, d_out, d_in, generator=gen)
    n = cfg.n_train + cfg.n_val + cfg.n_test
    x = torch.randn(n, d_in, generator=gen)
    scale = math.sqrt(d_in * (10.0**2 + 3.5**2))  # pre-activations of unit variance
    ys = [sigmas[i] * torch.tanh(x @ (B + eps[i]).T / scale) for i in range(T)]
    a, b = cfg.n_train, cfg.n_train + cfg.n_val
    split = {"train": slice(0, a), "val": slice(a, b), "test": slice(b, n)}
    return {
        "sigmas": sigmas,
        **{k: (x[s], [y[s] for y in ys]) for k, s in split.items()},
    }


def toy_model(n_tasks: int, head_scale: float = 0.1) -> SharedTrunk:
    """4 x (Linear 100 + ReLU) trunk, one linear head per task, Kaiming-normal weights.

    The heads' Kaiming weights are multiplied by ``head_scale`` so that the initial outputs
    are near zero and ``L_i(0)`` measures the task's own scale, not the initial noise.
    """
    layers: list[nn.Module] = []
    d = 250
    for _ in range(4):
        layers += [nn.Linear(d, 100), nn.ReLU()]
        d = 100
    heads = {f"t{i}": nn.Linear(100, 100) for i in range(n_tasks)}
    model = SharedTrunk(nn.Sequential(*layers), heads, {t: "mse" for t in heads})
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        for head in model.heads.values():
            assert isinstance(head, nn.Linear)
            head.weight.mul_(head_scale)
    return model


@torch.no_grad()
def task_losses(model: SharedTrunk, x: Tensor, ys: list[Tensor]) -> Tensor:
    """Per-task mean squared error on a whole split, shape (T,)."""
    out = model(x)
    return torch.stack([
        nn.functional.mse_loss(out[t], y) for t, y in zip(model.tasks, ys, strict=True)
    ])


class _Record(Callback):
    """Logs the strategy's weights every ``every`` steps."""

    def __init__(self, strategy: Weighting, every: int) -> None:
        self.strategy = strategy
        self.every = every

    def on_step_end(self, trainer: Trainer, ctx: Any) -> None:
        w = self.strategy(torch.ones(self.strategy.n_tasks))
        trainer.log(ctx.step + 1, {f"w/{i}": float(v) for i, v in enumerate(w)})


def _strategy(arm: str, cfg: ToyConfig, names: list[str], steps_per_epoch: int) -> Weighting:
    kw: dict[str, Any] = {}
    if arm == "gradnorm":
        kw = {"alpha": cfg.alpha, "lr": cfg.weighting_lr}
    elif arm == "uncertainty":  # Gaussian likelihoods: Kendall et al.'s regression form
        kw = {"lr": cfg.weighting_lr, "forms": "regression"}
    elif arm == "dwa":
        kw = {"period": steps_per_epoch}
    return create_weighting(arm, tasks=names, **kw)


def train_arm(arm: str, cfg: ToyConfig, prob: Mapping[str, Any], seed: int, lr: float,
              steps: int, eval_split: str, record: bool = False) -> dict[str, Any]:
    """Train one arm; return its loss ratios on ``eval_split`` (and curves if ``record``)."""
    with seeded(seed):
        model = toy_model(cfg.n_tasks)
    x_ev, ys_ev = prob[eval_split]
    initial = task_losses(model, x_ev, ys_ev)
    x_tr, ys_tr = prob["train"]
    initial_train = task_losses(model, x_tr, ys_tr)
    stream = Stream(x_tr, *ys_tr, batch_size=cfg.batch_size, seed=seed)
    strategy = _strategy(arm, cfg, list(model.tasks), max(1, cfg.n_train // cfg.batch_size))
    opt: torch.optim.Optimizer
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum)
    phase = Phase(multitask_step(), opt, {"train": stream}, combiner=strategy)
    callbacks = [_Record(strategy, cfg.log_every)] if record else []
    trainer = Trainer(model, phase, steps, callbacks=callbacks, seed=seed,
                      log_losses_every=cfg.log_every if record else 0, desc=f"toy {arm}")
    try:
        hist = trainer.fit()
    except NonFiniteLossError:  # diverged: a result (scored as infinitely bad), not a crash
        inf = torch.full((cfg.n_tasks,), math.inf)
        return {"ratios": inf, "diverged_at": trainer.step,
                "curves": {"steps": [], "weights": [], "train_ratios": []}}
    final = task_losses(model, x_ev, ys_ev)
    ratios = final / initial
    out: dict[str, Any] = {"ratios": ratios}
    if record:
        T = cfg.n_tasks
        by_step = {int(r["step"]): r for r in hist.records}
        steps_logged = [k for k in sorted(by_step)
                        if "w/0" in by_step[k] and "loss/t0" in by_step[k]]
        out["curves"] = {
            "steps": steps_logged,
            "weights": [[by_step[k][f"w/{i}"] for i in range(T)] for k in steps_logged],
            # training batch loss over the initial training-set loss, L_i(t) / L_i(0)
            "train_ratios": [[by_step[k][f"loss/t{i}"] / float(initial_train[i])
                              for i in range(T)] for k in steps_logged],
        }
    return out


def _score(ratios: Tensor) -> float:
    s = float(ratios.sum())
    return s if math.isfinite(s) else math.inf


def run(cfg: ToyConfig, seed: int) -> SeedResult:
    """Tune each arm's learning rate on validation, train it fully, score it on test."""
    prob = toy_problem(cfg, seed)
    arms: dict[str, float] = {}
    extras: dict[str, Any] = {"sigmas": prob["sigmas"].tolist(), "lr": {}, "val_sum": {},
                              "test_ratios": {}, "curves": {}}
    def one_arm(arm: str) -> dict[str, Any]:  # a cached unit: JSON-able results only
        scores = {lr: _score(train_arm(arm, cfg, prob, seed, lr, cfg.tune_steps, "val")["ratios"])
                  for lr in cfg.lr_grid}
        best = min(scores, key=lambda k: (scores[k], k))
        res = train_arm(arm, cfg, prob, seed, best, cfg.steps, "test", record=True)
        return {"lr": best, "scores": {str(k): v for k, v in scores.items()},
                "ratios": res["ratios"].tolist(), "dtype": str(res["ratios"].dtype)[6:],
                "curves": res["curves"]}

    for arm in ARMS:
        out = unit(arm, partial(one_arm, arm))
        r = torch.tensor(out["ratios"], dtype=getattr(torch, out["dtype"]))  # as computed
        finite = bool(torch.isfinite(r).all())
        arms[f"sum/{arm}"] = float(r.sum()) if finite else math.inf
        arms[f"spread/{arm}"] = float(r.max() / r.min()) if finite else math.inf
        arms[f"max/{arm}"] = float(r.max()) if finite else math.inf
        extras["lr"][arm] = out["lr"]
        extras["val_sum"][arm] = out["scores"]
        extras["test_ratios"][arm] = out["ratios"]
        extras["curves"][arm] = out["curves"]
    return SeedResult(arms=arms, extras=extras)


def plot(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Weights and training loss ratios over time per task, for each arm (first seed)."""
    import matplotlib

    extras = result.get("extras") or {}
    if not extras:
        return []
    seed = sorted(extras, key=lambda s: int(s))[0]
    ex = extras[seed]
    sigmas = ex["sigmas"]
    arms = list(ex["curves"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with figure(out_dir, "gradnorm-toy_weights_ratios", figsize=(3.6 * len(arms), 6.5)) \
            as (fig, path):
        axes = fig.subplots(2, len(arms), squeeze=False)
        cmap = matplotlib.colormaps["viridis"]
        for j, arm in enumerate(arms):
            c = ex["curves"][arm]
            for i, s in enumerate(sigmas):
                col = cmap(i / max(1, len(sigmas) - 1))
                axes[0][j].plot(c["steps"], [w[i] for w in c["weights"]], color=col,
                                label=f"sigma={s:.3g}")
                axes[1][j].plot(c["steps"], [r[i] for r in c["train_ratios"]], color=col)
            axes[0][j].set_yscale("log")
            axes[0][j].set_title(f"{arm} (lr {ex['lr'][arm]:.0e})")
            axes[1][j].set_yscale("log")
            axes[1][j].set_xlabel("step")
        axes[0][0].set_ylabel("task weight w_i")
        axes[1][0].set_ylabel("train loss ratio L_i(t)/L_i(0)")
        axes[1][-1].legend(*axes[0][-1].get_legend_handles_labels(), fontsize=6,
                           loc="upper right", ncol=2)
        fig.suptitle(f"gradnorm-toy, seed {seed}: weights and loss ratios per task")
    return [path]


PAPER = (
    "Chen, Badrinarayanan, Lee, Rabinovich. GradNorm: Gradient Normalization for "
    "Adaptive Loss Balancing in Deep Multitask Networks. ICML 2018, "
    "https://arxiv.org/abs/1711.02257"
)

NOTES = """\
Protocol. Quick runs seeds 0..5 (development), full 1000..1009 (confirmation). Chosen by
looking at development prototypes (nothing learned otherwise): Kaiming initialisation
with heads scaled by 0.1, pre-activations normalised to unit variance, and Adam. Learning
rates are chosen inside the recipe, per arm and seed, on a validation split (never the
test set). A diverged arm (non-finite loss) is recorded and counted as a loss.

Setting (paper Section 4, T = 10): sigma_i log-spaced over [1, 100]; B ~ N(0, 10^2) and
eps_i ~ N(0, 3.5^2) entrywise, drawn per seed; 2000 train / 500 validation / 2000 test
inputs (quick: 2000 / 500 / 1000). **Normalisation**: the paper gives none; with the literal
scale (x ~ N(0, I)) the pre-activations have std ~170 and 99% of the tanh outputs saturate,
so the network sees x ~ N(0, I) and the targets are sigma_i tanh((B + eps_i) x / c) with
c = sqrt(250 (10^2 + 3.5^2)) (pre-activations of unit variance: B and eps_i rescaled
together, their ratio kept). **Initialisation**: Kaiming normal, zero biases, heads scaled
by 0.1 so L_i(0) is the task's own scale (with PyTorch's default initialisation and SGD
nothing learned in a prototype). **Optimiser**: Adam, batch 100 (SGD + momentum with one
rate either diverged on the sigma = 100 tasks or barely moved in this budget).
**Learning rates**: chosen per arm and per seed on the validation split from the same
grid (quick 1e-3, 3e-3, 1e-2; full adds 3e-4) with the same short budget (quick 150
steps, full 400; lowest sum of validation loss ratios), then the full budget (quick 400
steps, full 1500); the chosen rates are in the extras (`lr`). GradNorm: alpha = 0.12, Adam on
the weights (lr 0.025), initial losses averaged over the first 5 steps; uncertainty: Adam
(lr 0.025) on log sigma^2, Kendall et al.'s regression form exp(-s) L / 2 + s / 2;
DWA: temperature 2, one period = one epoch.
Metrics (test set, lower is better): `sum/*` the sum of loss ratios L_i(t)/L_i(0); `spread/*`
max/min of the ratios across tasks; `max/*` the worst task's ratio (< 1 means every task
improved). Per-task ratios are in the extras (`test_ratios`).
"""

CLAIM = register_claim(Claim(
    name="gradnorm-toy",
    paper=PAPER,
    statement="On the synthetic T=10 regression with output scales over [1, 100], GradNorm "
              "gives a lower sum of test loss ratios and a smaller spread of the ratios across "
              "tasks than equal weights and uncertainty weighting",
    metric="test loss ratio statistic (sum / spread max-min / worst task)",
    higher_is_better=False,
    budgets={"quick": ToyConfig(seeds=6),
             "full": ToyConfig(seeds=10, steps=1500, tune_steps=400,
                               lr_grid=(3e-4, 1e-3, 3e-3, 1e-2))},
    run=run,
    comparisons=[
        Comparison("sum/gradnorm", "sum/equal", 0.1),
        Comparison("sum/gradnorm", "sum/uncertainty", 0.1),
        Comparison("spread/gradnorm", "spread/equal", 0.1),
        Comparison("spread/gradnorm", "spread/uncertainty", 0.1),
        Comparison("sum/gradnorm", "sum/dwa", 0.1, own=False),
    ],
    plot=plot,
    notes=(
            "Quick budget (2026-12-06): 6 seeds (0..5), so that a quick verdict can say something "
            "(at least 5 seeds; a sixth costs no wall time on 2 cores). Changed after the earlier "
            "quick verdict was seen, for run time and seeds only: the old budget (2 seeds), "
            "re-judged with three outcomes, gave inconclusive at 2 seeds (sum/gradnorm vs "
            "sum/equal +0.606 [+0.225, +0.987]; sum/gradnorm vs sum/uncertainty +1.094 [+1.055, "
            "+1.133]; spread/gradnorm vs spread/equal +0.257 [-0.794, +1.308]; spread/gradnorm vs "
            "spread/uncertainty +0.382 [-0.059, +0.823]); the new one gives holds at 6 seeds "
            "(sum/gradnorm vs sum/equal +0.740 [+0.607, +0.873]; sum/gradnorm vs sum/uncertainty "
            "+1.149 [+1.045, +1.253]; spread/gradnorm vs spread/equal +0.370 [+0.161, +0.579]; "
            "spread/gradnorm vs spread/uncertainty +0.426 [+0.219, +0.632]). The full budget is "
            "unchanged. "
            "Before that, the quick budget: 2 seeds (0..1); 3 until 2026-12-02, cut for the "
            "main job's run time only (about twice as slow on this day's machines). "
            + NOTES),
))
