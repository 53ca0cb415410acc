"""The black box shared by the three label-shift claims (``bbse-*``), trained once per seed.

MNIST-5k brought to 14x14 (antialiased resize), split per seed into 200 training images per
class and a pool of the other 300 per class. An MLP 196-128-10 is trained on the 2,000
training images with the shared loop; its probabilities on the pool are the black box's
outputs. The pool's empirical distribution serves as the population that holdouts and
targets are drawn from (with replacement), so p(x | y) is the same in source and target.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ...data import load_mnist5k, resize, stratified_split
from ...nets import MLP
from ...train import predict_logits, seeded
from ._training import fit_classifier

PAPER = (
    "Lipton, Wang, Smola. Detecting and Correcting for Label Shift with Black Box "
    "Predictors. ICML 2018. https://proceedings.mlr.press/v80/lipton18a.html"
)

@dataclass(frozen=True)
class BlackBoxSpec:
    """How the shared black box is trained (identical for every arm of the three claims)."""

    resolution: int = 14
    n_train_per_class: int = 200
    hidden: tuple[int, ...] = (128,)
    steps: int = 600
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4


@dataclass(frozen=True)
class BlackBox:
    """Flattened inputs, labels and the model's probabilities on the pool, plus the train set."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    pool_x: torch.Tensor
    pool_y: np.ndarray
    pool_proba: np.ndarray


def train_mlp(
    spec: BlackBoxSpec, x: torch.Tensor, y: torch.Tensor, seed: int,
    weights: torch.Tensor | None = None,
) -> torch.nn.Module:
    """The shared loop on (x, y[, per-example weights]); initialisation seeded by ``seed``."""
    with seeded(seed):
        net = MLP((1, spec.resolution, spec.resolution), 10, hidden=spec.hidden)
    tensors = (x, y) if weights is None else (x, y, weights)
    return fit_classifier(net, tensors, steps=spec.steps, batch_size=spec.batch_size,
                          lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
                          seed=seed, desc="black box")


def proba(net: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Softmax probabilities as float64 numpy (rows sum to one)."""
    p = torch.softmax(predict_logits(net, x).double(), dim=1).numpy()
    return np.asarray(p / p.sum(axis=1, keepdims=True))


@lru_cache(maxsize=4)
def black_box(spec: BlackBoxSpec, seed: int) -> BlackBox:
    """Train the black box of ``seed`` once per process (cached)."""
    domain = resize(load_mnist5k(), spec.resolution)
    train, pool = stratified_split(domain, spec.n_train_per_class, seed=seed)
    net = train_mlp(spec, train.images, train.labels, seed)
    return BlackBox(train.images, train.labels, pool.images, pool.labels.numpy(),
                    proba(net, pool.images))
