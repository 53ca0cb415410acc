"""The MNIST-5k -> scikit-learn digits domain pair shared by several recipes.

Preprocessing (identical for every arm of every recipe): MNIST-5k is brought to 8x8 the
way UCI made optdigits (binarise, crop to the ink's bounding box, scale to 32x32, count ink
in 4x4 blocks; :func:`transferkit.data.optdigits_style`), so both domains are 8x8 ink
fractions in [0, 1]. At 16x16 the optdigits-style MNIST is not used: MNIST is antialiased
down to 16x16 and the digits are upsampled bilinearly to 16x16.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from ...data import Domain, class_subset, load_digits, load_mnist5k, optdigits_style, resize
from ...nets import SplitNet, create_backbone
from ...train import accuracy, seeded
from ._training import fit_classifier


@lru_cache(maxsize=4)
def digit_pair(resolution: int = 8) -> tuple[Domain, Domain]:
    """(source MNIST-5k, target scikit-learn digits), both at ``resolution`` x ``resolution``."""
    if resolution == 8:
        return optdigits_style(load_mnist5k()), load_digits()
    if resolution == 16:
        return resize(load_mnist5k(), 16), resize(load_digits(), 16)
    raise ValueError(f"resolution must be 8 or 16; got {resolution}")


@dataclass(frozen=True)
class SourceSpec:
    """How the source model is pretrained (part of every recipe's config that uses one)."""

    backbone: str = "mlp"
    hidden: tuple[int, ...] = (256, 256)
    resolution: int = 8
    classes: tuple[int, ...] = tuple(range(10))
    steps: int = 1500
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4


def build_net(spec: SourceSpec, n_classes: int) -> SplitNet:
    """A fresh network of the spec's architecture (not seeded: wrap in ``seeded``)."""
    in_shape = (1, spec.resolution, spec.resolution)
    if spec.backbone == "mlp":
        return create_backbone("mlp", in_shape=in_shape, n_classes=n_classes, hidden=spec.hidden)
    return create_backbone(spec.backbone, in_shape=in_shape, n_classes=n_classes)


def source_domain(spec: SourceSpec) -> Domain:
    source, _ = digit_pair(spec.resolution)
    if tuple(spec.classes) != tuple(range(10)):
        source = class_subset(source, spec.classes)
    return source


@lru_cache(maxsize=8)
def _pretrained_state(spec: SourceSpec, seed: int) -> dict[str, torch.Tensor]:
    source = source_domain(spec)
    with seeded(seed):
        net = build_net(spec, len(spec.classes))
    fit_classifier(net, (source.images, source.labels), steps=spec.steps,
                   batch_size=spec.batch_size, lr=spec.lr, momentum=spec.momentum,
                   weight_decay=spec.weight_decay, seed=seed,
                   desc=f"pretrain source (seed {seed})")
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def pretrained_source(spec: SourceSpec, seed: int) -> SplitNet:
    """The source model pretrained with ``seed`` (trained once per process, then cached).

    Returns a fresh copy each call, so arms cannot disturb one another.
    """
    net = build_net(spec, len(spec.classes))
    net.load_state_dict(_pretrained_state(spec, seed))
    return net


def target_accuracy(model: nn.Module, target: Domain) -> float:
    return accuracy(model, target.images, target.labels)


def targets(classes: Sequence[int] | None, resolution: int) -> Domain:
    """The target domain (scikit-learn digits), optionally a relabelled class subset."""
    _, target = digit_pair(resolution)
    return class_subset(target, classes) if classes is not None else target
