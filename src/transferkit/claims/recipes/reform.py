"""Claim ``reform``: an old digits model carried to a new pixel grid by optimal transport
beats training on the few new labels alone.

Ye, Zhan, Jiang, Zhou, ICML 2018 (https://proceedings.mlr.press/v80/ye18c.html).

Per seed, scikit-learn's digits are split in two random halves. Old space: the 8x8 pixels
of the first half, where a logistic regression (scikit-learn, C = 1) is trained. New space:
the *other* half resampled to 7x7 (and, beside the claim, to 10x10: the same rule for the
entropic regularisation at a second resolution), so the old model never saw a new-space
image. Meta-information: pixel-centre coordinates of each grid. k labelled new images per
class (k in 1, 3, 5, 10, 30), the rest of the new half is the test set. Arms per k:

- ``target-only``: logistic regression (C = 1) on the k labels per class;
- ``biased-reg-no-map``: the biased-regularisation refit towards the old weights copied
  feature by feature into the new space without a mapping (zero-padded or truncated);
- ``reform``: :class:`transferkit.heterogeneous.ReForm`, reg "auto" (a rule on the
  meta-information only), lam = 1 (the library default).

No hyperparameter is chosen on test labels: C, lam and the reg rule are fixed a priori.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data import load_digits, resize
from ...heterogeneous import ReForm, fit_biased, grid_coordinates
from ..base import Claim, Comparison, SeedResult, register_claim
from ..plotting import figure

ARMS = ("target-only", "biased-reg-no-map", "reform")


@dataclass(frozen=True)
class ReFormConfig:
    seeds: int = 10
    ks: tuple[int, ...] = (1, 3, 5, 10, 30)
    resolutions: tuple[int, ...] = (7, 10)
    lam: float = 1.0
    C: float = 1.0


def _logreg(X: np.ndarray, y: np.ndarray, C: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=5000).fit(X, y)


def _no_map(old: Any, X: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    d = X.shape[1]
    W = np.zeros((old.coef_.shape[0], d))
    n = min(d, old.coef_.shape[1])
    W[:, :n] = old.coef_[:, :n]
    return fit_biased(X, y, W, old.intercept_.copy(), lam)


def run(cfg: ReFormConfig, seed: int) -> SeedResult:
    digits = load_digits()
    perm = torch.randperm(len(digits), generator=torch.Generator().manual_seed(seed))
    half = len(digits) // 2
    old_dom, new_dom = digits.subset(perm[:half]), digits.subset(perm[half:])
    old = _logreg(old_dom.flat().numpy(), old_dom.labels.numpy(), cfg.C)
    rng = np.random.default_rng([seed, 2018])
    arms: dict[str, float] = {}
    extras: dict[str, Any] = {"reg": {}, "transported": {}}
    for res in cfg.resolutions:
        new = resize(new_dom, res)
        X, y = new.flat().numpy().astype(np.float64), new.labels.numpy()
        order = {c: rng.permutation(np.flatnonzero(y == c)) for c in range(10)}
        for k in cfg.ks:
            idx = np.concatenate([order[c][:k] for c in range(10)])
            test = np.setdiff1d(np.arange(len(y)), idx)
            prefix = "" if res == cfg.resolutions[0] else f"{res}x{res}/"
            tag = f"{prefix}k{k}"
            arms[f"{tag}/target-only"] = float(
                _logreg(X[idx], y[idx], cfg.C).score(X[test], y[test]))
            W, b = _no_map(old, X[idx], y[idx], cfg.lam)
            arms[f"{tag}/biased-reg-no-map"] = float(
                ((X[test] @ W.T + b).argmax(axis=1) == y[test]).mean())
            rf = ReForm(old, grid_coordinates(8, 8), grid_coordinates(res, res), lam=cfg.lam)
            rf.fit(X[idx], y[idx])
            arms[f"{tag}/reform"] = rf.score(X[test], y[test])
            extras["reg"][f"{res}"] = rf.reg_
            extras["transported"][tag] = float((rf.transported_predict(X[test]) == y[test]).mean())
    return SeedResult(arms=arms, extras=extras)


def plot(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Accuracy against k for every arm (mean and 95% interval over seeds), per grid."""
    cfg = result["config"]
    summary = result["summary"]
    paths = []
    for i, res in enumerate(cfg["resolutions"]):
        prefix = "" if i == 0 else f"{res}x{res}/"
        with figure(out_dir, f"reform_{res}x{res}", figsize=(5.5, 3.8)) as (fig, path):
            ax = fig.add_subplot(1, 1, 1)
            for arm in ARMS:
                keys = [f"{prefix}k{k}/{arm}" for k in cfg["ks"]]
                mean = [100 * summary[key]["mean"] for key in keys]
                lo = [100 * summary[key]["ci95"][0] for key in keys]
                hi = [100 * summary[key]["ci95"][1] for key in keys]
                ax.plot(cfg["ks"], mean, marker="o", label=arm)
                ax.fill_between(cfg["ks"], lo, hi, alpha=0.15)
            ax.set_xscale("log")
            ax.set_xticks(cfg["ks"], [str(k) for k in cfg["ks"]])
            ax.set_xlabel("labelled new images per class (k)")
            ax.set_ylabel("new-space test accuracy (%)")
            ax.set_title(f"digits 8x8 -> {res}x{res}: the gap closes as k grows", fontsize=9)
            ax.legend(fontsize=8)
        paths.append(path)
    return paths


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
        budgets={"quick": ReFormConfig(seeds=10), "full": ReFormConfig(seeds=30)},
        run=run,
        comparisons=[
            Comparison("k5/reform", "k5/target-only", 0.05),
            *[Comparison(f"k{k}/reform", f"k{k}/target-only", 0.0, own=False)
              for k in (1, 3, 10, 30)],
            Comparison("k5/reform", "k5/biased-reg-no-map", 0.0, own=False),
            Comparison("10x10/k5/reform", "10x10/k5/target-only", 0.0, own=False),
        ],
        plot=plot,
        notes=(
            "Protocol: quick runs seeds 0..9 (development), full 1000..1029 (confirmation). "
            "Nothing was tuned: C = 1 and lam = 1 are library defaults, and the entropic "
            "regularisation is the 'auto' rule (a quarter of the median cost from a new "
            "pixel to its nearest old pixel, about 7e-4 here), fixed from the issue's "
            "prototype finding that the plan must stay below the squared pixel spacing. "
            "Before the recipe existed, the rule was tried once on one split (k = 5): "
            "7x7 transported model 81.9%, ReForm 91.3%, target-only 85.3%. The extras hold "
            "the transported model's accuracy before any new label (`transported`). "
            "Issue prototype (8x8 -> 7x7, k = 5): target-only 85.4, ReForm 92.3."
        ),
    )
)
