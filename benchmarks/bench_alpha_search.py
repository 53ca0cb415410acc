"""Choosing alpha by successive halving against the full grid: the choice and its cost.

On the settings of the claims ``l2sp`` (the claim's MNIST-pretrained MLP, L2-SP arm,
``overlap-k10``; 500 SGD steps, alphas 0.001-1) and ``l2sp-imagenet`` (EfficientNet-Lite0
with ImageNet weights, L2-SP, digits k = 20; 60 steps, alphas 0.01-1), with the claims'
own splits: alpha is chosen on the validation part of the k labels, either by training
every alpha for the whole budget (the grid, as the claims do) or by successive halving
(:func:`transferkit.finetune.search_alpha`, as ``transferkit finetune --search halving``:
every alpha to the first rung, the better half on, ...; the same ranking). Then the chosen
alpha is retrained on all k labels and scored on the test images, as in the claims.
Printed per seed: both choices and the test accuracy each leads to; then how often they
agree, the mean test accuracy of each, and the cost in training steps.

The learning rate is constant and every run's batches are seeded, so a run stopped at a
rung and continued (what ``transferkit finetune`` does, from its checkpoint) is the
prefix of a straight run: here each rung's models are trained afresh for the rung's steps
(the same models; the time spent here is therefore not halving's, whose cost is counted
in steps). ``--workflow`` also times ``transferkit finetune --alpha auto`` (four alphas)
with ``--search grid`` and ``--search halving`` on the same images, wall clock, side by
side.

Run: ``python benchmarks/bench_alpha_search.py [--seeds 3] [--workflow]``
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from transferkit.finetune import halving_cost, search_alpha

Scores = tuple[float, float]  # validation accuracy, cross-entropy


def choose(grid: Sequence[float], budget: int, halving: bool,
           val_scores: Callable[[float, int], Scores]) -> tuple[float, int]:
    """(chosen alpha, training steps spent) by the full grid or successive halving."""
    _, chosen = search_alpha(grid, budget, val_scores, lambda s: s, halving=halving)
    return chosen, halving_cost(len(grid), budget) if halving else len(grid) * budget


def l2sp_setting(seed: int, steps: int = 0) -> tuple[Sequence[float], int,
                                                     Callable[..., Scores],
                                                     Callable[[float], float]]:
    from transferkit.claims.recipes import l2sp as r

    cfg = r.L2SPConfig()
    cfg = dataclasses.replace(cfg, steps=steps) if steps else cfg
    regime, k = r._parse("overlap-k10")
    spec = r._spec(cfg, regime)
    target = r.targets(None, spec.resolution)
    train, test = r.few_shot_split(target, k, seed=seed)
    val, fit_part = r.stratified_split(train, max(1, k // 3), seed=seed + 1000)

    def val_scores(alpha: float, steps: int) -> Scores:
        net = r._train("l2sp", alpha, fit_part, dataclasses.replace(cfg, steps=steps), spec,
                       target.n_classes, seed)
        logits = r.predict_logits(net, val.images)
        return (float((logits.argmax(1) == val.labels).float().mean()),
                float(F.cross_entropy(logits, val.labels)))

    def test_acc(alpha: float) -> float:
        net = r._train("l2sp", alpha, train, cfg, spec, target.n_classes, seed)
        return float(r.accuracy(net, test.images, test.labels))

    return r._grid(cfg, "l2sp"), cfg.steps, val_scores, test_acc


def imagenet_setting(seed: int, steps: int = 0) -> tuple[Sequence[float], int,
                                                         Callable[..., Scores],
                                                         Callable[[float], float]]:
    from transferkit.claims.recipes import l2sp_imagenet as r

    cfg = r.L2SPImageNetConfig()
    cfg = dataclasses.replace(cfg, steps=steps) if steps else cfg
    setting = "digits-k20"
    fit_idx, val_idx, train_idx, test_idx = r._split(setting, cfg, seed)
    data = r._target("digits", cfg.image_size)
    x, y = data.images, data.labels

    def val_scores(alpha: float, steps: int) -> Scores:
        c = dataclasses.replace(cfg, steps=steps)
        model = r._train("l2sp", alpha, setting, x[fit_idx], y[fit_idx], fit_idx, c, seed)
        logits = r._scores("l2sp", model, setting, x[val_idx], val_idx, cfg)
        return (float((logits.argmax(1) == y[val_idx]).float().mean()),
                float(F.cross_entropy(logits, y[val_idx])))

    def test_acc(alpha: float) -> float:
        model = r._train("l2sp", alpha, setting, x[train_idx], y[train_idx], train_idx, cfg,
                         seed)
        logits = r._scores("l2sp", model, setting, x[test_idx], test_idx, cfg)
        return float((logits.argmax(1) == y[test_idx]).float().mean())

    return cfg.alphas, cfg.steps, val_scores, test_acc


def _memo(fn: Callable[[float, int], Scores]) -> Callable[[float, int], Scores]:
    cache: dict[tuple[float, int], Scores] = {}

    def scored(a: float, steps: int) -> Scores:
        if (a, steps) not in cache:
            cache[(a, steps)] = fn(a, steps)
        return cache[(a, steps)]

    return scored


def compare(name: str, make: Callable[..., tuple], seeds: int, steps: int) -> None:
    print(f"\n{name}")
    agree, acc_grid, acc_halving, cost = 0, [], [], (0, 0)
    for seed in range(seeds):
        grid, budget, val_scores, test_acc = make(seed, steps)
        scored = _memo(val_scores)  # the grid's full-budget runs serve halving's last rung
        a_grid, spent_grid = choose(grid, budget, False, scored)
        a_half, spent_half = choose(grid, budget, True, scored)
        t_grid = test_acc(a_grid)
        t_half = t_grid if a_half == a_grid else test_acc(a_half)
        agree += a_grid == a_half
        acc_grid.append(t_grid)
        acc_halving.append(t_half)
        cost = (spent_grid, spent_half)
        print(f"  seed {seed}: grid chooses {a_grid:g} (test {t_grid:.4f}), halving "
              f"{a_half:g} (test {t_half:.4f})")
    diff = np.asarray(acc_halving) - np.asarray(acc_grid)
    print(f"{name}: halving chose the grid's alpha in {agree} of {seeds} seeds; test accuracy "
          f"grid {statistics.mean(acc_grid):.4f}, halving {statistics.mean(acc_halving):.4f} "
          f"(mean difference {diff.mean():+.4f}); training steps {cost[1]} vs {cost[0]}: "
          f"halving costs {cost[1] / cost[0]:.2f}x the grid")


def workflow(epochs: int) -> None:
    """``transferkit finetune --alpha auto`` with --search grid and halving, wall clock."""
    from sklearn.datasets import load_digits

    from transferkit.workflows import FinetuneOptions, run_finetune

    d = load_digits()
    images = np.repeat(np.repeat((d.images[:360] * 15).astype(np.uint8), 4, 1), 4, 2)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "train.npz", images=images, labels=d.target[:360])
        times, chosen = {}, {}
        for search in ("grid", "halving"):
            opts = FinetuneOptions(alpha="auto", epochs=epochs, image_size=32,
                                   search=search)
            t0 = time.perf_counter()
            res = run_finetune(Path(tmp) / "train.npz", Path(tmp) / search, options=opts,
                               device="cpu", progress=False)
            times[search] = time.perf_counter() - t0
            chosen[search] = (res.alpha, res.metrics["validation"]["accuracy"])
    print(f"\ntransferkit finetune --alpha auto, 360 digit images at 32 px, EfficientNet-Lite0, "
          f"{epochs} epochs: grid {times['grid']:.0f} s (alpha {chosen['grid'][0]:g}, val "
          f"accuracy {chosen['grid'][1]:.4f}), halving {times['halving']:.0f} s (alpha "
          f"{chosen['halving'][0]:g}, val accuracy {chosen['halving'][1]:.4f}): halving takes "
          f"{times['halving'] / times['grid']:.2f}x the grid's time")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--settings", nargs="+", default=["l2sp", "l2sp-imagenet"],
                    choices=["l2sp", "l2sp-imagenet"])
    ap.add_argument("--workflow", action="store_true", help="also time finetune --alpha auto")
    ap.add_argument("--steps", type=int, default=0, help="the settings' budget (0: the claims')")
    ap.add_argument("--epochs", type=int, default=4, help="epochs of the workflow runs")
    args = ap.parse_args()
    torch.set_num_threads(1)
    makers = {"l2sp": ("l2sp setting (MNIST-pretrained MLP, overlap-k10, L2-SP)", l2sp_setting),
              "l2sp-imagenet": ("l2sp-imagenet setting (EfficientNet-Lite0, digits-k20, "
                                "L2-SP)", imagenet_setting)}
    for key in args.settings:
        compare(*makers[key], args.seeds, args.steps)
    if args.workflow:
        workflow(args.epochs)


if __name__ == "__main__":
    main()
