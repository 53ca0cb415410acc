"""Claim ``text-multitask``: the survey's own multi-task example, a sentence's class and its
named entities learned by one network, balanced by GradNorm (Chen et al., ICML 2018,
https://arxiv.org/abs/1711.02257), against each task learned alone and against equal
weights.

Data: Rotten Tomatoes critics' sentences (:func:`transferkit.data.text.load_sentence_polarity`)
with two targets each: the sentence's polarity (``fresh`` / ``rotten``) and **silver**
entity tags (BIO over PER, ORG, LOC, MISC) from spaCy's small English pipeline
(:func:`transferkit.data.text.silver_entity_tags`; a model's tags, not gold). Per seed,
``n_train`` sentences train and ``test_size`` others test, drawn at random.

Networks (:func:`transferkit.multitask.text_multitask`): the pretrained MiniLM
(``minilm-l6``) shared by a sentence head (mean pooling, linear) and a token head
(linear per token). Arms, every one trained with the same SGD (momentum 0.9), learning
rate, batch size and number of steps: ``single/polarity`` and ``single/entities`` (one
task each, the same architecture with one head), ``equal`` (both tasks, the sum of the
losses) and ``gradnorm`` (both tasks, GradNorm with the paper's NYUv2 asymmetry alpha =
1.5, Adam at 0.025 on the weights, the last shared layer = the last transformer layer's
output projection). The learning rate 0.01 is the ``multitask`` workflow's default, set
before this claim from a toy table (not from these sentences); nothing is tuned on test.

Metric: Delta_m% (as in the ``gradnorm`` claim): the mean over the two tasks of the
relative change of the test metric against the single-task network of the same seed,
polarity accuracy and the micro F1 of the entity tags (tokens other than ``O``). A
single-task F1 below 0.05 (the tagger learned nothing) makes Delta_m meaningless: such a
seed's ratio uses 0.05 as its denominator, and the extras count those seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import torch

from ...data.tasks import MultitaskTable, TaskColumn
from ...data.text import ENTITY_TAGS, load_sentence_polarity, silver_entity_tags
from ...multitask import TaskHead, create_weighting, multitask_step, text_multitask
from ...multitask.text import entity_f1, tag_counts
from ...nets import create_backbone
from ...train import Phase, Stream, Trainer, seeded
from ..base import Bound, Claim, Comparison, SeedResult, register_claim
from ..units import unit

TASKS = (TaskColumn("polarity", "class", "label"), TaskColumn("entities", "tags", "ner"))
FLOOR = 0.05  # the smallest single-task metric Delta_m divides by


@dataclass(frozen=True)
class TextMultitaskConfig:
    """Budget of the ``text-multitask`` claim (see the module docstring)."""

    seeds: int = 12
    n_train: int = 256
    test_size: int = 500
    steps: int = 64
    batch_size: int = 16
    lr: float = 0.01
    momentum: float = 0.9
    alpha: float = 1.5
    weighting_lr: float = 0.025
    max_length: int = 48


@lru_cache(maxsize=2)
def _table(cfg: TextMultitaskConfig, seed: int) -> tuple[MultitaskTable, int]:
    """The seed's train and test sentences (train first) with both targets."""
    data = load_sentence_polarity()
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(7919 * seed + 5))
    rows = order[:cfg.n_train + cfg.test_size].tolist()
    texts, tags = silver_entity_tags([data.texts[i] for i in rows])
    labels = [data.classes[int(data.targets[i])] for i in rows]
    table = MultitaskTable("sentence polarity + silver entities", TASKS, texts, None,
                           {"polarity": labels, "entities": tags},
                           {"polarity": list(data.classes), "entities": list(ENTITY_TAGS)})
    return table, cfg.n_train


