"""Step time of DANN and MSTN relative to a source-only step, side by side in one run.

MNIST-5k -> scikit-learn digits at 8x8 (the claim `mstn`'s data), the claim's network
(MLP + linear bottleneck) and discriminator, batch 64 + 64, one thread. The arms are
timed in interleaved rounds (source-only, MMD, CORAL, DANN, MSTN, then again), so load
from other processes hits them alike; the median round is reported. Target: MSTN <= 1.25x
DANN.

With ``--epochs N`` it also trains our DANN for N epochs over the source (SGD, annealed
lr, lambda schedule; in float32, and under bfloat16 autocast) and reports ms/epoch and
target accuracy; if skada is installed (optional, ``pip install skada``), its DANN runs
on the same arrays, same network sizes and epochs, side by side. Preprocessing: both
domains are 8x8 optdigits-style ink fractions in [0, 1] (``digit_pair(8)``), flattened to
64 features for skada.

Run: ``python benchmarks/bench_adaptation.py [--width 256] [--rounds 7] [--epochs 30
--seeds 3]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from transferkit.adaptation import AdaptationModel, adaptation_step, annealed_lr_scheduler
from transferkit.claims.recipes._digits import digit_pair
from transferkit.claims.recipes.mstn import ARMS, MSTNConfig, _objective, build_network
from transferkit.train import Stream, Trainer, Update, accuracy, seeded
from transferkit.train.loop import Phase


def make_trainer(arm: str, cfg: MSTNConfig, steps: int) -> Trainer:
    source, target = digit_pair(cfg.resolution)
    with seeded(0):
        objective, weight = _objective(arm, cfg, 10)
        model = AdaptationModel(build_network(cfg, 10), objective)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=5e-4)
    streams = {"source": Stream(source.images, source.labels, batch_size=cfg.batch_size)}
    if model.objective is not None:
        streams["target"] = Stream(target.images, batch_size=cfg.batch_size, seed=1)
    sched = annealed_lr_scheduler(opt, steps)
    phase = Phase(adaptation_step(weight=weight), opt, streams, scheduler=sched)
    return Trainer(model, phase, max_steps=steps, log_losses_every=0, progress=False)


def step_times(cfg: MSTNConfig, rounds: int, steps: int) -> dict[str, float]:
    total = rounds * steps + steps
    trainers = {arm: make_trainer(arm, cfg, total) for arm in ARMS}
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for r in range(rounds + 1):
        for arm, tr in trainers.items():
            tr.max_steps = (r + 1) * steps
            t0 = time.perf_counter()
            tr.fit()
            if r > 0:  # round 0 warms up
                times[arm].append((time.perf_counter() - t0) / steps)
    return {arm: statistics.median(v) for arm, v in times.items()}


def our_dann(cfg: MSTNConfig, epochs: int, seed: int = 0,
             autocast: torch.dtype | None = None) -> tuple[float, float, int]:
    """(ms per epoch, target accuracy, samples seen per epoch) of our DANN (under
    :func:`torch.autocast` with ``autocast``: bfloat16 matrix products)."""
    source, target = digit_pair(cfg.resolution)
    per_epoch = len(source.images) // cfg.batch_size
    steps = epochs * per_epoch
    with seeded(seed):
        model = AdaptationModel(build_network(cfg, 10), _objective("dann", cfg, 10)[0])
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=5e-4)
    streams = {  # seeded, so that what ran before in the process changes nothing
        "source": Stream(source.images, source.labels, batch_size=cfg.batch_size, seed=seed),
        "target": Stream(target.images, batch_size=cfg.batch_size, seed=1000 + seed),
    }
    phase = Phase(adaptation_step(weight=_objective("dann", cfg, 10)[1]), opt, streams,
                  scheduler=annealed_lr_scheduler(opt, steps), update=Update(autocast=autocast))
    t0 = time.perf_counter()
    Trainer(model, phase, steps, seed=seed, log_losses_every=0, progress=False).fit()
    ms = (time.perf_counter() - t0) / epochs * 1000
    # each step draws a source batch and a target batch
    return ms, accuracy(model, target.images, target.labels), 2 * per_epoch * cfg.batch_size


def skada_dann(
    cfg: MSTNConfig, epochs: int, fixed: bool = True, reg: float = 0.1, seed: int = 0
) -> tuple[float, float, int] | None:
    """(ms per epoch, target accuracy, samples seen per epoch) of skada's DANN."""
    try:
        from skada.deep import DANN as SkadaDANN  # type: ignore[import-not-found]
        from skada.deep.modules import DomainClassifier  # type: ignore[import-not-found]
    except ImportError:
        return None
    import numpy as np
    from torch import nn

    source, target = digit_pair(cfg.resolution)
    xs = source.flat().numpy().astype(np.float32)
    xt = target.flat().numpy().astype(np.float32)
    x = np.concatenate([xs, xt])
    y = np.concatenate([source.labels.numpy(), -np.ones(len(xt), dtype=np.int64)])
    sd = np.concatenate([np.ones(len(xs)), -np.ones(len(xt))]).astype(np.int64)
    w = cfg.hidden[0]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.feat = nn.Sequential(
                nn.Linear(x.shape[1], w),
                nn.ReLU(),
                nn.Linear(w, w),
                nn.ReLU(),
                nn.Linear(w, cfg.bottleneck),
            )
            self.head = nn.Linear(cfg.bottleneck, 10)

        def forward(self, inp: torch.Tensor, sample_weight: object = None) -> torch.Tensor:
            return self.head(self.feat(inp))

    from skada.deep.modules import GradientReversalLayer  # type: ignore[import-not-found]

    class Discriminator(nn.Module):
        """Our discriminator's sizes with skada's reversal layer and a sigmoid output.

        skada 0.6.0's default ``DomainClassifier`` ends in ``nn.Softmax()`` over its single
        output, which is identically 1, so its domain loss is constant and its DANN does no
        adaptation; this replacement makes the comparison meaningful.
        """

        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            width = cfg.bottleneck
            for h in cfg.disc_hidden:
                layers += [nn.Linear(width, h), nn.ReLU()]
                width = h
            self.net = nn.Sequential(*layers, nn.Linear(width, 1), nn.Sigmoid())

        def forward(self, x: torch.Tensor, sample_weight: object = None) -> torch.Tensor:
            return self.net(GradientReversalLayer.apply(x, 1.0)).squeeze(-1)

    torch.manual_seed(seed)
    disc = Discriminator() if fixed else DomainClassifier(num_features=cfg.bottleneck)
    clf = SkadaDANN(
        Net(),
        reg=reg,
        layer_name="feat",
        batch_size=cfg.batch_size,
        max_epochs=epochs,
        domain_classifier=disc,
        num_features=cfg.bottleneck,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=cfg.lr,
        train_split=False,
        verbose=0,
    )
    t0 = time.perf_counter()
    clf.fit(x, y, sample_domain=sd)
    ms = (time.perf_counter() - t0) / epochs * 1000
    pred = clf.predict(xt, sample_domain=-np.ones(len(xt), dtype=np.int64))
    # skada's DomainBalancedSampler: max(source, target) rows of each domain, rounded down
    # to whole batches, per epoch
    seen = 2 * max(len(xs) - len(xs) % cfg.batch_size, len(xt) - len(xt) % cfg.batch_size)
    return ms, float((pred == target.labels.numpy()).mean()), seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=256, help="hidden, bottleneck, discriminator")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=40, help="steps per arm per round")
    parser.add_argument("--epochs", type=int, default=0, help="also train DANN this many epochs")
    parser.add_argument("--seeds", type=int, default=1, help="seeds of the DANN comparison")
    args = parser.parse_args()
    torch.set_num_threads(1)
    w = args.width
    cfg = MSTNConfig(hidden=(w, w), bottleneck=w, disc_hidden=(w, w))
    t = step_times(cfg, args.rounds, args.steps)
    base = t["source-only"]
    print(f"width {w}, batch 64+64, 1 thread, median of {args.rounds} interleaved rounds")
    for arm in ARMS:
        print(f"{arm:12s} {t[arm] * 1000:7.3f} ms/step  {t[arm] / base:5.2f}x source-only")
    ratio = t["mstn"] / t["dann"]
    verdict = "met" if ratio <= 1.25 else "NOT met"
    print(f"MSTN / DANN step time: {ratio:.3f} (target <= 1.25: {verdict})")
    if args.epochs:
        dann_versus_skada(cfg, args.epochs, args.seeds)


