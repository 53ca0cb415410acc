"""Per-step cost of transferkit's training loop against a hand-written PyTorch loop.

In memory: both train the same MLP on the same batches of scikit-learn's digits with the
same optimiser. From files: the digits written as a folder of PNGs (32x32 RGB), read by
``transferkit.data.ImageFolder`` with 2 loader workers, through our ``DatasetStream`` and
``fit`` against a plain shuffling ``DataLoader`` loop doing the same work. Ratios are
measured side by side in one run (median of interleaved repeats, one compute thread).

    python benchmarks/bench_loop.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader

from transferkit.data import ImageFolder, load_digits, resize
from transferkit.nets import MLP
from transferkit.train import DatasetStream, Stream, classification_step, fit, seeded

STEPS, REPEATS = 500, 5
FILE_STEPS, FILE_REPEATS, WORKERS = 150, 3, 2


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


def write_png_folder(root: Path) -> None:
    d = load_digits()
    images = resize(d, 32).images
    lo, hi = float(images.min()), float(images.max())
    pix = ((images - lo) / (hi - lo) * 255).round().to(torch.uint8)[:, 0].numpy()
    for i, (img, label) in enumerate(zip(pix, d.labels.tolist(), strict=True)):
        folder = root / str(label)
        folder.mkdir(exist_ok=True)
        Image.fromarray(np.repeat(img[:, :, None], 3, axis=2)).save(folder / f"{i}.png")


def make_rgb():
    with seeded(0):
        net = MLP((3, 32, 32), n_classes=10, hidden=(256, 256))
    return net, torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)


def raw_files(ds: ImageFolder, persistent: bool = False) -> float:
    net, opt = make_rgb()
    start = time.perf_counter()
    loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=WORKERS, drop_last=True,
                        generator=torch.Generator().manual_seed(0),
                        persistent_workers=persistent)
    step = 0
    while step < FILE_STEPS:
        for x, y in loader:
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step == FILE_STEPS:
                break
    return time.perf_counter() - start


def ours_files(ds: ImageFolder) -> float:
    net, opt = make_rgb()
    start = time.perf_counter()
    stream = DatasetStream(ds, batch_size=64, seed=0, num_workers=WORKERS)
    fit(net, classification_step(), {"train": stream}, opt, FILE_STEPS, progress=False)
    return time.perf_counter() - start


def report(times: dict[str, list[float]], steps: int, base_name: str) -> None:
    base = statistics.median(times[base_name])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:18s} {1e3 * med / steps:7.3f} ms/step  {med / base:5.2f}x {base_name}")


def main() -> None:
    global STEPS, REPEATS, FILE_STEPS, FILE_REPEATS
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: check it runs")
    if ap.parse_args().smoke:
        STEPS, REPEATS, FILE_STEPS, FILE_REPEATS = 20, 1, 10, 1
    torch.set_num_threads(1)
    d = load_digits()
    stream = Stream(d.images, d.labels, batch_size=64, seed=0)
    times: dict[str, list[float]] = {"raw": [], "ours": [], "ours-nolog": []}
    for _ in range(REPEATS):  # interleaved, so drifts in machine load hit all three alike
        times["raw"].append(raw(stream))
        times["ours"].append(ours(stream, 1))
        times["ours-nolog"].append(ours(stream, 0))
    print(f"in memory: MLP on 8x8 digits, batch 64, {STEPS} steps")
    report(times, STEPS, "raw")

    with tempfile.TemporaryDirectory() as tmp:
        write_png_folder(Path(tmp))
        ds = ImageFolder(tmp)
        files: dict[str, list[float]] = {"raw-dataloader": [], "raw-persistent": [],
                                         "ours-datasetstream": []}
        for _ in range(FILE_REPEATS):  # plain DataLoader restarts its workers every epoch
            files["raw-dataloader"].append(raw_files(ds))  # unless persistent_workers=True
            files["raw-persistent"].append(raw_files(ds, persistent=True))
            files["ours-datasetstream"].append(ours_files(ds))
    print(f"from files: {len(ds)} PNGs 32x32 RGB, {WORKERS} workers, batch 64, "
          f"{FILE_STEPS} steps (worker start-up included)")
    report(files, FILE_STEPS, "raw-dataloader")


if __name__ == "__main__":
    main()
