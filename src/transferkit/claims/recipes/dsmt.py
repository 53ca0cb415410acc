"""Claim ``dsmt``: with few labelled alarms, a DSMT-Net's automatically selected auxiliary
tasks on unlabelled windows beat the same network trained on the labels alone.

Schwab et al., "Not to Cry Wolf: Distantly Supervised Multitask Learning in Critical
Care", ICML 2018 (arXiv 1802.05027). The authors' ICU data are not public (their code
runs on the Daphnet gait data); here the windows come from
:func:`transferkit.data.simulate_alarms` (neurokit2 signals: ECG, pleth, respiration,
SpO2; true alarms from real events, false alarms from artifacts; missing segments).

Data: one simulated data set per budget (``data_seed``; quick and full use different
ones, so the full verdict is made on windows development never saw): a training part of
``n_unlabelled + max(n_labelled)`` windows and a fixed test set of ``n_test``. Per seed
and per number of labels n, n labelled windows are drawn at random from the training
part (at least two of each class); a third of them (at least one of each class) is the
validation set (early stopping, the threshold); the others are the labelled training
windows; every other training window is unlabelled (>= ``n_unlabelled``).

Auxiliary tasks (:mod:`transferkit.multitask.auxiliary`): tsfresh's "lean" bank on every
channel, the relevance test (Benjamini-Yekutieli, FDR 0.05) on the labelled training
windows only, K chosen at random (padded when fewer are relevant), standardised on the
labelled + unlabelled training windows.

Arms (AUROC on the test set): ``supervised`` (the DSMT-Net with K = 0, labelled windows
only), ``naive-mtl`` (all K auxiliary targets on one shared layer), ``dsmt`` (K
multitask blocks), ``random-forest`` (scikit-learn, 500 trees, on the feature bank of the
labelled windows), and ``dsmt-k<K>`` for the curve of AUROC against K (at the first
label count only). Every network has
the same perception blocks, optimiser (RMSprop), schedule and early stopping.
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
    n_labelled: tuple[int, ...] = (25,)
    n_unlabelled: int = 2000
    n_test: int = 500
    k: int = 20
    k_curve: tuple[int, ...] = ()
    data_seed: int = 0
    epochs: int = 20
    burn_in: int = 5
    patience: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    width: int = 16
    units: int = 32
    trees: int = 500
    fdr_level: float = 0.05


@lru_cache(maxsize=2)
def _data(cfg_key: tuple[int, int, int]) -> tuple[Windows, FeatureBank, FeatureBank]:
    """(all windows, bank of the training part, bank of the test set), once per process."""
    n_train, n_test, data_seed = cfg_key
    windows = simulate_alarms(n_train + n_test, seed=data_seed)
    train_bank = feature_bank(windows.X[:n_train], windows.channels)
    test_bank = feature_bank(windows.X[n_train:], windows.channels, impute_from=train_bank)
    return windows, train_bank, test_bank


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


def _arm(cfg: DSMTConfig, seed: int, n: int, arm: str) -> dict[str, Any]:
    n_train = cfg.n_unlabelled + max(cfg.n_labelled)
    windows, train_bank, test_bank = _data((n_train, cfg.n_test, cfg.data_seed))
    y_all = windows.y[:n_train]
    rng = np.random.default_rng([seed, 2018, n])
    lab, val = _split(y_all, n, rng)
    pool = np.setdiff1d(np.arange(n_train), val)  # labelled-train + unlabelled
    test = np.arange(n_train, n_train + cfg.n_test)
    y_test = windows.y[test]
    if arm == "random-forest":
        from sklearn.ensemble import RandomForestClassifier

        both = np.concatenate([lab, val])
        rf = RandomForestClassifier(cfg.trees, random_state=seed, n_jobs=1)
        rf.fit(train_bank.values[both], y_all[both])
        return {"auroc": _auroc(y_test, rf.predict_proba(test_bank.values)[:, 1])}
    k = 0 if arm == "supervised" else (int(arm.split("-k")[1]) if "-k" in arm else cfg.k)
    train = windows.subset(pool).with_labels_of(np.isin(pool, lab))  # the others hidden
    with warnings.catch_warnings():  # padding is expected at these label counts: the
        warnings.simplefilter("ignore", UserWarning)  # extras record how many were relevant
        model = train_dsmt(train, windows.subset(val), k,
                           aux_mode="shared" if arm == "naive-mtl" else "blocks",
                           bank=train_bank.rows(pool), fdr_level=cfg.fdr_level,
                           width=cfg.width, units=cfg.units, epochs=cfg.epochs,
                           burn_in=cfg.burn_in, patience=cfg.patience,
                           batch_size=cfg.batch_size, lr=cfg.lr, seed=seed,
                           checkpoint=unit_checkpoint(f"n{n}/{arm}"))
    p = model.predict_proba(windows.subset(test))
    pred = p >= model.threshold
    res = model.result
    info: dict[str, Any] = {}
    if model.tasks is not None:
        info = {"relevant": model.tasks.relevant, "relevant_total": model.tasks.n_relevant_total,
                "tasks": model.tasks.names}
    return {"auroc": _auroc(y_test, p), "epochs": res.epochs, "best_epoch": res.best_epoch,
            "threshold": model.threshold,
            "sensitivity": float(pred[y_test == 1].mean()),
            "specificity": float(1 - pred[y_test == 0].mean()), **info}


def _arms(cfg: DSMTConfig, n: int) -> list[str]:
    """Every arm at the first label count; the curve over K only there (for its cost)."""
    curve = [f"dsmt-k{k}" for k in cfg.k_curve if k != cfg.k] if n == cfg.n_labelled[0] else []
    return ["supervised", "naive-mtl", "dsmt", "random-forest", *curve]


def run(cfg: DSMTConfig, seed: int) -> SeedResult:
    arms: dict[str, float] = {}
    extras: dict[str, Any] = {}
    for n in cfg.n_labelled:
        prefix = "" if n == cfg.n_labelled[0] else f"n{n}/"
        for arm in _arms(cfg, n):
            out = unit(f"n{n}/{arm}", partial(_arm, cfg, seed, n, arm))
            arms[f"{prefix}{arm}"] = out["auroc"]
            extras[f"{prefix}{arm}"] = {k: v for k, v in out.items() if k != "auroc"}
    return SeedResult(arms=arms, extras=extras)


def plot(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """AUROC against the number of auxiliary tasks K (0 = supervised), per label count."""
    cfg = result["config"]
    summary = result["summary"]
    with figure(out_dir, "dsmt_auroc_vs_k", figsize=(5.5, 3.8)) as (fig, path):
        ax = fig.add_subplot(1, 1, 1)
        for j, n in enumerate(cfg["n_labelled"]):
            prefix = "" if n == cfg["n_labelled"][0] else f"n{n}/"
            ks = sorted({0, cfg["k"], *cfg["k_curve"]})
            keys = [f"{prefix}supervised" if k == 0 else
                    (f"{prefix}dsmt" if k == cfg["k"] else f"{prefix}dsmt-k{k}") for k in ks]
            pts = [(k, summary[key]) for k, key in zip(ks, keys, strict=True) if key in summary]
            ax.errorbar([k for k, _ in pts], [s["mean"] for _, s in pts],
                        yerr=[[s["mean"] - s["ci95"][0] for _, s in pts],
                              [s["ci95"][1] - s["mean"] for _, s in pts]],
                        marker="o", capsize=3, color=f"C{j}", label=f"{n} labelled")
            for arm, style in (("naive-mtl", "--"), ("random-forest", ":")):
                if f"{prefix}{arm}" in summary:
                    ax.axhline(summary[f"{prefix}{arm}"]["mean"], ls=style, color=f"C{j}",
                               lw=0.9, label=f"{arm} ({n})")
        ax.set_xlabel("auxiliary tasks K (0: supervised)")
        ax.set_ylabel("test AUROC (95% CI over seeds)")
        ax.legend(fontsize=7)
    return [path, _plot_examples(cfg, out_dir)]


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
        statement=("With 25 labelled alarm windows and 2,000 unlabelled ones, a DSMT-Net with "
                   "K = 20 automatically selected auxiliary tasks beats the same network "
                   "trained on the labels alone by at least 0.03 AUROC"),
        metric="test_auroc",
        higher_is_better=True,
        budgets={"quick": DSMTConfig(seeds=6, n_unlabelled=400, n_test=300),
                 "full": DSMTConfig(seeds=10, n_labelled=(25, 12, 50), k_curve=(5, 10, 40),
                                    data_seed=1, epochs=60, patience=12)},
        run=run,
        comparisons=[
            Comparison("dsmt", "supervised", 0.03),
            Comparison("dsmt", "naive-mtl", 0.0, own=False),
            Comparison("dsmt", "random-forest", 0.0, own=False),
            Comparison("n12/dsmt", "n12/supervised", 0.0, own=False, optional=True),
            Comparison("n50/dsmt", "n50/supervised", 0.0, own=False, optional=True),
            *[Comparison(f"dsmt-k{k}", "supervised", 0.0, own=False, optional=True)
              for k in (5, 10, 40)],
        ],
        plot=plot,
        notes=(
            "Quick budget (2026-12-06): 6 seeds, 400 unlabelled and 300 test windows (seeds "
            "0..5), so that a quick verdict can say something (at least 5 seeds; a sixth costs no "
            "wall time on 2 cores). Changed after the earlier quick verdict was seen, for run "
            "time and seeds only: the old budget (2 seeds, 2,000 unlabelled and 500 test windows; "
            "about 63 s a seed), re-judged with three outcomes, gave inconclusive at 2 seeds "
            "(dsmt vs supervised -0.000 [-0.734, +0.733]); the new one gives inconclusive at 6 "
            "seeds (dsmt vs supervised +0.012 [-0.148, +0.172]). The full budget is unchanged. "
            "Settings fixed before any result: RMSprop lr 1e-3 (the paper's 1e-4 is for "
            "far longer runs than a CPU budget allows), batch 64, ResNet width 16, block "
            "width 32 (the paper's 256 is for its larger data), 5 burn-in epochs, patience "
            "12 (the authors') in full and 5 in quick, at most 60 (full) or 20 (quick) "
            "main epochs, an epoch being "
            "ceil(pool / batch) steps of either phase. The random forest sees the labelled "
            "validation windows too (it needs no early stopping). "
            "Development (seed 0, n = 25): with a stride-2 ResNet stem, patience 12 and at "
            "most 40 epochs: random forest 0.878, supervised 0.621, naive-mtl 0.839, dsmt "
            "0.730 AUROC; the stem stride became 4 and the quick budget patience 5 / 20 "
            "epochs for run time only (seed 0 then: 0.878, 0.677, 0.725, 0.732). The "
            "simulator's noise bursts were then found empty (neurokit2 skipped noise "
            "bands above what a short segment holds, silently) and fixed; quick seeds 0 "
            "and 1 after the fix: random forest 0.901/0.833, supervised 0.738/0.500, "
            "naive-mtl 0.775/0.794, dsmt 0.873/0.718. Reading the code then showed that "
            "the supervised network took one step per epoch (an epoch was counted over "
            "its 17 labelled windows, not over the training set as for the others); with "
            "ceil(training windows / batch) steps per epoch for every network: supervised "
            "0.822/0.780 (the other arms unchanged). At 16 "
            "labelled training windows the Benjamini-Yekutieli test finds no relevant "
            "feature, so the K auxiliary tasks are padded with random features (the "
            "authors' rule; a warning says so); the extras record how many were relevant."
        ),
    )
)
