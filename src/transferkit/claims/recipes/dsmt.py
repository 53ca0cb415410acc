"""Claim ``dsmt``: with few labelled alarms, a DSMT-Net's automatically selected auxiliary
tasks on unlabelled windows beat the same network trained on the labels alone.

Schwab et al., "Not to Cry Wolf: Distantly Supervised Multitask Learning in Critical
Care", ICML 2018 (arXiv 1802.05027). The authors' ICU data are not public (their code
runs on the Daphnet gait data); here the windows come from
:func:`transferkit.data.simulate_alarms` (neurokit2 signals: ECG, pleth, respiration,
SpO2; true alarms from real events, false alarms from artifacts; movement contamination
and respiratory distress that tell them apart as in bedside data; missing segments).

The claim is stated as the paper's table: test AUROC at several fractions of the training
windows labelled, for the supervised network, the naive multitask network, the DSMT-Net
and a random forest on the feature bank.

Data: one simulated training pool of ``n_pool`` windows and a test set of ``n_test``
simulated from another seed (``data_seed + 100``), so that no source record is cut into
both (quick and full use different ``data_seed``, so the full verdict is made on windows
development never saw). Per seed and per fraction f, round(f * n_pool) windows of the
pool are labelled at random (at least two of each class); a third of them (at least one
of each class) is the validation set (early stopping of both phases, the threshold); the
others are the labelled training windows; every other pool window is unlabelled.

Auxiliary tasks (:mod:`transferkit.multitask.auxiliary`): tsfresh's "lean" bank on every
channel, the relevance test (Benjamini-Yekutieli, FDR 0.05) on the labelled training
windows only, K chosen at random among the relevant features (padded at random from the
others when fewer are relevant, the authors' rule), standardised on the labelled +
unlabelled training windows. The extras record, per run, how many features were relevant
and which were chosen.

Arms (AUROC on the test set), at the first fraction without a prefix and at each other
fraction f under ``f<percent>/``: ``supervised`` (K = 0: the authors' highway network on
the perception output, labelled windows only), ``naive-mtl`` (all K auxiliary targets on
one shared layer), ``dsmt`` (K multitask blocks), ``random-forest`` (scikit-learn, 500
trees, on the feature bank of the labelled windows, validation ones included), and
``dsmt-k<K>`` for the curve of AUROC against K (at the first fraction only). Every
network has the same perception blocks, optimiser (RMSprop), schedule (the authors': an
epoch is as many steps as labelled training windows, in each phase) and early stopping.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from ...data.alarms import Windows, simulate_alarms
from ...multitask.auxiliary import FeatureBank, feature_bank
from ...multitask.dsmt_fit import train_dsmt
from ..base import Claim, Comparison, SeedResult, register_claim
from ..plotting import figure
from ..units import unit, unit_checkpoint


@dataclass(frozen=True)
class DSMTConfig:
    seeds: int = 2
    n_pool: int = 480
    fractions: tuple[float, ...] = (0.125,)
    n_test: int = 500
    k: int = 20
    k_curve: tuple[int, ...] = ()
    data_seed: int = 0
    epochs: int = 20
    burn_in: int = 5
    patience: int = 5
    aux_patience: int = 12
    batch_size: int = 16
    lr: float = 1e-3
    width: int = 16
    units: int = 32
    trees: int = 500
    fdr_level: float = 0.05


@lru_cache(maxsize=2)
def _data(cfg_key: tuple[int, int, int]) -> tuple[Windows, Windows, FeatureBank, FeatureBank]:
    """(pool, test set, bank of the pool, bank of the test set), once per process; the
    test windows come from other source records than the pool's."""
    n_pool, n_test, data_seed = cfg_key
    pool = simulate_alarms(n_pool, seed=data_seed)
    test = simulate_alarms(n_test, seed=data_seed + 100)
    pool_bank = feature_bank(pool.X, pool.channels)
    test_bank = feature_bank(test.X, test.channels, impute_from=pool_bank)
    return pool, test, pool_bank, test_bank


