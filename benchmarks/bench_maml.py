"""Time per MAML meta-batch: ours (torch.func, vmap over tasks) against higher and
learn2learn, side by side in one run, with the meta-losses compared for equality.

The MAML paper's sinusoid setting: a 1-40-40-1 ReLU network, 25 tasks of 10 support and 10
query points, one (or five) inner SGD steps at lr 0.01, second order; each library computes
the meta-loss and its gradient from the same initial weights and the same tasks, on one
compute thread. A peer that is not installed is skipped (``pip install higher``;
learn2learn's wheel does not build on Python 3.11, learnables/learn2learn#413). Medians of
interleaved repeats; ``--smoke`` runs two.

    python benchmarks/bench_maml.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from transferkit.meta import MAML, SinusoidTasks

REPEATS = 30
TASKS = 25


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(),
                         nn.Linear(40, 1))


def ours(net: nn.Module, batch: tuple, steps: int) -> Callable[[], float]:
    maml = MAML(net, F.mse_loss, inner_lr=0.01, inner_steps=steps)

    def one() -> float:
        loss = maml(*batch)
        loss.backward()
        return float(loss.detach())

    return one


def with_higher(net: nn.Module, batch: tuple, steps: int) -> Callable[[], float] | None:
    try:
        import higher
    except ImportError:
        return None
    inner = torch.optim.SGD(net.parameters(), lr=0.01)

    def one() -> float:
        total = 0.0
        for sx, sy, qx, qy in zip(*batch, strict=True):
            with higher.innerloop_ctx(net, inner, copy_initial_weights=False) as (fnet, diffopt):
                for _ in range(steps):
                    diffopt.step(F.mse_loss(fnet(sx), sy))
                loss = F.mse_loss(fnet(qx), qy) / len(batch[0])
                loss.backward()
                total += float(loss)
        return total

    return one


def with_learn2learn(net: nn.Module, batch: tuple, steps: int) -> Callable[[], float] | None:
    try:
        import learn2learn as l2l
    except ImportError:
        return None
    maml = l2l.algorithms.MAML(net, lr=0.01, first_order=False)

    def one() -> float:
        total = 0.0
        for sx, sy, qx, qy in zip(*batch, strict=True):
            learner = maml.clone()
            for _ in range(steps):
                learner.adapt(F.mse_loss(learner(sx), sy))
            loss = F.mse_loss(learner(qx), qy) / len(batch[0])
            loss.backward()
            total += float(loss)
        return total

    return one


def main() -> None:
    global REPEATS
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: check it runs")
    if ap.parse_args().smoke:
        REPEATS = 2
    torch.set_num_threads(1)  # one compute thread, as every benchmark here
    batch = SinusoidTasks(10, 10).meta_batch(TASKS, torch.Generator().manual_seed(0))
    for steps in (1, 5):
        runners = {}
        nets = {}
        for name, make in (("transferkit", ours), ("higher", with_higher),
                           ("learn2learn", with_learn2learn)):
            nets[name] = _net()
            run = make(nets[name], batch, steps)
            if run is None:
                print(f"{name}: not installed, skipped")
                continue
            runners[name] = run
        losses = {name: run() for name, run in runners.items()}  # warm-up and the check
        grads = {name: torch.cat([p.grad.flatten() for p in nets[name].parameters()])
                 for name in runners}
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(REPEATS):
            for name, run in runners.items():
                for p in nets[name].parameters():
                    p.grad = None
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        ref = "transferkit"
        print(f"\n{steps} inner step(s), {TASKS} tasks, second order:")
        for name in runners:
            same = abs(losses[name] - losses[ref]) <= 1e-5 * max(1.0, abs(losses[ref]))
            gdiff = float((grads[name] - grads[ref]).abs().max())
            median = statistics.median(times[name])
            print(f"  {name:12s} {1000 * median:7.2f} ms/meta-batch  "
                  f"{median / statistics.median(times[ref]):5.2f}x ours  meta-loss "
                  f"{losses[name]:.6f} ({'same' if same else 'DIFFERENT'}), max |grad diff| "
                  f"{gdiff:.1e}")


if __name__ == "__main__":
    main()
