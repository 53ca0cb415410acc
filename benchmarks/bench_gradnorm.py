"""Time per training step of each loss-weighting strategy on the GradNorm toy (T = 10).

``--tasks 2 10 40`` times the same toy with T = 2, 10 and 40 tasks, one block each.

Relative to a raw PyTorch equal-weight step on the same model (forward, sum of the ten
MSE losses, backward, SGD step), all measured side by side in one run, interleaved in
rounds, medians reported. Targets: GradNorm <= 1.3x the raw step at T = 10, <= 1.5x at
T = 40.

    OMP_NUM_THREADS=1 python benchmarks/bench_gradnorm.py [--rounds 15] [--steps 40]

If the peer package ``gradnorm-pytorch`` is installed it is timed on the same model too
(optional; never a dependency of transferkit).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from transferkit.claims.recipes.gradnorm_toy import ToyConfig, toy_model, toy_problem
from transferkit.multitask import create_weighting, list_weightings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--tasks", type=int, nargs="+", default=[10], help="T values to time")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for n_tasks in args.tasks:
        measure(n_tasks, args.rounds, args.steps)


def measure(n_tasks: int, rounds: int, steps: int) -> None:
    """All strategies and the raw step on the toy with ``n_tasks`` tasks, interleaved."""
    cfg = ToyConfig(n_tasks=n_tasks)
    x_all, ys_all = toy_problem(cfg, 0)["train"]
    x, ys = x_all[:100], [y[:100] for y in ys_all]

    def raw_step_fn() -> Callable[[], None]:
        model = toy_model(n_tasks)
        opt = torch.optim.SGD(model.parameters(), lr=1e-4)

        def step() -> None:
            z = model.trunk(x)
            loss = sum(nn.functional.mse_loss(model.heads[t](z), y)
                       for t, y in zip(model.tasks, ys, strict=True))
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]
            opt.step()

        return step

    def strategy_step_fn(name: str) -> Callable[[], None]:
        model = toy_model(n_tasks)
        opt = torch.optim.SGD(model.parameters(), lr=1e-4)
        kw = {"alpha": 0.12} if name == "gradnorm" else {}
        strategy = create_weighting(name, tasks=list(model.tasks),
                                    shared=model.shared_parameters(), **kw)
        targets = dict(zip(model.tasks, ys, strict=True))

        def step() -> None:
            losses = model.task_losses(model(x), targets)
            total = strategy(losses, None)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()

        return step

    arms: dict[str, Callable[[], None]] = {"raw torch (equal)": raw_step_fn()}
    for name in list_weightings():
        arms[f"transferkit {name}"] = strategy_step_fn(name)
    peer = _peer_gradnorm(x, ys, n_tasks)
    if peer is not None:
        arms["gradnorm-pytorch"] = peer

    for fn in arms.values():  # warm up (and get past GradNorm's n_init steps)
        for _ in range(10):
            fn()
    times: dict[str, list[float]] = {k: [] for k in arms}
    for _ in range(rounds):
        for k, fn in arms.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            times[k].append((time.perf_counter() - t0) / steps)
    base = statistics.median(times["raw torch (equal)"])
    print(f"GradNorm toy, T={n_tasks}, batch 100, 1 thread; raw step {1e3 * base:.2f} ms "
          "(median)")
    for k, v in times.items():
        print(f"T={n_tasks:<3d} {k:28s} {1e3 * statistics.median(v):7.2f} ms  "
              f"{statistics.median(v) / base:5.2f}x")
    ratio = {k: statistics.median(v) / base for k, v in times.items()}
    goal = 1.3 if n_tasks <= 10 else 1.5
    print(f"T={n_tasks}: gradnorm step {ratio['transferkit gradnorm']:.2f}x the raw step "
          f"(target <= {goal}x); equal weighting {ratio['transferkit equal']:.2f}x "
          "(target <= 1.05x)")
    if "gradnorm-pytorch" in ratio:
        peer = ratio["gradnorm-pytorch"] / ratio["transferkit gradnorm"]
        print(f"T={n_tasks}: gradnorm {peer:.2f}x faster than gradnorm-pytorch")
    # where a GradNorm step's time goes: per task, the gradient of its loss reaches the
    # shared layer W through its head (one product for the head's input gradient, one for
    # W's): 2T products of the toy's 100 x 100 layers on top of the raw step's
    # (4 + T) forward and (7 + 2T) backward ones
    floor = (11 + 5 * n_tasks) / (11 + 3 * n_tasks)
    print(f"T={n_tasks}: matrix products per step: raw {11 + 3 * n_tasks}, gradnorm "
          f"{11 + 5 * n_tasks} (the exact per-task norms): a floor of {floor:.2f}x the raw step")


def _peer_gradnorm(x: torch.Tensor, ys: list[torch.Tensor], n_tasks: int
                   ) -> Callable[[], None] | None:
    try:
        from gradnorm_pytorch import GradNormLossWeighter  # type: ignore[import-not-found]
    except ImportError:
        print("gradnorm-pytorch not installed: peer timing skipped")
        return None
    model = toy_model(n_tasks)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    weighter = GradNormLossWeighter(num_losses=n_tasks, learning_rate=1e-4,
                                    restoring_force_alpha=0.12,
                                    grad_norm_parameters=model.shared_parameters()[0])

    def step() -> None:
        out = model(x)
        losses = torch.stack([
            nn.functional.mse_loss(out[t], y) for t, y in zip(model.tasks, ys, strict=True)
        ])
        opt.zero_grad(set_to_none=True)
        weighter.backward(losses)
        opt.step()

    return step


if __name__ == "__main__":
    main()
