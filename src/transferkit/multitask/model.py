"""Hard parameter sharing: one trunk, one head and one loss per task, missing labels masked.

The model side of multi-task learning (Caruana 1997; the setting of GradNorm, Chen et al.
ICML 2018, https://arxiv.org/abs/1711.02257): :class:`SharedTrunk` runs a shared trunk and
a head per task, computes each task's loss on the examples that carry a label for it, and
names the last shared layer whose gradient norms GradNorm balances.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..train.interface import Batches, StepContext, StepFn

__all__ = ["LOSS_KINDS", "SharedTrunk", "all_labelled", "masked_task_loss", "multitask_step"]

LossFn = Callable[[Tensor, Tensor], Tensor]
LOSS_KINDS = ("ce", "bce", "mse", "token-ce")


def _valid_mask(kind: str | None, target: Tensor) -> Tensor:
    """Per-row (ce, mse, callable) or per-element (bce) mask of labelled targets.

    Missing labels are written as a negative class index (integer targets) or NaN (float).
    """
    if target.is_floating_point():
        ok = ~torch.isnan(target)
        if kind == "bce":
            return ok
        return ok.reshape(len(target), -1).all(dim=1)
    ok = target >= 0
    return ok if ok.dim() == 1 else ok.reshape(len(target), -1).all(dim=1)


def masked_task_loss(kind: str | LossFn, output: Tensor, target: Tensor,
                     mask: Tensor | None = None, *, labelled: bool = False) -> Tensor | None:
    """Mean loss of one task over its labelled examples, or None when none is labelled.

    Parameters
    ----------
    kind : {"ce", "bce", "mse", "token-ce"} or callable(output, target) -> scalar
        Cross-entropy on class indices, binary cross-entropy on {0, 1} targets (multi-label,
        masked per element), mean squared error; ``token-ce``: cross-entropy per token of a
        sequence, ``output (n, L', C)`` against tags ``(n, L)`` (``L >= L'``: the tags are
        cut to the output's length, as a text backbone cuts padding), over the tokens
        whose tag is >= 0 (padding and continued sub-words carry -1); a callable gets the
        labelled rows only.
    output : Tensor, shape (n, ...)
    target : Tensor, shape (n, ...)
        Missing labels: negative integers or NaN, unless ``mask`` is given.
    mask : bool Tensor, shape (n,) (or (n, k) for "bce"), optional
        True where the label is present.
    labelled : bool
        The caller has checked that no label is missing (:func:`all_labelled`): the
        per-task scan for NaN / negative labels is skipped.

    Examples
    --------
    >>> import torch
    >>> out = torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]])
    >>> loss = masked_task_loss("ce", out, torch.tensor([0, 1, -1]))   # the last row is unlabelled
    >>> round(float(loss), 4)
    0.1269
    >>> masked_task_loss("ce", out, torch.tensor([-1, -1, -1])) is None
    True
    """
    if isinstance(kind, str) and kind not in LOSS_KINDS:
        raise ValueError(f"loss kind must be one of {LOSS_KINDS} or a callable; got {kind!r}")
    if len(output) != len(target):
        raise ValueError(f"output has {len(output)} rows but target has {len(target)}")
    if kind == "token-ce":
        return _token_loss(output, target, mask)
    if mask is None and (labelled or all_labelled([target])):
        return _plain_loss(kind, output, target)  # fully labelled: no gathers, no masking
    key = kind if isinstance(kind, str) else None
    ok = _valid_mask(key, target) if mask is None else mask.to(torch.bool)
    n_ok = int(ok.sum())
    if n_ok == 0:
        return None
    if n_ok == ok.numel():
        return _plain_loss(kind, output, target)
    if kind == "bce":
        if ok.shape != target.shape:
            ok = ok.reshape(len(target), *([1] * (target.dim() - 1))).expand_as(target)
        t = torch.where(ok, target, torch.zeros_like(target))
        per = F.binary_cross_entropy_with_logits(output, t.to(output.dtype), reduction="none")
        return (per * ok).sum() / ok.sum()
    rows = ok if ok.dim() == 1 else ok.reshape(len(target), -1).all(dim=1)
    return _plain_loss(kind, output[rows], target[rows])


def all_labelled(targets: Sequence[Tensor]) -> bool:
    """Whether no target has a missing label (NaN, or a negative class index), checked
    for all the targets at once (one scan per dtype kind, not one per task).

    Examples
    --------
    >>> import torch
    >>> all_labelled([torch.tensor([0, 2]), torch.tensor([0.5, 1.0])])
    True
    >>> all_labelled([torch.tensor([0, -1]), torch.tensor([0.5, 1.0])])
    False
    """
    floats = [t.reshape(-1) for t in targets if t.is_floating_point()]
    others = [t.reshape(-1) for t in targets if not t.is_floating_point()]
    if floats and bool(torch.isnan(_joined(floats)).any()):
        return False
    return not (others and bool((_joined(others) < 0).any()))


def _joined(flat: list[Tensor]) -> Tensor:
    return flat[0] if len(flat) == 1 else torch.cat(flat)


def _token_loss(output: Tensor, target: Tensor, mask: Tensor | None) -> Tensor | None:
    """Cross-entropy over the tagged tokens (tag >= 0) of the rows ``mask`` keeps."""
    if output.dim() != 3 or target.dim() != 2 or target.shape[1] < output.shape[1]:
        raise ValueError(f"token-ce takes outputs (n, L', C) and tags (n, L) with L >= L'; "
                         f"got {tuple(output.shape)} and {tuple(target.shape)}")
    tags = target[:, :output.shape[1]].long()
    ok = tags >= 0
    if mask is not None:
        ok = ok & mask.to(torch.bool).reshape(-1, 1)
    if not bool(ok.any()):
        return None
    return F.cross_entropy(output[ok], tags[ok])


def _plain_loss(kind: str | LossFn, out: Tensor, tgt: Tensor) -> Tensor:
    if kind == "ce":
        return F.cross_entropy(out, tgt.long())
    if kind == "mse":
        tgt = tgt.to(out.dtype)
        return F.mse_loss(out, tgt if tgt.shape == out.shape else tgt.reshape(out.shape))
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(out, tgt.to(out.dtype))
    assert callable(kind)
    return kind(out, tgt)


class SharedTrunk(nn.Module):
    """Hard-parameter-sharing multi-task network (as in GradNorm, https://arxiv.org/abs/1711.02257).

    ``forward(x)`` returns ``{task: head_task(trunk(x))}``; :meth:`task_losses` turns the
    outputs and targets into ``{task: loss}`` over the labelled examples of each task
    (a task with no label in the batch is left out, never NaN); :meth:`shared_parameters`
    gives the weights of the last shared layer, the ``W`` of GradNorm.

    Parameters
    ----------
    trunk : nn.Module
        Shared feature extractor, input -> representation.
    heads : mapping of task name -> nn.Module
        One head per task, representation -> task output.
    losses : mapping of task name -> {"ce", "bce", "mse"} or callable(output, target)
        The loss of each task (same keys as ``heads``).
    shared_layer : str or nn.Module, optional
        The last shared layer: its dotted name inside ``trunk`` or the module itself.
        By default the last submodule of ``trunk`` that has a ``weight`` parameter.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = SharedTrunk(nn.Sequential(nn.Linear(4, 8), nn.ReLU()),
    ...                   {"cls": nn.Linear(8, 3), "reg": nn.Linear(8, 1)},
    ...                   {"cls": "ce", "reg": "mse"})
    >>> x = torch.randn(5, 4)
    >>> y_cls = torch.tensor([0, 2, -1, 1, 0])        # -1: missing label
    >>> y_reg = torch.tensor([[0.5], [float("nan")], [1.0], [2.0], [0.0]])
    >>> sorted(net.task_losses(net(x), {"cls": y_cls, "reg": y_reg}))
    ['cls', 'reg']
    >>> tuple(net.shared_parameters()[0].shape)
    (8, 4)
    """

    def __init__(
        self,
        trunk: nn.Module,
        heads: Mapping[str, nn.Module],
        losses: Mapping[str, str | LossFn],
        shared_layer: str | nn.Module | None = None,
    ) -> None:
        super().__init__()
        if not heads:
            raise ValueError("a SharedTrunk needs at least one head")
        if set(heads) != set(losses):
            raise ValueError(
                f"heads and losses must name the same tasks; heads: {sorted(heads)}, "
                f"losses: {sorted(losses)}"
            )
        for name, kind in losses.items():
            if isinstance(kind, str) and kind not in LOSS_KINDS:
                raise ValueError(
                    f"loss of task {name!r} must be one of {LOSS_KINDS} or a callable; got {kind!r}"
                )
        self.trunk = trunk
        self.heads = nn.ModuleDict(dict(heads))
        self.tasks: tuple[str, ...] = tuple(heads)
        self.losses: dict[str, str | LossFn] = {t: losses[t] for t in self.tasks}
        self._shared_name = self._resolve_shared(shared_layer)

    def _resolve_shared(self, layer: str | nn.Module | None) -> str:
        named = dict(self.trunk.named_modules())
        if layer is None:
            found = [n for n, m in named.items()
                     if isinstance(getattr(m, "weight", None), nn.Parameter)]
            if not found:
                raise ValueError("the trunk has no layer with a `weight`; pass shared_layer")
            return found[-1]
        if isinstance(layer, str):
            if layer not in named:
                raise ValueError(
                    f"shared_layer {layer!r} is not a submodule of the trunk; it has "
                    f"{[n for n in named if n]}"
                )
            return layer
        for n, m in named.items():
            if m is layer:
                return n
        raise ValueError("shared_layer is not a submodule of the trunk")

    @property
    def shared_layer(self) -> nn.Module:
        """The last shared layer (GradNorm's ``W`` is its weight)."""
        return dict(self.trunk.named_modules())[self._shared_name]

    def shared_parameters(self) -> list[Tensor]:
        """The weight matrix of the last shared layer, as a one-element list."""
        w = getattr(self.shared_layer, "weight", None)
        if not isinstance(w, Tensor):
            raise ValueError(f"shared layer {self._shared_name!r} has no weight tensor")
        return [w]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        z = self.trunk(x)
        return {t: self.heads[t](z) for t in self.tasks}

    def task_losses(
        self,
        outputs: Mapping[str, Tensor],
        targets: Mapping[str, Tensor],
        masks: Mapping[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """``{task: loss}`` over each task's labelled examples; unlabelled tasks left out.

        Parameters
        ----------
        outputs : mapping task -> Tensor, shape (n, ...)
        targets : mapping task -> Tensor, shape (n, ...)
            Missing labels as negative class indices or NaN (see :func:`masked_task_loss`).
        masks : mapping task -> bool Tensor, optional
            Explicit masks (True = labelled) that replace the NaN / negative convention.
        """
        unknown = set(targets) - set(self.tasks)
        if unknown:
            raise ValueError(f"targets for unknown tasks {sorted(unknown)}; tasks: {self.tasks}")
        out: dict[str, Tensor] = {}
        names = [t for t in self.tasks if t in targets]
        if masks is not None:
            for t in names:
                loss = masked_task_loss(self.losses[t], outputs[t], targets[t], masks.get(t))
                if loss is not None:
                    out[t] = loss
            return out
        # A NaN target makes an mse / bce loss NaN, so those losses are computed as if
        # fully labelled and only a non-finite one is recomputed with the NaN scan; the
        # other targets are scanned together (not one scan per task).
        guessed = [t for t in names
                   if self.losses[t] in ("mse", "bce") and targets[t].is_floating_point()]
        labelled = all_labelled([targets[t] for t in names
                                 if t not in guessed and self.losses[t] != "token-ce"])
        for t in names:
            loss = masked_task_loss(self.losses[t], outputs[t], targets[t],
                                    labelled=labelled or t in guessed)
            if loss is not None:
                out[t] = loss
        if guessed and not bool(torch.isfinite(torch.stack([out[t] for t in guessed])).all()):
            for t in guessed:
                if not bool(torch.isfinite(out[t])):
                    loss = masked_task_loss(self.losses[t], outputs[t], targets[t])
                    if loss is None:
                        del out[t]
                    else:
                        out[t] = loss
        return out


def multitask_step(stream: str = "train") -> StepFn:
    """Step function for :class:`SharedTrunk`: the stream holds ``(x, y_task1, y_task2, ...)``.

    The targets follow ``model.tasks`` order; missing labels as in :func:`masked_task_loss`.
    Returns a step function for :class:`transferkit.train.Phase` giving ``{task: loss}``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from transferkit.train import Phase, Stream, Trainer
    >>> net = SharedTrunk(nn.Sequential(nn.Linear(4, 8), nn.ReLU()),
    ...                   {"cls": nn.Linear(8, 3), "reg": nn.Linear(8, 1)},
    ...                   {"cls": "ce", "reg": "mse"})
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y_reg = torch.randn(32, 4, generator=g), torch.randn(32, 1, generator=g)
    >>> y_cls = torch.randint(0, 3, (32,), generator=g)
    >>> stream = Stream(x, y_cls, y_reg, batch_size=8, seed=0)
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> hist = Trainer(net, Phase(multitask_step(), opt, {"train": stream}), 10, seed=0,
    ...                progress=False).fit()
    >>> sorted(k for k in hist.records[-1] if k.startswith("loss/"))
    ['loss/cls', 'loss/reg']
    """

    def step(model: nn.Module, batches: Batches, ctx: StepContext) -> dict[str, Tensor]:
        tasks: Sequence[str] | None = getattr(model, "tasks", None)
        if tasks is None or not hasattr(model, "task_losses"):
            raise TypeError(
                f"multitask_step needs a SharedTrunk-like model; got {type(model).__name__}"
            )
        batch = batches[stream]
        if len(batch) != 1 + len(tasks):
            raise ValueError(
                f"stream {stream!r} has {len(batch)} tensors; expected x plus one target per task "
                f"({len(tasks)} tasks: {tuple(tasks)})"
            )
        x, ys = batch[0], batch[1:]
        return model.task_losses(model(x), dict(zip(tasks, ys, strict=True)))  # type: ignore[operator]

    return step
