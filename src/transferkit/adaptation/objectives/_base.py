"""The base of the adaptation objectives, their input checks and their registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from ..._registry import Registry


def _check_features(source: Tensor, target: Tensor, min_rows: int = 1) -> None:
    for name, t in (("source", source), ("target", target)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} features must be a Tensor; got {type(t).__name__}")
        if t.dim() != 2:
            raise ValueError(
                f"{name} features must have shape (n, d); got shape {tuple(t.shape)}"
            )
        if not t.is_floating_point():
            raise TypeError(f"{name} features must be floating point; got {t.dtype}")
        if len(t) < min_rows:
            raise ValueError(f"{name} features need at least {min_rows} rows; got {len(t)}")
    if source.shape[1] != target.shape[1]:
        raise ValueError(
            f"source features have {source.shape[1]} columns but target features have "
            f"{target.shape[1]}"
        )


def _check_width(features: Tensor, in_features: int) -> None:
    if features.shape[1] != in_features:
        raise ValueError(
            f"features have {features.shape[1]} columns but the objective was built for "
            f"in_features={in_features}"
        )


def adaptation_loss(output: Tensor | tuple[Tensor, ...]) -> Tensor:
    """The scalar loss of an adaptation objective's output (a tensor, or a NamedTuple's ``loss``).

    Examples
    --------
    >>> import torch
    >>> adaptation_loss(torch.tensor(0.5))
    tensor(0.5000)
    """
    if isinstance(output, Tensor):
        return output
    loss = getattr(output, "loss", None)
    if not isinstance(loss, Tensor):
        raise TypeError(
            f"expected a Tensor or a NamedTuple with a `loss` tensor; got {type(output).__name__}"
        )
    return loss


class AdaptationObjective(nn.Module):
    """Base class of adaptation objectives (see the module docstring for the call contract).

    ``needs_labels`` / ``needs_logits`` say whether ``source_labels`` / ``target_logits``
    must be passed. ``uses_coeff`` says whether the objective applies the schedule's
    ``coeff`` itself (adversarial objectives scale only the features' gradient with it);
    when it is False the caller multiplies the loss by the schedule instead (see
    :func:`~transferkit.adaptation.adaptation_step`).

    Non-finite features give a non-finite loss; objectives do not check for them (a check
    per step would cost a device synchronisation), and the training loop's non-finite
    policy stops the step (``NonFiniteLossError`` by default). Shapes are checked.

    Examples
    --------
    An objective of one's own: the squared gap of the feature means, zero when the two sets
    are equal; registered, it is offered by ``transferkit adapt`` and checked in one line:

    >>> import torch
    >>> class MeanGap(AdaptationObjective):
    ...     def forward(self, source, target, source_labels=None, target_logits=None, coeff=1.0):
    ...         _check_features(source, target)
    ...         return (source.mean(0) - target.mean(0)).pow(2).sum()
    >>> from transferkit.testing import check_adaptation_objective
    >>> with ADAPTATIONS.temporary("mean-gap-demo", lambda in_features, n_classes: MeanGap()):
    ...     check = check_adaptation_objective("mean-gap-demo")
    >>> check.equal, check.shifted > 0
    (0.0, True)
    """

    needs_labels: bool = False
    needs_logits: bool = False
    uses_coeff: bool = False


Factory = Callable[..., AdaptationObjective]
ADAPTATIONS: Registry[Factory] = Registry("adaptation objective")


def register_adaptation(name: str) -> Callable[[Factory], Factory]:
    """Decorator adding an adaptation objective factory to the registry.

    The factory is called as ``f(in_features=..., n_classes=..., **kwargs)``.

    Registered objectives are enumerated by the tests and checked with
    :func:`transferkit.testing.check_adaptation_objective`.

    Examples
    --------
    >>> "dann" in list_adaptations()
    True
    """
    return ADAPTATIONS.decorator(name)


def create_adaptation(name: str, **kwargs: Any) -> AdaptationObjective:
    """Build a registered objective; ``in_features`` (the feature width) and ``n_classes``
    are required keywords, the rest go to the objective.

    Examples
    --------
    >>> type(create_adaptation("mstn", in_features=16, n_classes=10)).__name__
    'MSTN'
    """
    missing = [k for k in ("in_features", "n_classes") if k not in kwargs]
    if missing:
        raise TypeError(f"create_adaptation({name!r}, ...) needs {' and '.join(missing)}=")
    in_features, n_classes = kwargs.pop("in_features"), kwargs.pop("n_classes")
    if int(in_features) < 1 or int(n_classes) < 1:
        raise ValueError(
            f"in_features and n_classes must be >= 1; got {in_features} and {n_classes}"
        )
    return ADAPTATIONS.get(name)(in_features=int(in_features), n_classes=int(n_classes), **kwargs)


def list_adaptations() -> list[str]:
    """Names of the registered adaptation objectives.

    Examples
    --------
    >>> list_adaptations()
    ['coral', 'dann', 'mmd', 'mstn']
    """
    return ADAPTATIONS.names()
