"""Claim ``l2t``: a reflection function learned from past transfer experiences predicts how
much a projection will help a new pair, and transferring through the projection it
optimises beats every base algorithm alone.

Wei, Zhang, Huang, Yang, "Transfer Learning via Learning to Transfer", ICML 2018
(https://proceedings.mlr.press/v80/wei18a.html). The paper's data (Caltech-256, Sketches)
are not bundled; the pairs here are digits.

Per seed, ``train_pairs`` training pairs and ``test_pairs`` held-out pairs are drawn from
their own random streams. A pair: three random digit classes; the source is 100 images a
class from one domain (MNIST-5k brought to 8x8 the optdigits way, or scikit-learn's
digits); the target has the same three classes, 3 labelled and 60 unlabelled images a
class, from the other domain (half of the pairs; then one corruption with probability
1/2) or from the same domain with disjoint images and one or two corruptions (rotation by
20-60 degrees either way, Gaussian blur of 0.6-1.5 pixels, Gaussian noise of 0.15-0.35,
half resolution). Features: the 64 pixels.

Experiences: the base algorithms of :mod:`transferkit.l2t.algorithms` (identity and PCA
as references; TCA and TSL, published transfer algorithms, from skada; 16 components) on
every training pair, each measured by the improvement ratio ``l`` = 1-NN accuracy on the
unlabelled target with transfer (projected source + labelled target) over 1-NN on the
labelled target alone. The training experiences are cached on disk as they are made (a
killed seed resumes). The reflection function, the paper's ``beta^T d + lambda beta^T Q
beta + mu / tau + b``, is fitted to them (``gamma1`` by cross-validation grouped by pair,
on the training experiences only); the descent on a new pair is held to the region the
experiences span (:mod:`transferkit.l2t.reflection`).

Arms, per seed the mean over held-out pairs of the improvement ratio: each base algorithm
alone; ``reflection-select`` (the base projection the reflection function rates best,
without descent); ``l2t`` (descent from there, 1-NN). ``spearman``: the rank correlation,
over the held-out pairs' base experiences, between the reflection function's rating and
the measured ratio. The test labels of held-out pairs are used only to measure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data import Domain, add_noise, blur, lower_resolution, rotate
from ...l2t import (
    DEFAULT_BASES,
    L2T,
    ExperienceStore,
    TransferPair,
    generate_experiences,
    improvement_ratio,
    make_experience,
)
from ..base import Bound, Claim, Comparison, SeedResult, register_claim
from ..plotting import figure
from ..units import unit, unit_checkpoint
from ._digits import digit_pair

BASES = DEFAULT_BASES


@dataclass(frozen=True)
class L2TConfig:
    seeds: int = 3
    train_pairs: int = 60
    test_pairs: int = 15
    n_components: int = 16
    source_per_class: int = 100
    labelled_per_class: int = 3
    unlabelled_per_class: int = 60
    steps: int = 100
    lr: float = 0.01
    gamma2: float = 1e-3
    # more latent dimensions per base algorithm on the training pairs only
    extra_components: tuple[int, ...] = ()


def _corrupt(dom: Domain, kind: str, rng: np.random.Generator) -> Domain:
    if kind == "rotate":
        return rotate(dom, float(rng.uniform(20, 60) * rng.choice([-1, 1])))
    if kind == "blur":
        return blur(dom, float(rng.uniform(0.6, 1.5)))
    if kind == "noise":
        return add_noise(dom, float(rng.uniform(0.15, 0.35)), int(rng.integers(2**31)))
    return lower_resolution(dom, 2)


def make_pair(cfg: L2TConfig, rng: np.random.Generator) -> tuple[TransferPair, str]:
    """One random (source, target) pair and a description of it."""
    domains = dict(zip(("mnist", "digits"), digit_pair(8), strict=True))
    classes = rng.choice(10, 3, replace=False)
    src_name = str(rng.choice(list(domains)))
    cross = bool(rng.random() < 0.5)
    tgt_name = [n for n in domains if n != src_name][0] if cross else src_name
    kinds = ["rotate", "blur", "noise", "lowres"]
    n_corrupt = int(rng.random() < 0.5) if cross else int(rng.integers(1, 3))
    corruptions = [str(k) for k in rng.choice(kinds, n_corrupt, replace=False)]
    n_t = cfg.labelled_per_class + cfg.unlabelled_per_class
    src_idx, lab_idx, unl_idx = [], [], []
    for c in classes:
        s_rows = np.flatnonzero(domains[src_name].labels.numpy() == c)
        t_rows = np.flatnonzero(domains[tgt_name].labels.numpy() == c)
        if cross:
            s_pick = rng.choice(s_rows, cfg.source_per_class, replace=False)
            t_pick = rng.choice(t_rows, n_t, replace=False)
        else:  # one domain: disjoint images
            both = rng.choice(s_rows, cfg.source_per_class + n_t, replace=False)
            s_pick, t_pick = both[:cfg.source_per_class], both[cfg.source_per_class:]
        src_idx.append(s_pick)
        lab_idx.append(t_pick[:cfg.labelled_per_class])
        unl_idx.append(t_pick[cfg.labelled_per_class:])
    relabel = {int(c): i for i, c in enumerate(classes)}

    def take(dom: Domain, idx: list[np.ndarray]) -> tuple[Domain, np.ndarray]:
        sub = dom.subset(torch.as_tensor(np.concatenate(idx)))
        return sub, np.array([relabel[int(v)] for v in sub.labels])

    source, ys = take(domains[src_name], src_idx)
    target_rows = [np.concatenate([a, b]) for a, b in zip(lab_idx, unl_idx, strict=True)]
    target, yt = take(domains[tgt_name], target_rows)
    for kind in corruptions:
        target = _corrupt(target, kind, rng)
    Xt_all = target.flat().numpy().astype(np.float64)
    is_lab = np.concatenate([np.arange(len(r)) < cfg.labelled_per_class for r in target_rows])
    pair = TransferPair(source.flat().numpy().astype(np.float64), ys, Xt_all[~is_lab],
                        Xt_all[is_lab], yt[is_lab], Xt_all[~is_lab], yt[~is_lab])
    desc = f"{src_name}->{tgt_name}{'+' + '+'.join(corruptions) if corruptions else ''}"
    return pair, f"{desc} classes {sorted(int(c) for c in classes)}"


def _experience_algorithms(cfg: L2TConfig) -> list[str]:
    return [*BASES, *(f"{a}@{p}" for a in BASES if a != "identity"
                      for p in cfg.extra_components)]


def _pair_stream(seed: int, split: int, i: int) -> np.random.Generator:
    return np.random.default_rng([seed, 2018, split, i])


def _train_pair(cfg: L2TConfig, seed: int, i: int) -> TransferPair:
    return make_pair(cfg, _pair_stream(seed, 0, i))[0]


def _spearman(pred: np.ndarray, truth: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(pred, truth).statistic)


def _held_out(cfg: L2TConfig, seed: int, i: int, model: L2T) -> dict[str, Any]:
    pair, desc = make_pair(cfg, _pair_stream(seed, 1, i))
    stats = model.statistics(pair.Xs, pair.target)
    out: dict[str, Any] = {"pair": desc, "ratio": {}, "score": {}}
    exps = {alg: make_experience(pair, f"test{i}", alg, cfg.n_components, stats)
            for alg in BASES}
    for alg, exp in exps.items():
        out["ratio"][alg] = exp.ratio
        out["score"][alg] = float(model.reflection_.inverse(exp.features))
    best = min(BASES, key=lambda a: out["score"][a])
    out["ratio"]["reflection-select"] = out["ratio"][best]
    done = model.transfer(pair.Xs, pair.ys, pair.Xt, pair.Xt_labelled, pair.yt_labelled,
                          starts={alg: exp.W for alg, exp in exps.items()})
    out["ratio"]["l2t"] = improvement_ratio(pair, done.W)[0]
    out["start"] = done.start
    out["objective"] = [done.history[0], min(done.history)]
    return out


def run(cfg: L2TConfig, seed: int) -> SeedResult:
    where = unit_checkpoint("experiences")
    store = ExperienceStore(None if where is None else where.with_suffix(""))
    names = ((f"train{i}", partial(_train_pair, cfg, seed, i)) for i in range(cfg.train_pairs))
    generate_experiences(names, store, _experience_algorithms(cfg), cfg.n_components,
                         total=cfg.train_pairs)
    model = L2T(BASES, cfg.n_components, steps=cfg.steps, lr=cfg.lr, gamma2=cfg.gamma2,
                seed=seed).fit(store)
    pairs = [unit(f"test{i}", partial(_held_out, cfg, seed, i, model))
             for i in range(cfg.test_pairs)]
    arms = {arm: float(np.mean([p["ratio"][arm] for p in pairs]))
            for arm in (*BASES, "reflection-select", "l2t")}
    pred = np.array([-p["score"][a] for p in pairs for a in BASES])
    truth = np.array([p["ratio"][a] for p in pairs for a in BASES])
    arms["spearman"] = _spearman(pred, truth)
    F, r, _ = store.arrays()
    extras = {
        "pairs": pairs,
        "train_ratio": {a: float(np.mean([e.ratio for e in store if e.algorithm == a]))
                        for a in _experience_algorithms(cfg)},
        "reflection": {"beta": model.reflection_.beta.tolist(),
                       "lambda": model.reflection_.lam,
                       "mu": model.reflection_.mu, "b": model.reflection_.b,
                       "gamma1": model.reflection_.gamma1,
                       "train_spearman": _spearman(-model.reflection_.inverse(F), r)},
    }
    return SeedResult(arms=arms, extras=extras)


def plot(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Reflection rating against measured improvement ratio on the held-out pairs, and the
    mean ratio of each arm."""
    seeds = result.get("extras", {})
    points = [(-p["score"][a], p["ratio"][a], a)
              for extra in seeds.values() for p in extra.get("pairs", []) for a in BASES]
    with figure(out_dir, "l2t_reflection", figsize=(9.5, 3.8)) as (fig, path):
        ax = fig.add_subplot(1, 2, 1)
        for j, alg in enumerate(BASES):
            xs = [x for x, _, a in points if a == alg]
            ys = [y for _, y, a in points if a == alg]
            ax.scatter(xs, ys, s=10, alpha=0.6, color=f"C{j}", label=alg)
        ax.set_xlabel("reflection rating  -1/f  (higher: better expected)")
        ax.set_ylabel("measured improvement ratio l")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.legend(fontsize=7)
        ax.set_title("held-out pairs", fontsize=9)
        ax = fig.add_subplot(1, 2, 2)
        summary = result["summary"]
        arms = [a for a in (*BASES, "reflection-select", "l2t") if a in summary]
        means = [summary[a]["mean"] for a in arms]
        err = [[m - summary[a]["ci95"][0] for a, m in zip(arms, means, strict=True)],
               [summary[a]["ci95"][1] - m for a, m in zip(arms, means, strict=True)]]
        ax.bar(range(len(arms)), means, yerr=err, color=[f"C{j}" for j in range(len(arms))])
        ax.set_xticks(range(len(arms)), arms, rotation=30, fontsize=8)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        lo = min(min(means) - 0.05, 0.95)
        ax.set_ylim(lo, max(means) + 0.05)
        ax.set_ylabel("mean improvement ratio (95% CI over seeds)")
    return [path]


