"""Training-step time on the CPU in float32, bfloat16 autocast and ``channels_last``.

Fine-tuning an ImageNet backbone (EfficientNet-Lite0, MobileNet-V2; batch 32, SGD with
momentum, cross-entropy) at a few input sizes, and the ``mstn`` claim's DANN step (MLP
features and discriminator, batch 64 + 64), each variant timed side by side in interleaved
rounds (median of the rounds), one thread. bfloat16 autocast runs the matrix products and
convolutions in bfloat16 (the weights, gradients and optimiser stay float32): it needs a
CPU with bfloat16 instructions to pay (``lscpu`` flags ``avx512_bf16`` / ``amx_bf16``);
elsewhere it can be slower. ``channels_last`` stores images and convolution weights
NHWC. Also printed: the largest difference of the logits of one forward pass under
bfloat16 autocast from float32, and the CPU's bfloat16 flags.

What is kept (issue 35): ``transferkit finetune|adapt|multitask --precision bf16``
(``TrainingOptions.precision``; ``Update(autocast=torch.bfloat16)`` in Python). float32
stays the default: every claim's record is float32, and bfloat16's 8-bit mantissa changes
results at the level of seed noise or more.

Run: ``python benchmarks/bench_cpu_precision.py [--sizes 32 96 --rounds 5 --steps 5]``
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F


def cpu_bf16_flags() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return "unknown"
    have = sorted({f for f in flags if "bf16" in f})
    return ", ".join(have) or "none"


@contextlib.contextmanager
def maybe_autocast(bf16: bool) -> Iterator[None]:
    if bf16:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


def image_step(name: str, size: int, bf16: bool, channels_last: bool,
               batch: int = 32) -> Callable[[], None]:
    from transferkit.nets import create_backbone, replace_head

    torch.manual_seed(0)
    net = create_backbone(name, pretrained=True)
    replace_head(net, 10)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        with maybe_autocast(bf16):
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def dann_step(bf16: bool) -> Callable[[], None]:
    from transferkit.adaptation import AdaptationModel, adaptation_step
    from transferkit.claims.recipes.mstn import MSTNConfig, _objective, build_network
    from transferkit.train import Stream, Trainer, Update
    from transferkit.train.loop import Phase

    cfg = MSTNConfig()
    torch.manual_seed(0)
    objective, weight = _objective("dann", cfg, 10)
    model = AdaptationModel(build_network(cfg, 10), objective)
    g = torch.Generator().manual_seed(0)
    xs, ys = torch.rand(640, 1, cfg.resolution, cfg.resolution, generator=g), \
        torch.randint(0, 10, (640,), generator=g)
    xt = torch.rand(640, 1, cfg.resolution, cfg.resolution, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    streams = {"source": Stream(xs, ys, batch_size=cfg.batch_size, seed=0),
               "target": Stream(xt, batch_size=cfg.batch_size, seed=1)}
    phase = Phase(adaptation_step(weight=weight), opt, streams,
                  update=Update(autocast=torch.bfloat16 if bf16 else None))
    trainer = Trainer(model, phase, max_steps=0, log_losses_every=0, progress=False)

    def step() -> None:
        trainer.max_steps += 1
        trainer.fit()

    return step


def logit_gap(name: str, size: int) -> float:
    from transferkit.nets import create_backbone

    torch.manual_seed(0)
    net = create_backbone(name, pretrained=True).eval()
    x = torch.randn(8, 3, size, size)
    with torch.no_grad():
        a = net(x)
        with maybe_autocast(True):
            b = net(x).float()
    return float((a - b).abs().max() / a.abs().max())


def timed(arms: dict[str, Callable[[], None]], rounds: int, steps: int) -> dict[str, float]:
    for fn in arms.values():
        fn()  # warm-up (oneDNN picks its kernels on the first call)
    times: dict[str, list[float]] = {k: [] for k in arms}
    for _ in range(rounds):
        for k, fn in arms.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            times[k].append((time.perf_counter() - t0) / steps)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", nargs="+", default=["efficientnet-lite0", "mobilenet-v2"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 96])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; CPU bfloat16 flags: {cpu_bf16_flags()}")
    for name in args.backbones:
        for size in args.sizes:
            arms = {
                "float32": image_step(name, size, False, False),
                "bf16 autocast": image_step(name, size, True, False),
                "channels_last": image_step(name, size, False, True),
                "channels_last + bf16": image_step(name, size, True, True),
            }
            t = timed(arms, args.rounds, args.steps)
            base = t["float32"]
            print(f"{name} {size}x{size}, batch 32: " + "; ".join(
                f"{k} {1e3 * v:.0f} ms/step = {base / v:.2f}x float32's speed"
                for k, v in t.items()) + f"; bf16 logits differ by "
                f"{logit_gap(name, size):.1e} (relative)")
    t = timed({"float32": dann_step(False), "bf16 autocast": dann_step(True)},
              args.rounds, 20 * args.steps)
    print(f"DANN step (mstn claim's MLP, 64+64): float32 {1e3 * t['float32']:.2f} ms, bf16 "
          f"autocast {1e3 * t['bf16 autocast']:.2f} ms = "
          f"{t['float32'] / t['bf16 autocast']:.2f}x float32's speed")


if __name__ == "__main__":
    main()
