"""Claim ``text-finetune``: fine-tuning a pretrained sentence encoder on a few labelled
texts beats training the same architecture from scratch and a linear probe on its frozen
features; L2-SP against plain L2 in the same setting (reported beside the verdict).

The transfer survey's text case (Ruder 2017, the survey this project implements, treats
text like images: a pretrained network, a small labelled target); the L2-SP penalty is
Li, Grandvalet, Davoine, ICML 2018 (https://arxiv.org/abs/1802.01483), here on text.

Setting: sentence polarity, the Rotten Tomatoes critics' sentences (``fresh`` / ``rotten``,
:func:`transferkit.data.text.load_sentence_polarity`); per seed, ``k`` labelled sentences
per class are drawn (stratified), and a disjoint test set of ``test_size`` sentences. The
encoder is all-MiniLM-L6-v2 (``minilm-l6``, packaged weights, mean pooling, a new linear
head seeded alike for every arm of a seed). Arms:

- ``l2``: fine-tune every layer, penalty ``alpha/2 ||w||^2 + beta/2 ||w_head||^2`` (weight
  decay, the usual fine-tuning);
- ``l2sp``: fine-tune every layer, ``alpha/2 ||w - w0||^2 + beta/2 ||w_head||^2``;
- ``scratch``: the same architecture randomly initialised (transformers' initialisation),
  trained like ``l2``;
- ``linear-probe``: the encoder frozen; its pooled features are computed once (cached, as
  a frozen encoder allows) and a logistic regression (scikit-learn, its default C = 1,
  the same for every seed) is fitted on them.

Every trained arm takes the same optimiser (SGD, momentum 0.9), learning rate, batch size,
number of steps and alpha; none is tuned (the same tuning budget, none, for method and
baselines), and the test sentences are never used to choose anything. ``lr`` = 0.003 and
``alpha`` = 0.01 were set before any run of this claim from one try of the ``finetune``
workflow on 200 other sentences of the same corpus (lr 0.05 collapsed onto one class,
0.01 and 0.003 learned); ``beta`` is the paper's 0.01.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import numpy as np
import torch

from ...data.splits import stratified_indices
from ...data.text import TextTable, load_sentence_polarity
from ...finetune import create_regularizer
from ...nets import create_backbone, replace_head
from ...train import seeded
from ..base import Claim, Comparison, SeedResult, register_claim
from ..units import unit
from ._training import fit_classifier

ARMS = ("l2", "l2sp", "scratch", "linear-probe")


@dataclass(frozen=True)
class TextFinetuneConfig:
    """Budget of the ``text-finetune`` claim (see the module docstring)."""

    seeds: int = 12
    k: int = 16
    test_size: int = 600
    steps: int = 40
    batch_size: int = 16
    lr: float = 0.003
    momentum: float = 0.9
    alpha: float = 0.01
    beta: float = 0.01
    max_length: int = 48
    arms: tuple[str, ...] = ARMS


@lru_cache(maxsize=2)
def _corpus(max_length: int) -> tuple[TextTable, torch.Tensor]:
    """The corpus and its token ids (tokenised once per process)."""
    data = load_sentence_polarity()
    spec = create_backbone("minilm-l6", max_length=max_length).input_spec
    return data, data.with_transform(spec).token_ids


def _split(cfg: TextFinetuneConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    data, _ = _corpus(cfg.max_length)
    train, rest = stratified_indices(data.targets, cfg.k, seed, keep_rest=True,
                                     what="the sentence-polarity corpus")
    order = torch.randperm(len(rest), generator=torch.Generator().manual_seed(10_000 + seed))
    test = rest[order[:cfg.test_size]]
    return np.asarray(train), np.asarray(test)


def _net(cfg: TextFinetuneConfig, seed: int, pretrained: bool) -> Any:
    with seeded(seed + 1):
        net = create_backbone("minilm-l6", pretrained=pretrained, max_length=cfg.max_length)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    with seeded(seed + 2):  # the same new head for every arm of a seed
        replace_head(net, 2)
    return net, start


@torch.no_grad()
def _features(net: Any, ids: torch.Tensor, batch: int = 128) -> torch.Tensor:
    net.eval()
    return torch.cat([net.features(ids[i:i + batch]) for i in range(0, len(ids), batch)])


def _accuracy(net: Any, ids: torch.Tensor, labels: torch.Tensor) -> float:
    logits = net.head(_features(net, ids))
    return float((logits.argmax(1) == labels).double().mean())


def _train_arm(arm: str, cfg: TextFinetuneConfig, seed: int) -> float:
    data, ids = _corpus(cfg.max_length)
    train, test = _split(cfg, seed)
    y = data.targets
    net, start = _net(cfg, seed, pretrained=arm != "scratch")
    if arm == "linear-probe":
        from sklearn.linear_model import LogisticRegression

        f_train = _features(net, ids[train]).numpy()
        probe = LogisticRegression(max_iter=1000).fit(f_train, y[train].numpy())
        return float(probe.score(_features(net, ids[test]).numpy(), y[test].numpy()))
    penalty = "l2sp" if arm == "l2sp" else "l2"
    kw: dict[str, Any] = {"model": net, "new": ["head"], "alpha": cfg.alpha, "beta": cfg.beta}
    if penalty == "l2sp":
        kw["source"] = start
    reg = create_regularizer(penalty, **kw)
    net.train()
    fit_classifier(net, (ids[train], y[train]), steps=cfg.steps, batch_size=cfg.batch_size,
                   lr=cfg.lr, momentum=cfg.momentum, weight_decay=0.0, seed=seed,
                   regularizer=reg, desc=f"text-finetune {arm}")
    return _accuracy(net, ids[test], y[test])


def run(cfg: TextFinetuneConfig, seed: int) -> SeedResult:
    torch.manual_seed(seed)
    arms = {arm: unit(arm, partial(_train_arm, arm, cfg, seed)) for arm in cfg.arms}
    return SeedResult(arms=arms, extras={"k": cfg.k, "test_size": cfg.test_size})


CLAIM = register_claim(
    Claim(
        name="text-finetune",
        paper="Li, Grandvalet, Davoine. Explicit Inductive Bias for Transfer Learning with "
        "Convolutional Networks. ICML 2018, https://arxiv.org/abs/1802.01483; encoder: "
        "Wang et al., MiniLM, NeurIPS 2020 (all-MiniLM-L6-v2, Reimers & Gurevych)",
        statement="Fine-tuning a pretrained sentence encoder on 16 labelled sentences per "
        "class beats the same architecture trained from scratch (by 0.05) and a linear probe "
        "on its frozen features (by 0.01) at sentence polarity",
        metric="target_accuracy",
        higher_is_better=True,
        bounds=(0.0, 1.0),
        budgets={
            "quick": TextFinetuneConfig(seeds=6, test_size=200, steps=20, batch_size=8,
                                        max_length=32),
            "full": TextFinetuneConfig(),
        },
        run=run,
        comparisons=[
            Comparison("l2", "scratch", 0.05),
            Comparison("l2", "linear-probe", 0.01),
            Comparison("l2sp", "l2", 0.005, own=False),
        ],
        notes=(
            "The linear probe is scikit-learn's logistic regression at its default C on the "
            "frozen encoder's mean-pooled features (cached); the trained arms share lr 0.003, "
            "alpha 0.01, beta 0.01, batch 16 and the step count, set before any run of this "
            "claim. Quick budget: 6 seeds, 20 steps of 8 sentences cut at 32 tokens, 200 test "
            "sentences (about 80 s on 2 cores); full: 12 seeds, 40 steps of 16 sentences cut "
            "at 48 tokens, 600 test sentences (series 1). The quick budget was first 30 steps "
            "of 16 at 64 tokens and 400 test sentences: 259 s on 2 cores, too slow for the "
            "main job, so it was cut for run time only (its result, inconclusive: l2 vs "
            "scratch +0.067 [+0.012, +0.121], l2 vs linear-probe +0.001 [-0.029, +0.031]; "
            "l2sp vs l2 +0.0004 [-0.0016, +0.0024]). The full budget was set before any run. "
            "Fine-tuning a 22M-parameter encoder costs about a second a step of 16 sentences "
            "on one CPU core, which is what bounds these budgets. Full verdict "
            "(2026-12-07, series 1, 12 seeds): does not hold. Fine-tuning beats the "
            "same architecture from scratch by +0.098 [+0.054, +0.142] (holds: 0.624 against "
            "0.527), but not the linear probe: -0.011 [-0.033, +0.012] (0.624 against 0.635; "
            "shown to fall short of +0.01). L2-SP against L2: +0.0003 [-0.0011, +0.0017] "
            "(40 steps at lr 0.003 move the weights too little for the two pulls to differ)."
        ),
    )
)