def _train(cfg: TextMultitaskConfig, seed: int, tasks: tuple[str, ...], arm: str
           ) -> dict[str, float]:
    table, n = _table(cfg, seed)
    with seeded(seed + 1):
        net = create_backbone("minilm-l6", max_length=cfg.max_length)
    x, ys = table.encode(net.input_spec)
    with seeded(seed + 2):  # the same heads for every arm of a seed
        model = text_multitask(net, {t.name: TaskHead(t.kind, len(table.vocab[t.name]))
                                     for t in TASKS if t.name in tasks})
    names = list(model.tasks)
    kw: dict[str, Any] = {}
    if arm == "gradnorm":
        kw = {"alpha": cfg.alpha, "lr": cfg.weighting_lr, "shared": model.shared_parameters()}
    strategy = create_weighting(arm, tasks=names, **kw)
    stream = Stream(x[:n], *(ys[t][:n] for t in names), batch_size=cfg.batch_size, seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    phase = Phase(multitask_step(), opt, {"train": stream}, combiner=strategy)
    Trainer(model, phase, cfg.steps, seed=seed, log_losses_every=0,
            desc=f"text-multitask {arm}").fit()
    model.eval()
    out: dict[str, float] = {}
    with torch.no_grad():
        parts = [model(x[i:i + 64]) for i in range(n, len(x), 64)]
    if "polarity" in names:
        pred = torch.cat([p["polarity"] for p in parts]).argmax(1)
        out["polarity"] = float((pred == ys["polarity"][n:]).double().mean())
    if "entities" in names:
        gold = ys["entities"][n:]
        preds, golds = [], []
        for k, p in enumerate(parts):
            tags = p["entities"].argmax(-1)
            preds.append(tags.flatten())
            golds.append(gold[64 * k:64 * k + len(tags), :tags.shape[1]].flatten())
        out["entities"] = entity_f1(tag_counts(torch.cat(preds), torch.cat(golds)), empty=0.0)
    return out


def delta_m(multi: dict[str, float], single: dict[str, float]) -> float:
    """Delta_m% = 100/T sum_k (M_k - S_k) / max(S_k, FLOOR) (both metrics: higher is
    better)."""
    return 100.0 * sum((multi[t] - s) / max(s, FLOOR) for t, s in single.items()) / len(single)


def run(cfg: TextMultitaskConfig, seed: int) -> SeedResult:
    single = {t.name: unit(f"single/{t.name}",
                           partial(_train, cfg, seed, (t.name,), "equal"))[t.name]
              for t in TASKS}
    both = tuple(t.name for t in TASKS)
    per_arm = {arm: unit(arm, partial(_train, cfg, seed, both, arm))
               for arm in ("equal", "gradnorm")}
    arms = {arm: delta_m(m, single) for arm, m in per_arm.items()}
    return SeedResult(arms=arms, extras={"test_metrics": {"single": single, **per_arm},
                                         "floored": [t for t, s in single.items()
                                                     if s < FLOOR]})


CLAIM = register_claim(
    Claim(
        name="text-multitask",
        paper="Chen, Badrinarayanan, Lee, Rabinovich. GradNorm: Gradient Normalization for "
        "Adaptive Loss Balancing in Deep Multitask Networks. ICML 2018, "
        "https://arxiv.org/abs/1711.02257; the example is Ruder's survey's (sentiment and "
        "entities in one network)",
        statement="One MiniLM trained with GradNorm for a sentence's polarity and its "
        "(silver) entity tags beats each task trained alone (Delta_m% > 0) and equal "
        "weighting (by 0.5 points of Delta_m%)",
        metric="delta_m_percent",
        higher_is_better=True,
        budgets={
            "quick": TextMultitaskConfig(seeds=6, n_train=64, test_size=100, steps=10,
                                         batch_size=8, max_length=24),
            "full": TextMultitaskConfig(),
        },
        run=run,
        comparisons=[
            Bound("gradnorm", 0.0, above=True),
            Comparison("gradnorm", "equal", 0.5),
            Bound("equal", 0.0, above=True, own=False),
        ],
        notes=(
            "Entity tags are silver (spaCy en_core_web_sm, PER/ORG/LOC/MISC in BIO): the "
            "claim is about learning two tasks in one network, not about entity recognition "
            "against gold. Quick budget: 6 seeds, 64 training and 100 test sentences, 10 "
            "steps of 8 sentences cut at 24 tokens (about a minute on 2 cores); full: 12 "
            "seeds, 256 and 500 sentences, 64 steps of 16 at 48 tokens (series 1), set before "
            "any run. At the quick budget the tagger learns nothing (entity F1 0 in every arm "
            "and seed, counted under `floored` in the extras): a quick verdict speaks of "
            "polarity alone and means little; verdicts come from --full. The quick budget was "
            "first 96/150 sentences and 16 steps (144 s; does not hold, gradnorm > 0 -11.2 "
            "[-19.5, -2.9], gradnorm vs equal -0.36 [-1.08, +0.35], entity F1 0 everywhere); "
            "it was cut for run time only. One development seed (0) at the full budget's "
            "settings, run to see whether the tagger learns at all there: single-task "
            "entity F1 0.227, polarity 0.662; equal 0.0 / 0.560; GradNorm 0.0 / 0.596. "
            "Full verdict (2026-12-07, series 1, 12 seeds): does not hold. GradNorm's "
            "Delta_m% is -57.2 [-62.6, -51.9] against the single-task networks and -26.1 "
            "[-42.4, -9.8] against equal weighting (equal itself -31.2). Mean test metrics: "
            "single polarity 0.665, entity F1 0.271; equal 0.604, 0.130; GradNorm 0.551, "
            "0.006. The token loss falls fast by predicting O (most tokens), so GradNorm, "
            "which lowers the weight of the task whose loss has fallen furthest, starves the "
            "tagger before it learns any entity; the shared encoder also costs polarity "
            "accuracy at this budget (64 steps)."
        ),
    )
)