def _prefix(cfg: DSMTConfig, fraction: float) -> str:
    """'' at the first fraction, else e.g. 'f25/' (for 0.25) or 'f12.5/'."""
    return "" if fraction == cfg.fractions[0] else f"f{100 * fraction:g}/"


def _split(y: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n labelled indices (>= 2 per class) split into (train, validation)."""
    while True:
        pick = rng.choice(len(y), n, replace=False)
        if min((y[pick] == 0).sum(), (y[pick] == 1).sum()) >= 2:
            break
    # one of each class, then the rest of a third at random
    first = np.array([rng.choice(pick[y[pick] == c]) for c in (0, 1)])
    rest = np.setdiff1d(pick, first)
    extra = max(0, round(n / 3) - 2)
    val = np.concatenate([first, rng.choice(rest, extra, replace=False)]).astype(int)
    return np.setdiff1d(pick, val), np.sort(val)


def _auroc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _arm(cfg: DSMTConfig, seed: int, fraction: float, arm: str) -> dict[str, Any]:
    windows, test, pool_bank, test_bank = _data((cfg.n_pool, cfg.n_test, cfg.data_seed))
    n = round(fraction * cfg.n_pool)
    rng = np.random.default_rng([seed, 2018, n])
    lab, val = _split(windows.y, n, rng)
    pool = np.setdiff1d(np.arange(cfg.n_pool), val)  # labelled-train + unlabelled
    if arm == "random-forest":
        from sklearn.ensemble import RandomForestClassifier

        both = np.concatenate([lab, val])
        rf = RandomForestClassifier(cfg.trees, random_state=seed, n_jobs=1)
        rf.fit(pool_bank.values[both], windows.y[both])
        return {"auroc": _auroc(test.y, rf.predict_proba(test_bank.values)[:, 1])}
    k = 0 if arm == "supervised" else (int(arm.split("-k")[1]) if "-k" in arm else cfg.k)
    train = windows.subset(pool).with_labels_of(np.isin(pool, lab))  # the others hidden
    with warnings.catch_warnings():  # padding is expected at these label counts: the
        warnings.simplefilter("ignore", UserWarning)  # extras record how many were relevant
        model = train_dsmt(train, windows.subset(val), k,
                           aux_mode="shared" if arm == "naive-mtl" else "blocks",
                           bank=pool_bank.rows(pool), validation_bank=pool_bank.rows(val),
                           fdr_level=cfg.fdr_level, width=cfg.width, units=cfg.units,
                           epochs=cfg.epochs, burn_in=cfg.burn_in, patience=cfg.patience,
                           aux_patience=cfg.aux_patience, batch_size=cfg.batch_size,
                           lr=cfg.lr, seed=seed,
                           checkpoint=unit_checkpoint(f"{_prefix(cfg, fraction)}{arm}"))
    p = model.predict_proba(test)
    pred = p >= model.threshold
    res = model.result
    info: dict[str, Any] = {}
    if model.tasks is not None:
        info = {"relevant": model.tasks.relevant, "relevant_total": model.tasks.n_relevant_total,
                "tasks": model.tasks.names, "aux_epochs": res.aux_epochs}
    return {"auroc": _auroc(test.y, p), "epochs": res.epochs, "best_epoch": res.best_epoch,
            "threshold": model.threshold, "labelled": len(lab), "validation": len(val),
            "sensitivity": float(pred[test.y == 1].mean()),
            "specificity": float(1 - pred[test.y == 0].mean()), **info}


def _arms(cfg: DSMTConfig, fraction: float) -> list[str]:
    """Every arm at each fraction; the curve over K only at the first (for its cost)."""
    curve = ([f"dsmt-k{k}" for k in cfg.k_curve if k != cfg.k]
             if fraction == cfg.fractions[0] else [])
    return ["supervised", "naive-mtl", "dsmt", "random-forest", *curve]


def run(cfg: DSMTConfig, seed: int) -> SeedResult:
    arms: dict[str, float] = {}
    extras: dict[str, Any] = {}
    for fraction in cfg.fractions:
        prefix = _prefix(cfg, fraction)
        for arm in _arms(cfg, fraction):
            out = unit(f"{prefix}{arm}", partial(_arm, cfg, seed, fraction, arm))
            arms[f"{prefix}{arm}"] = out["auroc"]
            extras[f"{prefix}{arm}"] = {k: v for k, v in out.items() if k != "auroc"}
    return SeedResult(arms=arms, extras=extras)


def plot(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """The paper's table as a figure: test AUROC against the labelled fraction, per arm;
    and AUROC against the number of auxiliary tasks K at the first fraction."""
    cfg = result["config"]
    summary = result["summary"]
    fractions = list(cfg["fractions"])

    def key(fraction: float, arm: str) -> str:
        return ("" if fraction == fractions[0] else f"f{100 * fraction:g}/") + arm

    def draw(ax: Any, xs: list[float], keys: list[str], **style: Any) -> None:
        pts = [(x, summary[k]) for x, k in zip(xs, keys, strict=True) if k in summary]
        ax.errorbar([x for x, _ in pts], [s["mean"] for _, s in pts],
                    yerr=[[s["mean"] - s["ci95"][0] for _, s in pts],
                          [s["ci95"][1] - s["mean"] for _, s in pts]],
                    marker="o", capsize=3, **style)

    paths = []
    with figure(out_dir, "dsmt_auroc_vs_fraction", figsize=(5.5, 3.8)) as (fig, path):
        ax = fig.add_subplot(1, 1, 1)
        xs = [100 * f for f in fractions]
        for j, arm in enumerate(("supervised", "naive-mtl", "dsmt", "random-forest")):
            draw(ax, xs, [key(f, arm) for f in fractions], color=f"C{j}", label=arm)
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{x:g}%" for x in xs])
        ax.set_xlabel(f"training windows labelled (of {cfg['n_pool']})")
        ax.set_ylabel("test AUROC (95% CI over seeds)")
        ax.legend(fontsize=7)
        paths.append(path)
    ks = sorted({0, cfg["k"], *cfg["k_curve"]})
    if len(ks) > 2:
        with figure(out_dir, "dsmt_auroc_vs_k", figsize=(5.5, 3.8)) as (fig, path):
            ax = fig.add_subplot(1, 1, 1)
            draw(ax, ks, ["supervised" if k == 0 else ("dsmt" if k == cfg["k"] else f"dsmt-k{k}")
                          for k in ks], color="C2", label="dsmt (K = 0: supervised)")
            for j, arm in enumerate(("naive-mtl", "random-forest")):
                if arm in summary:
                    ax.axhline(summary[arm]["mean"], ls="--", color=f"C{j + 1}", lw=0.9,
                               label=arm)
            ax.set_xlabel(f"auxiliary tasks K ({100 * fractions[0]:g}% labelled)")
            ax.set_ylabel("test AUROC (95% CI over seeds)")
            ax.legend(fontsize=7)
            paths.append(path)
    return [*paths, _plot_examples(cfg, out_dir)]


def _plot_examples(cfg: Mapping[str, Any], out_dir: Path) -> Path:
    """One simulated window of each event, every channel (what the networks see)."""
    from ...data.alarms import FALSE_EVENTS, TRUE_EVENTS

    sample = simulate_alarms(300, seed=int(cfg["data_seed"]))
    events = [*TRUE_EVENTS, *FALSE_EVENTS]
    t = np.arange(sample.X.shape[2]) / sample.sampling_rate
    with figure(out_dir, "dsmt_examples", figsize=(12, 9)) as (fig, path):
        for i, event in enumerate(events):
            rows = np.flatnonzero(sample.events == event)
            if not len(rows):
                continue
            x = sample.X[rows[0]]
            for c, name in enumerate(sample.channels):
                ax = fig.add_subplot(len(events), 4, 4 * i + c + 1)
                ax.plot(t, x[c], lw=0.6, color="C3" if event in TRUE_EVENTS else "C0")
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(name, fontsize=8)
                if c == 0:
                    ax.set_ylabel(event, fontsize=7, rotation=0, ha="right")
        fig.suptitle("simulated alarm windows (red: true alarm, blue: false alarm; gaps: "
                     "missing samples)", fontsize=9)
    return path


register_claim(
    Claim(
        name="dsmt",
        paper=("Schwab, Keller, Muroi, Mack, Strässle, Karlen. Not to Cry Wolf: Distantly "
               "Supervised Multitask Learning in Critical Care. ICML 2018. "
               "https://arxiv.org/abs/1802.05027"),
        statement=("With 12.5% of 480 training alarm windows labelled (60: 40 to train, 20 to "
                   "validate) and the rest unlabelled, a DSMT-Net with K = 20 automatically "
                   "selected auxiliary tasks beats the same network trained on the labels "
                   "alone by at least 0.03 test AUROC (the paper's table, at its smallest "
                   "fraction; 25% is reported beside it in full, and 50 and 100% on "
                   "request)"),
        metric="test_auroc",
        higher_is_better=True,
        bounds=(0.0, 1.0),
        budgets={"quick": DSMTConfig(seeds=6, n_test=300, epochs=10, patience=3),
                 "full": DSMTConfig(seeds=10, fractions=(0.125, 0.25),
                                    k_curve=(5, 10, 40), data_seed=2, epochs=60,
                                    patience=12)},
        series=2,
        run=run,
        comparisons=[
            Comparison("dsmt", "supervised", 0.03),
            Comparison("dsmt", "naive-mtl", 0.0, own=False),
            Comparison("dsmt", "random-forest", 0.0, own=False),
            *[Comparison(f"f{f}/dsmt", f"f{f}/{base}", 0.0, own=False, optional=True)
              for f in (25, 50, 100) for base in ("supervised", "naive-mtl")],
            *[Comparison(f"dsmt-k{k}", "supervised", 0.0, own=False, optional=True)
              for k in (5, 10, 40)],
        ],
        plot=plot,
        notes=(
            "Protocol revised on 2026-12-06 (issue 30), after a full run of the old one "
            "(confirmation-1: dsmt - supervised +0.006 [-0.040, +0.053] AUROC, does not hold "
            "against 0.03) and a review against the authors' code: (1) an epoch is as many "
            "steps as labelled training windows in either phase (the authors' train.py), "
            "not ceil(pool / 64); (2) batch normalisation after the Dense layer of every "
            "multitask block and of the head, and the K = 0 network is a highway layer on "
            "the perception output (model_builder.py); naive MTL is their network without "
            "highway blocks; (3) the auxiliary phase stops on its own validation MSE "
            "(patience 12); (5) the simulator gives false alarms movement contamination "
            "(p 0.8, true 0.15) and true alarms respiratory distress (p 0.7), so that "
            "relevant features exist; (6) the test set is simulated from another seed, "
            "sharing no source record with the pool; (7) the claim is the paper's table: "
            "AUROC at 12.5 and 25% of 480 pool windows labelled (full; 50 and 100% on "
            "request). "
            "Settings fixed before any result of the new protocol: batch 16 (the authors "
            "feed one window a step, which their batch normalisation turns into its bias "
            "alone; PyTorch refuses one row, and train_dsmt(batch_norm=False, batch_size=1) "
            "is the option that runs one window a step), RMSprop lr 1e-3, ResNet width 16, "
            "block width 32, 5 burn-in epochs, patience 12 (main and auxiliary) in full, at "
            "most 60 main epochs in full, K = 20, FDR 0.05, 500 trees. The authors' 256 units "
            "and lr 1e-4 against these, on the quick budget (seeds 0-5, measured after the "
            "quick verdict below): supervised 0.961, naive-mtl 0.973, dsmt 0.965, random "
            "forest 0.981; dsmt - supervised +0.004 [-0.020, +0.027], does not hold; 257 s "
            "against 169 s on 2 cores; the full budget keeps 32 units and 1e-3 for its cost "
            "(--set units=256 --set lr=0.0001 runs the authors'). The full budget runs the "
            "fractions 12.5 and 25% on confirmation series 2 (seeds 2000-2009), a series no "
            "run had used, decided before any full run of the new protocol; 50 and 100% "
            "(--set 'fractions=[0.125, 0.25, 0.5, 1.0]') were cut for run time on 2 cores: "
            "an epoch is as many steps as labelled windows, so 50% alone would have cost "
            "about half the run (about 150 s a network). The first full run began with "
            "12.5, 25 and 50%, was stopped before any seed ended, and went on with 12.5 "
            "and 25% from its finished units (the same computations: a unit depends on "
            "its fraction, not on the others). Full verdict of the new protocol (series 2, "
            "2026-12-06, 105 min on 2 cores): does not hold. AUROC at 12.5%: supervised "
            "0.939, naive-mtl 0.962, dsmt 0.958, random forest 0.962; dsmt - supervised "
            "+0.019 [+0.005, +0.032], above zero but short of 0.03; against naive-mtl "
            "-0.004 [-0.017, +0.009]; K = 5, 10, 40 give +0.016, +0.023, +0.012 over "
            "supervised. At 25%: supervised 0.957, naive-mtl 0.976, dsmt 0.977, random "
            "forest 0.979; dsmt - supervised +0.020 [+0.011, +0.029]. Relevant features "
            "(of 236) per seed at 12.5%: 35, 35, 25, 1, 22, 11, 7, 15, 17, 27; at 25%: "
            "37-55. Old protocol, full (series 1): +0.006 [-0.040, +0.053], 0 relevant. "
            "Relevance (the Benjamini-Yekutieli test over 236 features): with 16 labelled "
            "training windows, as in the old headline, no feature can pass whatever the "
            "data (the smallest two-sided Mann-Whitney p-value of 8 against 8 windows, "
            "1.6e-4 exact, is above the test's first threshold, about 3.5e-5); on the new "
            "simulator (before a fix that keeps a detached lead flat) 5 random draws found "
            "0, 0, 0, 13, 15 relevant at 27 labelled, "
            "13-45 at 53, 52-69 at 107 and 73-78 at 213. The extras give the count per run. "
            "Quick budget: the first fraction only (60 labelled of 480), 300 test windows, "
            "6 seeds, at most 12 main epochs and patience 4 at first; development seed 0 "
            "gave supervised 0.964, naive-mtl 0.948, dsmt 0.961, random forest 0.979 "
            "AUROC (15 relevant features; about 70 s of one core), and the quick budget then "
            "became at most 10 epochs and patience 3, for run time only. Quick verdict then "
            "(seeds 0-5, 169 s on 2 cores): dsmt - supervised +0.017 [-0.020, +0.053], "
            "inconclusive (supervised 0.939, naive-mtl 0.965, dsmt 0.956, random forest "
            "0.981; relevant features 15, 13, 7, 20, 0, 29); the old protocol's quick "
            "run: -0.015 [-0.171, +0.141], 0 relevant at every seed. "
            "Old protocol's development history: stride-4 ResNet stem, quick patience 5 / "
            "20 epochs for run time, the simulator's noise bursts fixed (neurokit2 skipped "
            "noise bands above what a short segment holds), and every network given as "
            "many steps per epoch whatever K (the supervised net once took one)."
        ),
    )
)
