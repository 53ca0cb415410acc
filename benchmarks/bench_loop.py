"""Per-step cost of transferkit's training loop against a hand-written PyTorch loop.

Both train the same MLP on the same batches of scikit-learn's digits with the same
optimiser; the ratio is measured side by side in one run (median of repeats, one thread).

    python benchmarks/bench_loop.py
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from transferkit.data import load_digits
from transferkit.nets import MLP
from transferkit.train import Stream, classification_step, fit, seeded

STEPS, REPEATS = 500, 5


def make():
    with seeded(0):
        net = MLP((1, 8, 8), n_classes=10, hidden=(256, 256))
    return net, torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)


def raw(stream: Stream) -> float:
    net, opt = make()
    start = time.perf_counter()
    for step in range(STEPS):
        x, y = stream.batch(step)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def ours(stream: Stream, log_every: int) -> float:
    net, opt = make()
    start = time.perf_counter()
    fit(net, classification_step(), {"train": stream}, opt, STEPS, progress=False,
        log_losses_every=log_every)
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(1)
    d = load_digits()
    stream = Stream(d.images, d.labels, batch_size=64, seed=0)
    times: dict[str, list[float]] = {"raw": [], "ours": [], "ours-nolog": []}
    for _ in range(REPEATS):  # interleaved, so drifts in machine load hit all three alike
        times["raw"].append(raw(stream))
        times["ours"].append(ours(stream, 1))
        times["ours-nolog"].append(ours(stream, 0))
    base = statistics.median(times["raw"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:11s} {1e3 * med / STEPS:7.3f} ms/step  {med / base:5.2f}x raw")


if __name__ == "__main__":
    main()
