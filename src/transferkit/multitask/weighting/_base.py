"""The base of the loss-weighting strategies (:class:`Weighting`), their shared helpers and
their registry."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..._registry import Registry
from ...distributed import is_distributed, sum_across_ranks

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class Weighting(nn.Module):
    """Base class of loss-weighting strategies (e.g. GradNorm, https://arxiv.org/abs/1711.02257).

    Subclasses implement :meth:`forward` (current weights) and, when they learn, :meth:`update`.
    A non-finite loss makes the combined loss non-finite (the training loop's policy then
    decides about the step) and is never folded into a strategy's state: :meth:`combine`
    calls :meth:`update` only when every loss is finite.

    Parameters
    ----------
    tasks : int or sequence of str
        Number of tasks, or their names. With a number the names are taken from the first
        dict of losses the strategy combines, in its order.

    Notes
    -----
    Called with a dict of losses (``strategy(losses, ctx)``), a strategy is the training
    loop's combiner and returns the scalar ``sum_i w_i L_i`` with the weights detached (the
    strategies learn their weights themselves, never through the network's backward pass).
    Called with a tensor of losses it is an ordinary module returning the weights.
    Tasks absent from a step's dict (no labelled example in the batch) get no term and
    their state is left unchanged; a step with a non-finite loss leaves the whole state
    unchanged.

    Attributes
    ----------
    sums_to_n_tasks : bool
        Class attribute: the weights always sum to the number of tasks.

    Examples
    --------
    A strategy of one's own: weights proportional to the current losses (detached), summing
    to the number of tasks; registered, it is offered and checked like the built-in ones:

    >>> import torch
    >>> class LossProportional(Weighting):
    ...     sums_to_n_tasks = True
    ...     def forward(self, losses):
    ...         self._check_losses(losses)
    ...         w = losses.detach().clamp_min(1e-8)
    ...         return w * len(w) / w.sum()
    >>> LossProportional(2)(torch.tensor([1.0, 3.0]))
    tensor([0.5000, 1.5000])
    >>> from transferkit.testing import check_weighting
    >>> with WEIGHTINGS.temporary("loss-proportional-demo", LossProportional):
    ...     check_weighting("loss-proportional-demo", n_steps=3)
    """

    sums_to_n_tasks: ClassVar[bool] = False
    needs_shared: ClassVar[bool] = False
    constant_weights: ClassVar[bool] = False
    """Class attribute: :meth:`forward` gives the same weights whatever the losses and the
    strategy never learns, so :meth:`combine` computes them once."""

    def __init__(self, tasks: int | Sequence[str]) -> None:
        super().__init__()
        if isinstance(tasks, int):
            if tasks < 1:
                raise ValueError(f"n_tasks must be >= 1; got {tasks}")
            self.n_tasks = tasks
            self.tasks: tuple[str, ...] | None = None
        else:
            names = tuple(tasks)
            if not names or len(set(names)) != len(names):
                raise ValueError(f"tasks must be distinct names, at least one; got {names}")
            self.n_tasks = len(names)
            self.tasks = names

    # ------------------------------------------------------------------ API
    def forward(self, losses: Tensor) -> Tensor:
        """Weights of the tasks, shape ``(T,)``, given the current losses ``(T,)``."""
        raise NotImplementedError

    def update(self, losses: Sequence[Tensor | None], shared: Sequence[Tensor] | None) -> None:
        """Learn from this step's losses; stateless strategies do nothing.

        Parameters
        ----------
        losses : sequence of T scalar Tensors (None for a task absent from the step)
            This step's losses in task order, with their graph (GradNorm differentiates
            them with respect to ``shared``; nothing is accumulated into ``.grad``).
        shared : list of Tensor or None
            The last shared layer's weights (needed by GradNorm).
        """

    def __call__(self, losses: Any, ctx: Any = None, **kwargs: Any) -> Tensor:
        if isinstance(losses, Mapping):
            return self.combine(losses, ctx, **kwargs)
        return super().__call__(losses, **kwargs)

    def combine(
        self,
        losses: Mapping[str, Tensor],
        ctx: Any = None,
        *,
        shared: Sequence[Tensor] | Tensor | None = None,
    ) -> Tensor:
        """The training loop's combiner: ``sum_i w_i L_i`` (weights detached), then :meth:`update`.

        Parameters
        ----------
        losses : mapping of task name -> scalar Tensor
        ctx : transferkit.train.StepContext, optional
            Used to find the last shared layer (``ctx.model.shared_parameters()``) when
            the strategy needs it and none was given.
        shared : Tensor or list of Tensor, optional
            The last shared layer's weights; overrides the one given at construction.
        """
        if not losses:
            raise ValueError("no losses to combine")
        index = self._index(losses)
        terms: list[Tensor | None] = [None] * self.n_tasks
        for k, value in losses.items():
            if value.dim() != 0:
                raise ValueError(f"loss {k!r} must be a scalar; got shape {tuple(value.shape)}")
            terms[index[k]] = value
        weights = self._step_weights(terms)
        total: Tensor | None = None
        for w, maybe in zip(weights, terms, strict=True):
            if maybe is None:
                continue
            # a weight of exactly 1 adds the loss itself: equal weighting is then
            # bit-identical to the plain summed loss (same values, same gradients)
            term = maybe if w == 1.0 else w * maybe
            total = term if total is None else total + term
        assert total is not None
        # a strategy never folds a non-finite loss into its state (the loop's policy then
        # decides what happens to the step itself)
        if self._learns():
            # under torch.distributed every rank sees the same (averaged) losses, so they
            # agree on whether to learn from this step; update() reuses them
            vec, present = self._synced = _across_ranks(*_stack(terms))
            try:
                if bool(torch.isfinite(vec[present]).all()):
                    self.update(terms, self._shared(shared, ctx))
            finally:
                self._synced = None
        return total

    # -------------------------------------------------------------- helpers
    _synced: tuple[Tensor, Tensor] | None = None

    def _values(self, losses: Sequence[Tensor | None]) -> tuple[Tensor, Tensor]:
        """(detached losses, present mask) for :meth:`update`, averaged over the ranks under
        ``torch.distributed``; the ones :meth:`combine` has just averaged when it calls."""
        if self._synced is not None:
            return self._synced
        return _across_ranks(*_stack(losses))

    def _learns(self) -> bool:
        return type(self).update is not Weighting.update

    def _step_weights(self, terms: Sequence[Tensor | None]) -> list[float]:
        """This step's weights as python floats (a copy: an update may change them in
        place); computed once for a strategy with ``constant_weights``."""
        cached = self.__dict__.get("_constant")
        if cached is not None:
            return list(cached)
        with torch.no_grad():
            weights: list[float] = self.forward(_stack(terms)[0]).tolist()
        if self.constant_weights:
            self.__dict__["_constant"] = tuple(weights)
        return weights

    def _index(self, losses: Mapping[str, Tensor]) -> dict[str, int]:
        """Task name -> position, checking the names (built once per set of tasks)."""
        if self.tasks is None:
            self._names(losses)  # takes the names from the first losses
        cached = self.__dict__.get("_positions")
        if cached is None or cached[0] is not self.tasks:
            cached = (self.tasks, {k: i for i, k in enumerate(self.tasks or ())})
            self.__dict__["_positions"] = cached
        positions: dict[str, int] = cached[1]
        if any(k not in positions for k in losses):
            self._names(losses)  # raises, naming the unknown tasks
        return positions

    def _names(self, losses: Mapping[str, Tensor]) -> list[str]:
        if self.tasks is None:
            if len(losses) != self.n_tasks:
                raise ValueError(
                    f"the strategy was built for {self.n_tasks} tasks but the first losses "
                    f"name {len(losses)}: {list(losses)}"
                )
            self.tasks = tuple(losses)
        known = set(self.tasks)
        unknown = [k for k in losses if k not in known]
        if unknown:
            raise ValueError(f"losses for unknown tasks {unknown}; the strategy has {self.tasks}")
        return list(self.tasks)

    def _shared(self, shared: Sequence[Tensor] | Tensor | None, ctx: Any) -> list[Tensor] | None:
        if not self.needs_shared:
            return None
        if shared is None:
            shared = getattr(self, "_shared_params", None)
        if shared is None and ctx is not None:
            model = getattr(ctx, "model", None)
            fn = getattr(model, "shared_parameters", None)
            if callable(fn):
                shared = fn()
        if shared is None:
            raise ValueError(
                f"{type(self).__name__} needs the last shared layer: pass shared=... at "
                "construction or to combine(), or train a model with shared_parameters()"
            )
        return _as_tensor_list(shared)

    def _check_terms(self, losses: Sequence[Tensor | None]) -> None:
        if len(losses) != self.n_tasks:
            raise ValueError(
                f"expected {self.n_tasks} losses (None for absent tasks); got {len(losses)}"
            )

    def _check_losses(self, losses: Tensor) -> None:
        if losses.shape != (self.n_tasks,):
            raise ValueError(
                f"losses must have shape ({self.n_tasks},); got {tuple(losses.shape)}"
            )

    def get_extra_state(self) -> dict[str, Any]:
        return {"tasks": list(self.tasks) if self.tasks is not None else None}

    def set_extra_state(self, state: Any) -> None:
        tasks = state.get("tasks")
        self.tasks = tuple(tasks) if tasks is not None else None


def _stack(terms: Sequence[Tensor | None]) -> tuple[Tensor, Tensor]:
    """(detached losses with 0 for absent tasks, bool mask of present tasks)."""
    ref = next((t for t in terms if t is not None), None)
    if ref is None:
        raise ValueError("no task has a loss")
    vec = torch.stack([t.detach() if t is not None else ref.new_zeros(()).detach()
                       for t in terms])
    present = torch.tensor([t is not None for t in terms], device=vec.device)
    return vec, present


def _across_ranks(vec: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
    """Losses averaged over the ranks that have each task, and where any rank has it (this
    rank's own, outside ``torch.distributed``). A non-finite loss on any rank makes the
    average non-finite on every rank."""
    if not is_distributed():
        return vec, present
    counts = present.to(vec.dtype)
    both = sum_across_ranks(torch.stack([vec * counts, counts]))
    return both[0] / both[1].clamp_min(1), both[1] > 0


def _as_tensor_list(shared: Sequence[Tensor] | Tensor | nn.Module) -> list[Tensor]:
    if isinstance(shared, nn.Module):
        w = getattr(shared, "weight", None)
        return [w] if isinstance(w, Tensor) else list(shared.parameters())
    if isinstance(shared, Tensor):
        return [shared]
    out = list(shared)
    if not out or not all(isinstance(t, Tensor) for t in out):
        raise TypeError("shared must be a tensor, a module or a non-empty sequence of tensors")
    return out


WEIGHTINGS: Registry[type[Weighting]] = Registry("weighting", base=Weighting)


def register_weighting(name: str) -> Callable[[type[Weighting]], type[Weighting]]:
    """Class decorator adding a :class:`Weighting` subclass to the registry under ``name``.

    Examples
    --------
    >>> @register_weighting("first-only-demo")
    ... class FirstOnly(Weighting):
    ...     def forward(self, losses):
    ...         w = torch.zeros_like(losses)
    ...         w[0] = 1.0
    ...         return w
    >>> "first-only-demo" in list_weightings()
    True
    >>> WEIGHTINGS.unregister("first-only-demo")
    """
    return WEIGHTINGS.decorator(name)


def create_weighting(name: str, **kwargs: Any) -> Weighting:
    """Build a registered strategy, e.g. ``create_weighting("gradnorm", tasks=3, alpha=1.5)``.

    ``tasks`` (a count or the task names) is required. ``shared=`` is passed only to
    strategies that use the last shared layer (GradNorm), so one call site can build any
    strategy.

    Examples
    --------
    >>> type(create_weighting("dwa", tasks=["a", "b"])).__name__
    'DWA'
    """
    cls = WEIGHTINGS.get(name)
    if "tasks" not in kwargs:
        raise TypeError(f"create_weighting({name!r}, ...) needs tasks= (a count or task names)")
    if not cls.needs_shared:
        kwargs.pop("shared", None)
    return cls(**kwargs)


def list_weightings() -> list[str]:
    """Names of the registered loss-weighting strategies.

    Examples
    --------
    >>> list_weightings()
    ['dwa', 'equal', 'gradnorm', 'uncertainty']
    """
    return WEIGHTINGS.names()


def _adam(lr: float) -> OptimizerFactory:
    def make(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr)

    return make


def _optimizer_state(opt: torch.optim.Optimizer) -> dict[str, Any]:
    return opt.state_dict()
