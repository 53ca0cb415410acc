"""Claim ``text-adapt``: unsupervised domain adaptation of a pretrained sentence encoder
from movie reviews to airline tweets beats training on the reviews alone.

DANN (Ganin et al., JMLR 2016, https://jmlr.org/papers/v17/15-239.html), the adversarial
alignment MSTN (Xie et al., ICML 2018) builds on, on text: source = Rotten Tomatoes
critics' sentences (:func:`transferkit.data.text.load_sentence_polarity`, fresh / rotten),
target = airline tweets (:func:`transferkit.data.text.load_airline_tweets`, positive /
negative under the same names), the pair DATA.md names. Per seed: ``n_source`` labelled
sentences, ``n_target`` unlabelled tweets to adapt on, and a disjoint test set of
``test_per_class`` tweets of each class (class-balanced, so chance is 0.5 although
negative tweets outnumber positive ones four to one).

Every arm is the pretrained MiniLM (``minilm-l6``, a new head seeded alike) trained for
the same steps with the same SGD (momentum 0.9), learning rate and batch size; no arm is
selected or tuned on target labels (the last step is kept):

- ``source-only``: cross-entropy on the source sentences;
- ``dann``: plus the domain classifier through gradient reversal on source and target
  features (the registered ``dann`` objective, its discriminator and schedule), weight 1;
- ``mmd`` (reported beside the verdict): plus the Gaussian-kernel MMD of the features.

``lr`` = 0.003 and the batch are those of ``text-finetune``, set before any run of this
claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import torch

from ...adaptation import AdaptationModel, adaptation_step, create_adaptation
from ...data.text import load_airline_tweets, load_sentence_polarity
from ...nets import create_backbone, replace_head
from ...train import Stream, fit, seeded
from ..base import Claim, Comparison, SeedResult, register_claim
from ..units import unit

ARMS = ("source-only", "dann", "mmd")


@dataclass(frozen=True)
class TextAdaptConfig:
    """Budget of the ``text-adapt`` claim (see the module docstring)."""

    seeds: int = 12
    n_source: int = 512
    n_target: int = 512
    test_per_class: int = 250
    steps: int = 48
    batch_size: int = 16
    lr: float = 0.003
    momentum: float = 0.9
    weight: float = 1.0
    max_length: int = 48
    arms: tuple[str, ...] = ARMS


@lru_cache(maxsize=2)
def _domains(max_length: int) -> tuple[Any, torch.Tensor, Any, torch.Tensor]:
    spec = create_backbone("minilm-l6", max_length=max_length).input_spec
    source, target = load_sentence_polarity(), load_airline_tweets()
    return (source, source.with_transform(spec).token_ids,
            target, target.with_transform(spec).token_ids)


def _draw(cfg: TextAdaptConfig, seed: int) -> dict[str, torch.Tensor]:
    source, _, target, _ = _domains(cfg.max_length)
    g = torch.Generator().manual_seed(7919 * seed + 11)
    src = torch.randperm(len(source), generator=g)[:cfg.n_source]
    yt = target.targets
    test = torch.cat([torch.nonzero(yt == c).flatten()[
        torch.randperm(int((yt == c).sum()), generator=g)[:cfg.test_per_class]]
        for c in (0, 1)])
    rest = torch.ones(len(target), dtype=torch.bool)
    rest[test] = False
    pool = torch.nonzero(rest).flatten()
    tgt = pool[torch.randperm(len(pool), generator=g)[:cfg.n_target]]
    return {"source": src, "target": tgt, "test": test}


def _train_arm(arm: str, cfg: TextAdaptConfig, seed: int) -> float:
    source, xs_all, target, xt_all = _domains(cfg.max_length)
    idx = _draw(cfg, seed)
    with seeded(seed + 1):
        net = create_backbone("minilm-l6", max_length=cfg.max_length)
    with seeded(seed + 2):
        replace_head(net, 2)
        objective = None if arm == "source-only" else create_adaptation(
            arm, in_features=net.feature_dim, n_classes=2)
    model = AdaptationModel(net, objective)
    streams = {"source": Stream(xs_all[idx["source"]], source.targets[idx["source"]],
                                batch_size=cfg.batch_size, seed=seed)}
    if objective is not None:
        streams["target"] = Stream(xt_all[idx["target"]], batch_size=cfg.batch_size,
                                   seed=seed + 1)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    fit(model, adaptation_step(weight=cfg.weight), streams, opt, cfg.steps, seed=seed,
        desc=f"text-adapt {arm}", log_losses_every=0)
    model.eval()
    x, y = xt_all[idx["test"]], target.targets[idx["test"]]
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 64]).argmax(1) for i in range(0, len(x), 64)])
    return float((pred == y).double().mean())


def run(cfg: TextAdaptConfig, seed: int) -> SeedResult:
    arms = {arm: unit(arm, partial(_train_arm, arm, cfg, seed)) for arm in cfg.arms}
    return SeedResult(arms=arms)


CLAIM = register_claim(
    Claim(
        name="text-adapt",
        paper="Ganin et al. Domain-Adversarial Training of Neural Networks. JMLR 2016, "
        "https://jmlr.org/papers/v17/15-239.html (the adversarial alignment of Xie et al., "
        "ICML 2018)",
        statement="Adapting a pretrained sentence encoder from movie-review sentences to "
        "unlabelled airline tweets with DANN beats training on the reviews alone by 0.02 "
        "in class-balanced tweet accuracy",
        metric="target_accuracy",
        higher_is_better=True,
        bounds=(0.0, 1.0),
        budgets={
            "quick": TextAdaptConfig(seeds=6, n_source=128, n_target=128, test_per_class=60,
                                     steps=10, batch_size=8, max_length=32,
                                     arms=("source-only", "dann")),
            "full": TextAdaptConfig(),
        },
        run=run,
        comparisons=[
            Comparison("dann", "source-only", 0.02),
            Comparison("mmd", "source-only", 0.0, own=False, optional=True),
        ],
        notes=(
            "Quick budget: 6 seeds, 128 source sentences and 128 target tweets, 10 steps of "
            "8 at 32 tokens, 60 test tweets per class, source-only and DANN only (about a "
            "minute on 2 cores; too few steps for adaptation to show, a smoke check); full: "
            "12 seeds, 512 / 512, 48 steps of 16 at 48 tokens, 250 test tweets per class, "
            "with MMD beside (series 1). Both set before any run of this claim. Full "
            "verdict (2026-12-07, series 1, 12 seeds): does not hold. DANN -0.024 [-0.059, "
            "+0.011] against source-only (0.735 against 0.759 balanced tweet accuracy); MMD "
            "at weight 1 collapsed onto one class on every seed (exactly 0.5): the kernel "
            "term pulls the pooled features of both domains to one point faster than 48 "
            "steps of cross-entropy can separate the classes."
        ),
    )
)
