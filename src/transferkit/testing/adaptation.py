"""Property check for domain-adaptation objectives (run over every registered one).

:func:`check_adaptation_objective` verifies the contract of
:mod:`transferkit.adaptation`'s objectives on synthetic class-structured features:

1. about 0 when source and target features are equal;
2. positive under a domain shift (target features scaled and moved);
3. the gradient of the loss reaches both feature sets (finite and not all zero).

Objectives with parameters (adversarial ones) first have those parameters trained for
``fit_steps`` Adam steps by descending on the returned loss, with the features fixed (the
reversal makes that train the discriminator); each case starts from a fresh copy of the
objective, so the caller's object and its buffers are left untouched.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import torch
from torch import Tensor

from ..adaptation.objectives import AdaptationObjective, adaptation_loss, create_adaptation

__all__ = ["AdaptationCheck", "check_adaptation_objective"]


class AdaptationCheck(NamedTuple):
    """Values found by :func:`check_adaptation_objective`.

    Examples
    --------
    >>> check = check_adaptation_objective("coral")
    >>> check.equal < 1e-6 < check.shifted, check.source_grad_norm > 0
    (True, True)
    """

    equal: float
    shifted: float
    source_grad_norm: float
    target_grad_norm: float


def _synthetic(
    n: int, d: int, n_classes: int, gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    means = 3.0 * torch.randn(n_classes, d, generator=gen, dtype=torch.float64)
    labels = torch.arange(n) % n_classes
    feats = means[labels] + torch.randn(n, d, generator=gen, dtype=torch.float64)
    logits = 5.0 * torch.nn.functional.one_hot(labels, n_classes).to(torch.float64)
    return feats, labels, logits


def _value(
    objective: AdaptationObjective,
    source: Tensor,
    target: Tensor,
    labels: Tensor,
    logits: Tensor,
    fit_steps: int,
    lr: float,
) -> tuple[AdaptationObjective, Tensor]:
    obj = copy.deepcopy(objective).double().train()
    params = [p for p in obj.parameters() if p.requires_grad]
    if params and fit_steps > 0:
        opt = torch.optim.Adam(params, lr=lr)
        for _ in range(fit_steps):
            opt.zero_grad()
            out = obj(source.detach(), target.detach(), labels, logits, coeff=1.0)
            adaptation_loss(out).backward()
            opt.step()
    return obj, adaptation_loss(obj(source, target, labels, logits, coeff=1.0))


def check_adaptation_objective(
    objective: AdaptationObjective | str,
    in_features: int = 8,
    n_classes: int = 3,
    n: int = 96,
    seed: int = 0,
    atol: float = 0.02,
    fit_steps: int = 100,
    lr: float = 3e-3,
) -> AdaptationCheck:
    """Check an adaptation objective's contract (~0 when equal, > 0 under shift, gradients flow).

    Parameters
    ----------
    objective : AdaptationObjective or str
        An objective built for ``in_features`` features and ``n_classes`` classes, or the
        name of a registered one.
    in_features, n_classes, n : int
        Feature width, classes and rows per domain of the synthetic data.
    seed : int
    atol : float
        "About 0" means ``abs(value) <= atol``; "positive" means ``value > atol``.
    fit_steps, lr : int, float
        Adam steps and learning rate used to train the objective's own parameters
        (e.g. a discriminator) before each evaluation.

    Returns
    -------
    AdaptationCheck

    Raises
    ------
    AssertionError
        Naming the property that failed and the value found.

    Examples
    --------
    >>> check_adaptation_objective("coral").equal
    0.0
    """
    if isinstance(objective, str):
        objective = create_adaptation(objective, in_features=in_features, n_classes=n_classes)
    if not isinstance(objective, AdaptationObjective):
        raise TypeError(
            f"objective must be an AdaptationObjective or a registered name; got "
            f"{type(objective).__name__}"
        )
    gen = torch.Generator().manual_seed(seed)
    feats, labels, logits = _synthetic(n, in_features, n_classes, gen)
    name = type(objective).__name__

    _, equal = _value(objective, feats, feats.clone(), labels, logits, fit_steps, lr)
    equal_v = float(equal.detach())
    if not (math.isfinite(equal_v) and abs(equal_v) <= atol):
        raise AssertionError(
            f"{name}: expected about 0 for equal source and target; got {equal_v:.4g}"
        )

    scale = torch.linspace(0.5, 2.0, in_features, dtype=torch.float64)
    source = feats.clone().requires_grad_(True)
    target = (feats * scale + 2.0).detach().requires_grad_(True)
    _, shifted = _value(objective, source, target, labels, logits, fit_steps, lr)
    shifted_v = float(shifted.detach())
    if not (math.isfinite(shifted_v) and shifted_v > atol):
        raise AssertionError(
            f"{name}: expected a value > {atol} under a shift; got {shifted_v:.4g}"
        )
    shifted.backward()
    norms = []
    for which, t in (("source", source), ("target", target)):
        g = t.grad
        if g is None or not bool(torch.isfinite(g).all()) or float(g.abs().sum()) == 0.0:
            raise AssertionError(
                f"{name}: the loss sends no finite, non-zero gradient to the {which} features"
            )
        norms.append(float(g.norm()))
    return AdaptationCheck(equal_v, shifted_v, norms[0], norms[1])
