"""Freezing layers and per-group learning rates for fine-tuning.

The basic recipe of transfer (see PAPERS.md, "Fine-tuning"): keep the pretrained shallow
and middle layers fixed, tune the deep layers and a new head, often with a smaller learning
rate for the pretrained layers than for the new ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

__all__ = ["freeze", "param_groups", "trainable", "unfreeze"]


def _matches(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def freeze(
    model: nn.Module, blocks: int | None = None, names: Iterable[str] | None = None
) -> list[str]:
    """Stop gradients to the first ``blocks`` feature blocks and/or the named modules.

    Parameters
    ----------
    model : nn.Module
        For ``blocks``, a model whose ``features`` is an ``nn.Sequential`` (see
        :class:`transferkit.nets.SplitNet`); ``names`` works with any module.
    blocks : int, optional
        Freeze ``features[0]`` ... ``features[blocks - 1]``.
    names : iterable of str, optional
        Module or parameter names (prefixes of ``named_parameters()`` names, e.g.
        ``"features.0"`` or ``"encoder.layer1"``) to freeze.

    Returns
    -------
    list of str
        The names of the parameters that were frozen.

    Batch-norm running statistics are buffers, not parameters: they keep updating in
    train mode unless the caller puts those modules in eval mode.

    Examples
    --------
    >>> from transferkit.nets import create_backbone
    >>> net = create_backbone("mlp", in_shape=(1, 8, 8), n_classes=3, hidden=(16, 16))
    >>> freeze(net, blocks=2)            # block 0 flattens; block 1 is the first layer
    ['features.1.0.weight', 'features.1.0.bias']
    >>> all(p.requires_grad for p in net.head.parameters())
    True
    """
    prefixes: list[str] = []
    if blocks is not None:
        features = getattr(model, "features", None)
        if not isinstance(features, nn.Sequential):
            raise TypeError("freeze(blocks=...) needs a model whose `features` is an nn.Sequential")
        if not 0 <= blocks <= len(features):
            raise ValueError(f"blocks must be in [0, {len(features)}]; got {blocks}")
        prefixes += [f"features.{i}" for i in range(blocks)]
    if names is not None:
        wanted = list(names)
        known = {n for n, _ in model.named_modules()} | {n for n, _ in model.named_parameters()}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise ValueError(f"no module or parameter named {unknown} in {type(model).__name__}")
        prefixes += wanted
    frozen = []
    for name, p in model.named_parameters():
        if _matches(name, prefixes):
            p.requires_grad_(False)
            frozen.append(name)
    return frozen


def unfreeze(model: nn.Module) -> None:
    """Make every parameter of ``model`` trainable again.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 2))
    >>> _ = freeze(net, names=["0"])
    >>> unfreeze(net)
    >>> len(trainable(net))
    2
    """
    for p in model.parameters():
        p.requires_grad_(True)


def param_groups(
    model: nn.Module,
    lr: float,
    pretrained_lr: float,
    new: Iterable[str] = ("head",),
) -> list[dict[str, object]]:
    """Optimiser parameter groups: ``pretrained_lr`` for pretrained layers, ``lr`` for new ones.

    Parameters
    ----------
    model : nn.Module
    lr : float
        Learning rate of the new modules.
    pretrained_lr : float
        Learning rate of every other trainable parameter.
    new : iterable of str
        Names (prefixes) of the newly added modules, ``("head",)`` by default.

    Frozen parameters are left out. Pass the result to any ``torch.optim`` optimiser.

    Examples
    --------
    >>> import torch
    >>> from transferkit.nets import MLP
    >>> net = MLP((1, 8, 8), n_classes=5, hidden=(16,))
    >>> groups = param_groups(net, lr=0.1, pretrained_lr=0.01)
    >>> opt = torch.optim.SGD(groups, lr=0.1)
    >>> [g["lr"] for g in opt.param_groups]
    [0.01, 0.1]
    """
    new = list(new)
    old_params: list[nn.Parameter] = []
    new_params: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (new_params if _matches(name, new) else old_params).append(p)
    if not new_params and new:
        raise ValueError(f"no trainable parameter matches the new modules {new}")
    groups: list[dict[str, object]] = []
    if old_params:
        groups.append({"params": old_params, "lr": pretrained_lr})
    groups.append({"params": new_params, "lr": lr})
    return groups


def trainable(model: nn.Module) -> list[torch.nn.Parameter]:
    """The parameters of ``model`` that require gradients.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    >>> _ = freeze(net, names=["0"])
    >>> [tuple(p.shape) for p in trainable(net)]      # what to give the optimiser
    [(1, 3), (1,)]
    """
    return [p for p in model.parameters() if p.requires_grad]
