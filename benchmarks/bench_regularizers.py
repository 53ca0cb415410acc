"""Per-step overhead of the L2-SP family relative to an unregularised step of the same model.

Li, Grandvalet, Davoine, ICML 2018 (arXiv 1802.01483). A step is forward + cross-entropy
(+ penalty) + backward + SGD-momentum update, as in :func:`transferkit.train.fit`. All
variants are timed side by side in one run, interleaved in many short blocks; the best
block (least disturbed by other processes) and the median block are reported as ratios to
the plain step (targets: L2-SP <= 1.15x; L2-SP without an autograd node, through
``add_grad_`` / ``PenaltyUpdate``, <= 1.05x). A naive autograd L2-SP
(``sum((w - w0) ** 2)`` per tensor) and an empty autograd node (the floor of any penalty
in the loss) are shown for reference.

Run: ``python benchmarks/bench_regularizers.py [--steps 25 --rounds 30]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transferkit.finetune import L1SP, L2, L2SP, GroupLassoSP, L2SPFisher, fisher_diagonal
from transferkit.nets import MLP, LeNet, replace_head
from transferkit.train import seeded


class NaiveL2SP(nn.Module):
    """Plain autograd L2-SP, for comparison."""

    def __init__(self, model: nn.Module, alpha: float, beta: float) -> None:
        super().__init__()
        self.pairs = [(p, p.detach().clone()) for n, p in model.named_parameters()
                      if n.endswith("weight") and not n.startswith("head")]
        # (pulls towards the model's own weights at construction: the same cost as the source)
        self.new = [model.get_parameter("head.weight")]
        self.alpha, self.beta = alpha, beta

    def forward(self, model: nn.Module) -> Tensor:
        pre = torch.stack([((p - p0) ** 2).sum() for p, p0 in self.pairs]).sum()
        new = torch.stack([(p**2).sum() for p in self.new]).sum()
        return 0.5 * self.alpha * pre + 0.5 * self.beta * new


class _EmptyNode(torch.autograd.Function):
    """Returns 0 and zero gradients: the cost of any autograd penalty node, with no math."""

    @staticmethod
    def forward(ctx: Any, *params: Tensor) -> Tensor:
        ctx.shapes = list(params)
        return params[0].new_zeros(())

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, ...]:
        return tuple(torch.zeros_like(p) for p in ctx.shapes)


class FloorPenalty(nn.Module):
    """An empty autograd node over the same weights (the floor of any autograd penalty)."""

    def __init__(self, reg: L2SP) -> None:
        super().__init__()
        self.params = reg._params

    def forward(self, model: nn.Module) -> Tensor:
        return _EmptyNode.apply(*self.params)


class _GradOnly:
    """Marks a regulariser applied through ``add_grad_`` after the backward pass."""

    def __init__(self, reg: nn.Module) -> None:
        self.reg = reg


def bench(name: str, make: Callable[[], nn.Module], x: Tensor, y: Tensor, steps: int,
          rounds: int) -> None:
    with seeded(0):
        source = make()
    fisher = fisher_diagonal(source, x[:64])
    variants: dict[str, Callable[[nn.Module], Any]] = {
        "none": lambda m: None,
        "L2": lambda m: L2(m, 0.1, 0.01, source=source, new=["head"]),
        "L2SP": lambda m: L2SP(m, 0.1, 0.01, source=source, new=["head"]),
        "L2SP add_grad_ (no node)": lambda m: _GradOnly(
            L2SP(m, 0.1, 0.01, source=source, new=["head"])),
        "L2SP (naive autograd)": lambda m: NaiveL2SP(m, 0.1, 0.01),
        "floor: empty autograd node": lambda m: FloorPenalty(
            L2SP(m, 0.1, 0.01, source=source, new=["head"])),
        "L1SP": lambda m: L1SP(m, 0.1, 0.01, source=source, new=["head"]),
        "GroupLassoSP": lambda m: GroupLassoSP(m, 0.1, 0.01, source=source, new=["head"]),
        "L2SPFisher": lambda m: L2SPFisher(m, fisher, 0.1, 0.01, source=source, new=["head"]),
    }
    setups = {}
    for key, build in variants.items():
        with seeded(0):
            model = make()
        model.load_state_dict(source.state_dict())
        with seeded(1):
            replace_head(model, 10)
        reg = build(model)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        setups[key] = (model, reg, opt)

    def run(key: str, n: int) -> float:
        model, reg, opt = setups[key]
        t0 = time.perf_counter()
        for _ in range(n):
            loss = F.cross_entropy(model(x), y)
            if reg is not None and not isinstance(reg, _GradOnly):
                loss = loss + reg(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if isinstance(reg, _GradOnly):
                reg.reg.add_grad_(model)
            opt.step()
        return (time.perf_counter() - t0) / n

    for key in setups:  # warm-up
        run(key, 20)
    times: dict[str, list[float]] = {k: [] for k in setups}
    for _ in range(rounds):  # short interleaved blocks: load from other processes hits all
        for key in setups:
            times[key].append(run(key, steps))
    best = {k: min(ts) for k, ts in times.items()}
    med = {k: statistics.median(ts) for k, ts in times.items()}
    n_params = sum(p.numel() for p in setups["none"][0].parameters())
    print(f"\n{name}: {n_params} parameters, batch {len(x)}; plain step "
          f"{best['none'] * 1e6:.0f} us (best block), {med['none'] * 1e6:.0f} us (median)")
    print(f"  {'':26s} {'best us':>8s} {'ratio':>6s}  {'median us':>9s} {'ratio':>6s}")
    for key in setups:
        print(f"  {key:26s} {best[key] * 1e6:8.0f} {best[key] / best['none']:5.2f}x  "
              f"{med[key] * 1e6:9.0f} {med[key] / med['none']:5.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=25, help="steps per timed block")
    ap.add_argument("--rounds", type=int, default=30, help="interleaved blocks per variant")
    args = ap.parse_args()
    torch.set_num_threads(1)  # as the other benchmarks: ratios on one core
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    gen = torch.Generator().manual_seed(0)
    x8 = torch.rand(32, 1, 8, 8, generator=gen)
    y = torch.randint(0, 10, (32,), generator=gen)
    bench("MLP 64-256-256-10 (the claim's net)",
          lambda: MLP((1, 8, 8), 10, hidden=(256, 256)), x8, y, args.steps, args.rounds)
    x8b = torch.rand(256, 1, 8, 8, generator=gen)
    yb = torch.randint(0, 10, (256,), generator=gen)
    bench("MLP 64-256-256-10, batch 256",
          lambda: MLP((1, 8, 8), 10, hidden=(256, 256)), x8b, yb, args.steps, args.rounds)
    bench("deep MLP, 16 hidden layers of 128 (many weight tensors)",
          lambda: MLP((1, 8, 8), 10, hidden=(128,) * 16), x8, y, args.steps, args.rounds)
    x16 = torch.rand(32, 1, 16, 16, generator=gen)
    bench("LeNet 16x16", lambda: LeNet((1, 16, 16), 10), x16, y, max(args.steps // 4, 5),
          args.rounds)


if __name__ == "__main__":
    main()
