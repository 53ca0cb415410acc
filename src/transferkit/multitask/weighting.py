"""Loss-weighting strategies for multi-task learning behind one small base class.

Every strategy is a :class:`Weighting`: ``forward(losses) -> weights`` (shape ``(T,)``),
an optional :meth:`Weighting.update` hook for strategies with state, and
:meth:`Weighting.combine` that the training loop calls as its ``combiner``: called with a
dict of named losses, a strategy returns the weighted sum and updates its own state (its
own optimiser is created once, in ``__init__``; its state travels in ``state_dict``). The
loop never asks which strategy it holds.

Strategies: ``equal``; ``uncertainty`` (Kendall, Gal, Cipolla, CVPR 2018,
https://arxiv.org/abs/1705.07115); ``dwa`` (Liu, Johns, Davison, CVPR 2019,
https://arxiv.org/abs/1803.10704); ``gradnorm`` (Chen, Badrinarayanan, Lee, Rabinovich,
ICML 2018, https://arxiv.org/abs/1711.02257).

Under ``torch.distributed`` (see :mod:`transferkit.distributed`) the strategies learn from
the task losses averaged over the ranks, and GradNorm from the per-task gradients of the
shared layer averaged over the ranks before their norms are taken, so every rank holds the
same weights and, with equal shards, the weights one process would learn from the whole
batch. Uncertainty weighting's ``log_vars`` stay in step the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .._registry import Registry
from ..distributed import is_distributed, sum_across_ranks

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class Weighting(nn.Module):
    """Base class of loss-weighting strategies (e.g. GradNorm, https://arxiv.org/abs/1711.02257).

    Subclasses implement :meth:`forward` (current weights) and, when they learn, :meth:`update`.

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
    """

    sums_to_n_tasks: ClassVar[bool] = False
    needs_shared: ClassVar[bool] = False

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
        names = self._names(losses)
        terms: list[Tensor | None] = [None] * self.n_tasks
        for k, value in losses.items():
            if value.dim() != 0:
                raise ValueError(f"loss {k!r} must be a scalar; got shape {tuple(value.shape)}")
            terms[names.index(k)] = value
        vec, present = _stack(terms)
        with torch.no_grad():
            # python floats: a copy, since the update below changes the weights in place
            weights = self.forward(vec).tolist()
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
            vec, present = self._synced = _across_ranks(vec, present)
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

    def _names(self, losses: Mapping[str, Tensor]) -> list[str]:
        if self.tasks is None:
            if len(losses) != self.n_tasks:
                raise ValueError(
                    f"the strategy was built for {self.n_tasks} tasks but the first losses "
                    f"name {len(losses)}: {list(losses)}"
                )
            self.tasks = tuple(losses)
        unknown = [k for k in losses if k not in self.tasks]
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
    """Class decorator adding a :class:`Weighting` subclass to the registry under ``name``."""
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
    """Names of the registered loss-weighting strategies."""
    return WEIGHTINGS.names()


def _adam(lr: float) -> OptimizerFactory:
    def make(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr)

    return make


def _optimizer_state(opt: torch.optim.Optimizer) -> dict[str, Any]:
    return opt.state_dict()


@register_weighting("equal")
class EqualWeighting(Weighting):
    """Equal weights, ``w_i = 1``: the plain summed loss (baseline of https://arxiv.org/abs/1711.02257).

    Examples
    --------
    >>> import torch
    >>> EqualWeighting(3)(torch.tensor([1.0, 5.0, 0.1]))
    tensor([1., 1., 1.])
    """

    sums_to_n_tasks = True

    def forward(self, losses: Tensor) -> Tensor:
        self._check_losses(losses)
        return torch.ones_like(losses)


@register_weighting("uncertainty")
class UncertaintyWeighting(Weighting):
    """Homoscedastic-uncertainty weighting, Kendall et al. CVPR 2018, https://arxiv.org/abs/1705.07115.

    Objective ``sum_i c_i exp(-s_i) L_i + r_i s_i`` with ``s_i = log sigma_i^2`` learned; the
    weights are ``c_i exp(-s_i)``. The paper's forms are per task type: a Gaussian
    likelihood (regression, ``forms="regression"``) gives ``1/2 exp(-s) L + 1/2 s``, a
    softmax with temperature (classification) ``exp(-s) L + 1/2 s``; ``"simple"``,
    ``exp(-s) L + s``, is the form most public reimplementations use for every task.

    The default is ``"simple"`` because a weighting is not told its tasks' likelihoods:
    pass one form per task (``forms=["classification", "regression"]``) to follow the
    paper, as the ``gradnorm`` claim does. The strategy steps its own optimiser on ``s``
    inside the combiner (gradient ``r_i - c_i exp(-s_i) L_i``, exact and first-order), so
    the network's optimiser needs no extra parameters; with the same optimiser type and
    learning rate this is the joint update of the paper.

    Parameters
    ----------
    tasks : int or sequence of str
    lr : float
        Adam learning rate of ``s`` (used when ``optimizer`` is None).
    optimizer : callable(params) -> torch.optim.Optimizer, optional
    forms : str or sequence of str
        ``"simple"``, ``"regression"`` or ``"classification"``: one for all tasks, or one
        per task.

    Examples
    --------
    >>> import torch
    >>> u = UncertaintyWeighting(2, lr=0.1)
    >>> x = torch.ones(())
    >>> for _ in range(3):
    ...     _ = u({"a": 4.0 * x, "b": 0.25 * x})
    >>> w = u(torch.tensor([4.0, 0.25]))
    >>> bool(w[0] < 1.0 < w[1])
    True
    >>> UncertaintyWeighting(2, forms=["classification", "regression"])(torch.ones(2))
    tensor([1.0000, 0.5000])
    """

    FORMS = {"simple": (1.0, 1.0), "regression": (0.5, 0.5), "classification": (1.0, 0.5)}
    _scale: Tensor
    _reg: Tensor

    def __init__(self, tasks: int | Sequence[str], lr: float = 0.01,
                 optimizer: OptimizerFactory | None = None,
                 forms: str | Sequence[str] = "simple") -> None:
        super().__init__(tasks)
        if lr <= 0:
            raise ValueError(f"lr must be > 0; got {lr}")
        per_task = [forms] * self.n_tasks if isinstance(forms, str) else list(forms)
        if len(per_task) != self.n_tasks:
            raise ValueError(f"forms has {len(per_task)} entries for {self.n_tasks} tasks")
        bad = [f for f in per_task if f not in self.FORMS]
        if bad:
            raise ValueError(f"unknown form(s) {bad}; expected one of {sorted(self.FORMS)}")
        self.forms = per_task
        coef = torch.tensor([self.FORMS[f] for f in per_task])
        self.register_buffer("_scale", coef[:, 0].clone(), persistent=False)
        self.register_buffer("_reg", coef[:, 1].clone(), persistent=False)
        self.log_vars = nn.Parameter(torch.zeros(self.n_tasks))
        self.optimizer = (optimizer or _adam(lr))([self.log_vars])

    def forward(self, losses: Tensor) -> Tensor:
        self._check_losses(losses)
        return (self._scale * torch.exp(-self.log_vars.detach())).to(losses)

    def update(self, losses: Sequence[Tensor | None], shared: Sequence[Tensor] | None) -> None:
        self._check_terms(losses)
        vec, present = self._values(losses)
        with torch.no_grad():
            s = self.log_vars
            grad = (self._reg - self._scale * torch.exp(-s) * vec.to(s)) * present.to(s)
        self.optimizer.zero_grad(set_to_none=True)
        self.log_vars.grad = grad
        self.optimizer.step()

    def get_extra_state(self) -> dict[str, Any]:
        return {**super().get_extra_state(), "optimizer": _optimizer_state(self.optimizer)}

    def set_extra_state(self, state: Any) -> None:
        super().set_extra_state(state)
        self.optimizer.load_state_dict(state["optimizer"])


@register_weighting("dwa")
class DWA(Weighting):
    """Dynamic Weight Average, Liu et al. CVPR 2019, https://arxiv.org/abs/1803.10704.

    ``w_i = T softmax_i(r_i / temperature)`` with ``r_i = Lbar_i(e-1) / Lbar_i(e-2)`` the
    ratio of the task's mean losses over the last two completed periods ("epochs") of
    ``period`` steps; weights are 1 until two periods are complete.

    Parameters
    ----------
    tasks : int or sequence of str
    temperature : float
        2 in the paper.
    period : int
        Steps per averaging period (set it to the steps in an epoch to follow the paper).

    Examples
    --------
    >>> import torch
    >>> dwa = DWA(2, period=1)
    >>> x = torch.ones(())
    >>> for a in (1.0, 0.5):          # task "a" halves, task "b" stays
    ...     _ = dwa({"a": a * x, "b": x})
    >>> w = dwa(torch.ones(2))
    >>> round(float(w.sum()), 4), bool(w[0] < w[1])
    (2.0, True)
    """

    sums_to_n_tasks = True

    _sum: Tensor
    _count: Tensor
    _history: Tensor
    _periods: Tensor
    _steps: Tensor

    def __init__(
        self, tasks: int | Sequence[str], temperature: float = 2.0, period: int = 1
    ) -> None:
        super().__init__(tasks)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0; got {temperature}")
        if period < 1:
            raise ValueError(f"period must be >= 1; got {period}")
        self.temperature = temperature
        self.period = period
        self.register_buffer("_sum", torch.zeros(self.n_tasks))
        self.register_buffer("_count", torch.zeros(self.n_tasks))
        self.register_buffer("_history", torch.ones(2, self.n_tasks))
        self.register_buffer("_periods", torch.zeros((), dtype=torch.long))
        self.register_buffer("_steps", torch.zeros((), dtype=torch.long))

    def forward(self, losses: Tensor) -> Tensor:
        self._check_losses(losses)
        if int(self._periods) < 2:
            return torch.ones_like(losses)
        r = self._history[1] / self._history[0].clamp_min(torch.finfo(self._history.dtype).tiny)
        return (self.n_tasks * torch.softmax(r / self.temperature, dim=0)).to(losses)

    def update(self, losses: Sequence[Tensor | None], shared: Sequence[Tensor] | None) -> None:
        self._check_terms(losses)
        vec, present = self._values(losses)
        with torch.no_grad():
            p = present.to(self._sum)
            self._sum += vec.to(self._sum) * p
            self._count += p
            self._steps += 1
            if int(self._steps) % self.period == 0:
                mean = self._sum / self._count.clamp_min(1)
                # a task unseen in this period keeps its previous mean
                mean = torch.where(self._count > 0, mean, self._history[1])
                self._history.copy_(torch.stack([self._history[1], mean]))
                self._periods += 1
                self._sum.zero_()
                self._count.zero_()


@register_weighting("gradnorm")
class GradNorm(Weighting):
    """GradNorm, Chen et al. ICML 2018, https://arxiv.org/abs/1711.02257.

    At each step, with ``W`` the last shared layer's weights:

    - ``G_i = w_i ||grad_W L_i||`` (one ``torch.autograd.grad`` of the batched losses with
      respect to ``W`` only, no ``create_graph``: nothing second-order reaches the network);
    - loss ratios ``Lt_i = L_i / L_i(0)`` with ``L_i(0)`` the mean of the first ``n_init``
      steps' losses (weights stay 1 meanwhile), relative rates ``r_i = Lt_i / mean(Lt)``;
    - targets ``Gbar r_i^alpha`` held constant; ``L_grad = sum_i |G_i - target_i|``, whose
      gradient with respect to the weights only is ``sign(G_i - target_i) ||grad_W L_i||``;
    - the weights' own optimiser (created once) steps, the weights are clamped to at least
      ``min_weight`` and renormalised to sum to T.

    The network's loss at the step uses the weights before the update (Algorithm 1).

    Parameters
    ----------
    tasks : int or sequence of str
    alpha : float
        Asymmetry (0.12 on the paper's toy, 1.5 on NYUv2).
    lr : float
        Adam learning rate of the weights (used when ``optimizer`` is None).
    shared : Tensor, list of Tensor or nn.Module, optional
        The last shared layer (its ``weight``). If None, taken at each step from
        ``ctx.model.shared_parameters()`` (e.g. a :class:`~.model.SharedTrunk`).
    n_init : int
        Steps averaged for the initial losses ``L_i(0)``.
    min_weight : float
        Floor that keeps every weight positive.
    optimizer : callable(params) -> torch.optim.Optimizer, optional

    Examples
    --------
    A user's own trunk, heads and losses trained with the library's loop:

    >>> import torch
    >>> from torch import nn
    >>> from transferkit.train import Phase, Stream, Trainer, seeded
    >>> with seeded(0):
    ...     trunk = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())
    ...     heads = nn.ModuleList([nn.Linear(16, 1), nn.Linear(16, 3)])
    >>> model = nn.ModuleDict({"trunk": trunk, "heads": heads})
    >>> def step(model, batches, ctx):
    ...     x, y_reg, y_cls = batches["train"]
    ...     z = model["trunk"](x)
    ...     return {"reg": nn.functional.mse_loss(model["heads"][0](z).squeeze(1), y_reg),
    ...             "cls": nn.functional.cross_entropy(model["heads"][1](z), y_cls)}
    >>> gen = torch.Generator().manual_seed(0)
    >>> x = torch.randn(64, 6, generator=gen)
    >>> data = Stream(x, 50 * x[:, 0], (x[:, 1] > 0).long() + (x[:, 2] > 0).long(), batch_size=16)
    >>> gn = GradNorm(["reg", "cls"], alpha=0.5, lr=0.05, shared=trunk[2].weight)
    >>> opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    >>> _ = Trainer(model, Phase(step, opt, {"train": data}, combiner=gn), max_steps=30).fit()
    >>> w = gn(torch.ones(2))
    >>> round(float(w.sum()), 4), bool(w[0] < w[1])    # the big regression loss weighs less
    (2.0, True)
    """

    sums_to_n_tasks = True
    needs_shared = True
    initial_losses: Tensor
    _init_count: Tensor
    _steps: Tensor

    def __init__(
        self,
        tasks: int | Sequence[str],
        alpha: float = 1.5,
        lr: float = 0.025,
        shared: Sequence[Tensor] | Tensor | nn.Module | None = None,
        n_init: int = 5,
        min_weight: float = 1e-6,
        optimizer: OptimizerFactory | None = None,
    ) -> None:
        super().__init__(tasks)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0; got {alpha}")
        if lr <= 0:
            raise ValueError(f"lr must be > 0; got {lr}")
        if n_init < 1:
            raise ValueError(f"n_init must be >= 1; got {n_init}")
        if not 0 < min_weight < 1:
            raise ValueError(f"min_weight must be in (0, 1); got {min_weight}")
        self.alpha = alpha
        self.n_init = n_init
        self.min_weight = min_weight
        self._shared_params = None if shared is None else _as_tensor_list(shared)
        self.weights = nn.Parameter(torch.ones(self.n_tasks))
        self.optimizer = (optimizer or _adam(lr))([self.weights])
        self.register_buffer("initial_losses", torch.zeros(self.n_tasks))
        self.register_buffer("_init_count", torch.zeros(self.n_tasks))
        self.register_buffer("_steps", torch.zeros((), dtype=torch.long))

    def forward(self, losses: Tensor) -> Tensor:
        self._check_losses(losses)
        return self.weights.detach().to(losses, copy=True)

    def grad_norms(self, losses: Sequence[Tensor | None], shared: Sequence[Tensor]) -> Tensor:
        """``||grad_W L_i||`` per task (0 for absent tasks), shape ``(T,)``, no graph kept.

        One ``torch.autograd.grad`` per task with respect to ``W`` only (``retain_graph``
        for the network's own backward; no ``create_graph``); nothing goes into ``.grad``.
        """
        self._check_terms(losses)
        if is_distributed():
            return self._global_grad_norms(losses, shared)
        norms = []
        for loss in losses:
            if loss is None:
                norms.append(torch.zeros((), device=shared[0].device))
                continue
            grads = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
            found = [g for g in grads if g is not None]
            if not found:
                norms.append(torch.zeros((), device=shared[0].device))
            elif len(found) == 1:
                norms.append(torch.linalg.vector_norm(found[0]))
            else:
                norms.append(torch.linalg.vector_norm(
                    torch.stack([torch.linalg.vector_norm(g) for g in found])))
        return torch.stack(norms)

    def _global_grad_norms(self, losses: Sequence[Tensor | None], shared: Sequence[Tensor]
                           ) -> Tensor:
        """Under ``torch.distributed``: the norms of ``grad_W L_i`` of the global batch. Each
        rank's per-task gradients (its shard's mean loss) are averaged over the ranks that
        have the task (one all-reduce of a ``(T, |W| + 1)`` matrix), then normed, so with
        equal shards the norms are those of one process with the whole batch."""
        rows = []
        for loss in losses:
            grads = None if loss is None else torch.autograd.grad(
                loss, shared, retain_graph=True, allow_unused=True)
            flat = [(g if g is not None else torch.zeros_like(w)).reshape(-1)
                    for g, w in zip(grads or [None] * len(shared), shared, strict=True)]
            flag = torch.ones(1) if loss is not None else torch.zeros(1)
            rows.append(torch.cat(flat + [flag.to(flat[0])]))
        total = sum_across_ranks(torch.stack(rows))
        mean = total[:, :-1] / total[:, -1:].clamp_min(1)
        return torch.linalg.vector_norm(mean, dim=1)

    def update(self, losses: Sequence[Tensor | None], shared: Sequence[Tensor] | None) -> None:
        self._check_terms(losses)
        if shared is None or not any(t.requires_grad for t in shared):
            raise ValueError("GradNorm needs the shared layer's weights, requiring grad")
        vec, present = self._values(losses)
        vec = vec.to(self.initial_losses)
        present = present.to(self.initial_losses.device)
        steps = int(self._steps)
        self._steps += 1
        p = present.to(self.initial_losses)
        if steps < self.n_init:
            with torch.no_grad():
                self.initial_losses.mul_(self._init_count).add_(vec * p)
                self._init_count.add_(p)
                self.initial_losses.div_(self._init_count.clamp_min(1))
            return
        mask = present & (self._init_count > 0)
        if not bool(mask.any()):
            return
        if any(t is not None and not t.requires_grad for t in losses):
            raise ValueError("GradNorm needs losses with their graph to the shared layer")
        norms = self.grad_norms(losses, shared).to(self.weights)
        with torch.no_grad():
            w = self.weights.detach()
            G = w * norms
            G_bar = G[mask].mean()
            ratio = vec / self.initial_losses.clamp_min(torch.finfo(vec.dtype).tiny)
            r = ratio / ratio[mask].mean()
            target = G_bar * r.clamp_min(0).pow(self.alpha)
            grad = torch.sign(G - target) * norms * mask.to(w)
        self.optimizer.zero_grad(set_to_none=True)
        self.weights.grad = grad
        self.optimizer.step()
        with torch.no_grad():
            self.weights.clamp_(min=self.min_weight)
            self.weights.mul_(self.n_tasks / self.weights.sum())

    def get_extra_state(self) -> dict[str, Any]:
        return {**super().get_extra_state(), "optimizer": _optimizer_state(self.optimizer)}

    def set_extra_state(self, state: Any) -> None:
        super().set_extra_state(state)
        self.optimizer.load_state_dict(state["optimizer"])