def _versus(label: str, ours: list[tuple[float, float, int]],
            theirs: list[tuple[float, float, int]], target: str) -> None:
    """One more arm of ours against skada's runs: time per sample seen and accuracy."""
    ms = statistics.median(r[0] for r in ours)
    sk_ms = statistics.median(r[0] for r in theirs)
    diffs = [a[1] - b[1] for a, b in zip(ours, theirs, strict=True)]
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
    print(f"{label}: {ms:7.1f} ms/epoch, target accuracy {_mean_sd([r[1] for r in ours])}; "
          f"per sample seen {(ms / ours[0][2]) / (sk_ms / theirs[0][2]):.2f}x skada's{target}; "
          f"accuracy - skada's {statistics.mean(diffs):+.4f} (standard error {se:.4f})")


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.4f} +- {sd:.4f}"


def dann_versus_skada(cfg: MSTNConfig, epochs: int, seeds: int) -> None:
    """Our DANN and skada's, same arrays, network sizes and epochs, on ``seeds`` seeds."""
    ours = [our_dann(cfg, epochs, seed) for seed in range(seeds)]
    ms = statistics.median(r[0] for r in ours)
    print(f"transferkit DANN: {ms:7.1f} ms/epoch ({ours[0][2]} samples), target accuracy "
          f"{_mean_sd([r[1] for r in ours])} over {seeds} seed(s) ({epochs} epochs)")
    first = skada_dann(cfg, epochs, seed=0)
    if first is None:
        print("skada not installed: peer comparison skipped (pip install skada)")
        return
    theirs = [first] + [r for seed in range(1, seeds)
                        if (r := skada_dann(cfg, epochs, seed=seed)) is not None]
    sk_ms = statistics.median(r[0] for r in theirs)
    print(f"skada DANN:       {sk_ms:7.1f} ms/epoch ({theirs[0][2]} samples), target accuracy "
          f"{_mean_sd([r[1] for r in theirs])} (our discriminator's sizes, reg 0.1, "
          "constant lambda)")
    per_sample = (ms / ours[0][2]) / (sk_ms / theirs[0][2])
    print(f"ours / skada time per epoch: {ms / sk_ms:.2f}x; per sample seen: "
          f"{per_sample:.2f}x (target <= 0.5x)")
    diffs = [a[1] - b[1] for a, b in zip(ours, theirs, strict=True)]
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
    print(f"target accuracy, ours - skada (paired by seed): {statistics.mean(diffs):+.4f} "
          f"(standard error {se:.4f}; target: >= 0)")
    # skada's balanced sampler fills each batch of `batch_size` with half source, half
    # target: twice our steps per epoch. Ours with the same batches, for a matched count:
    half = dataclasses.replace(cfg, batch_size=cfg.batch_size // 2)
    _versus(f"transferkit DANN, {half.batch_size}+{half.batch_size} per step (skada's "
            "batches)", [our_dann(half, epochs, seed) for seed in range(seeds)], theirs, "")
    _versus("transferkit DANN, bfloat16 autocast (--precision bf16)",
            [our_dann(cfg, epochs, seed, autocast=torch.bfloat16) for seed in range(seeds)],
            theirs, " (target <= 0.5x)")
    dflt = skada_dann(cfg, epochs, fixed=False, reg=1.0)
    if dflt is not None:
        print(f"skada DANN, default DomainClassifier: {dflt[0]:7.1f} ms/epoch, target "
              f"accuracy {dflt[1]:.4f} (seed 0)")

if __name__ == "__main__":
    main()