register_claim(
    Claim(
        name="l2t",
        paper=("Wei, Zhang, Huang, Yang. Transfer Learning via Learning to Transfer. ICML 2018. "
               "https://proceedings.mlr.press/v80/wei18a.html"),
        statement=("A reflection function fitted to past transfer experiences ranks new "
                   "pairs' projections by their improvement (Spearman > 0.3), and the "
                   "projection it optimises gives a higher mean improvement ratio than every "
                   "base algorithm alone"),
        metric="improvement_ratio",
        higher_is_better=True,
        budgets={"quick": L2TConfig(seeds=6, train_pairs=15, test_pairs=6),
                 "full": L2TConfig(seeds=10, train_pairs=300, test_pairs=50)},
        run=run,
        comparisons=[
            Bound("spearman", 0.3, above=True),
            *[Comparison("l2t", base, 0.01) for base in BASES],
            *[Comparison("reflection-select", base, 0.0, own=False) for base in BASES],
            Comparison("l2t", "reflection-select", 0.0, own=False),
            Bound("l2t", 1.0, above=True, own=False),
        ],
        plot=plot,
        series=2,
        notes=(
            "Protocol of 2026-12-06 (issue 31), set before any result of it was seen: the "
            "paper's reflection function (lambda beta^T Q beta with Q the covariance, across "
            "the kernels, of the linear-time MMD estimates that d holds) replaces ours "
            "(lambda^T diag(Q) beside a U-statistic d); the base bank is identity, PCA and "
            "skada's TCA and TSL (the home-made CORAL-as-projection and our linear TCA are "
            "gone); the descent stops where it would leave the experiences' range. Quick runs "
            "seeds 0..5 (development); full runs the confirmation series 2 (2000..2009), "
            "unused before. "
            "Earlier protocol: full series 1 (1000..1009) did not hold (Spearman 0.277, need "
            "0.3); quick seeds 0..5 did not hold (spearman > 0.3 -0.049 [-0.224, +0.125]; l2t "
            "vs identity -0.064 [-0.160, +0.032]; l2t vs pca -0.067 [-0.158, +0.023]; l2t vs "
            "tca -0.064 [-0.154, +0.025]; l2t vs coral +0.214 [+0.104, +0.325]). "
            "Quick budget: 6 seeds, 15 training and 6 held-out pairs per seed. "
            "Statistics: each seed repeats the whole experiment (its own training and "
            "held-out pairs); the tests are over seeds, on the per-seed means over held-out "
            "pairs. The `spearman` arm is a rank correlation, not a ratio. The required "
            "margin for l2t over each base algorithm is 0.01 in improvement ratio. "
            "Base algorithms stand in for the paper's bank (TCA, ITL, CMF, LSDT, STL, DIP, "
            "SIE, GFK), which has no public code in one place. "
            "History of the earlier protocol: changes after seeing development seed 0 (40 "
            "training and 10 held-out pairs): "
            "(1) CORAL-as-projection first whitened its directions to the target; its "
            "mean ratio was 0.70, and unit-length directions gave 0.77; (2) the reflection "
            "fit first left lambda free; its descent drove 1/f below zero (predicted "
            "infinite improvement) and l2t scored 0.78 against identity's 1.06; with the "
            "paper's lambda >= 0 l2t scored 1.03 and the held-out Spearman fell from 0.41 "
            "to 0.20. Training experiences at 4 components as well (`extra_components`) "
            "were tried on the same seed (Spearman 0.15) and are off. With 300 training "
            "and 30 held-out pairs on seed 0: Spearman 0.33, identity 1.033, tca 1.023, "
            "reflection-select 1.023, l2t 0.949."
        ),
    )
)
