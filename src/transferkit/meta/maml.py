"""MAML: model-agnostic meta-learning of an initialisation (Finn, Abbeel, Levine, ICML 2017).

https://arxiv.org/abs/1703.03400. For each task of a meta-batch the inner loop takes
``inner_steps`` gradient steps from the shared parameters theta on the task's support set,
``phi = theta - alpha * grad L_support(theta)``; the meta-loss is the mean over tasks of
the query loss at ``phi``, and an outer optimiser (Adam in the paper) steps theta on it.

- Second order (the paper's MAML) differentiates through the inner steps;
  ``first_order=True`` (FOMAML, the paper's section 5.2) treats the inner gradients as
  constants, so the meta-gradient is the query gradient at phi and no inner graph is kept.
- ``learn_inner_lr=True`` is Meta-SGD (Li et al. 2017, arXiv 1707.09835): one learned step
  size per parameter entry, initialised at ``inner_lr`` and meta-learned with theta.
- ``adapt=("head",)`` is ANIL (Raghu et al. 2020, arXiv 1909.09157): only the parameters
  whose names start with these prefixes are adapted in the inner loop; all are
  meta-learned.

The inner loop is written with :mod:`torch.func`: ``functional_call`` runs the user's
module with the task's fast weights, ``grad`` takes the support gradient, and ``vmap`` maps
the whole task over the meta-batch (``vectorize=False`` loops over tasks instead, for
modules with operations ``vmap`` does not support). Nothing is stored between calls, so
memory does not grow across meta-iterations.

Batch normalisation has an explicit policy (``batch_norm``):

- ``"transductive"`` (the reference MAML code): every forward pass, at meta-training and at
  meta-test alike, normalises with the statistics of the batch it is given (the support or
  the query set of one task), and no running statistics are kept. The model's batch-norm
  layers are changed in place for this (``torch.func.replace_all_batch_norm_modules_``).
- ``"frozen"``: batch-norm layers always use their running statistics as they are (e.g.
  from pre-training) and never update them.
- ``"per-step"`` (MAML++, Antoniou et al. 2019, arXiv 1810.09502): each inner step k (and
  the query pass, step ``inner_steps``) keeps its own running statistics, buffers
  ``running_mean_step{k}`` / ``running_var_step{k}`` beside each layer's own; in training
  mode every pass normalises with its batch and updates its step's statistics, and in eval
  mode it uses them (each inner step's statistics are updated by one extra forward pass
  without gradients). The model returned by :meth:`MAML.adapt` carries the query step's
  statistics. The in-place updates rule out ``vmap``: this policy needs
  ``vectorize=False``. (MAML++'s per-step batch-norm weights and biases are not included.)
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from .._errors import shape_errors
from ..train.interface import StepContext, Update

__all__ = ["BATCH_NORM_POLICIES", "MAML", "maml_step"]

BATCH_NORM_POLICIES = ("transductive", "frozen", "per-step")
LossFn = Callable[[Tensor, Tensor], Tensor]


def _batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextlib.contextmanager
def _frozen_batch_norm(model: nn.Module, frozen: bool) -> Iterator[None]:
    """Batch-norm layers in eval mode (running statistics, no updates) inside the block."""
    layers = [m for m in _batch_norms(model) if m.training] if frozen else []
    for m in layers:
        m.eval()
    try:
        yield
    finally:
        for m in layers:
            m.train()


@contextlib.contextmanager
def _no_stat_updates(model: nn.Module, active: bool) -> Iterator[None]:
    """Training-mode batch norm that normalises with its batch but updates nothing."""
    layers = [m for m in _batch_norms(model) if m.track_running_stats] if active else []
    for m in layers:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in layers:
            m.track_running_stats = True


class MAML(nn.Module):
    """Meta-learn an initialisation of ``model`` that adapts to a new task in a few steps.

    Parameters
    ----------
    model : nn.Module
        Any module mapping a batch of inputs to outputs; its parameters are theta.
    loss_fn : callable(outputs, targets) -> scalar tensor
        E.g. ``torch.nn.functional.mse_loss`` (regression) or ``cross_entropy``.
    inner_lr : float
        alpha, the inner step size (the initial one with ``learn_inner_lr``).
    inner_steps : int
        Inner gradient steps per task at meta-training (and by default in :meth:`adapt`).
    first_order : bool
        FOMAML: drop the second-order term of the meta-gradient.
    learn_inner_lr : bool
        Meta-SGD: a learned step size per parameter entry.
    adapt : sequence of str, optional
        Prefixes of the parameter names adapted in the inner loop (ANIL: the head's);
        all parameters by default.
    batch_norm : {"transductive", "frozen", "per-step"}
        See the module's docstring.
    vectorize : bool
        ``vmap`` over the tasks of a meta-batch (default) or loop over them.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from transferkit.meta import MAML, SinusoidTasks
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 1))
    >>> maml = MAML(net, torch.nn.functional.mse_loss, inner_lr=0.01)
    >>> opt = torch.optim.Adam(maml.parameters(), lr=1e-3)
    >>> tasks = SinusoidTasks(k_support=10, k_query=10)
    >>> g = torch.Generator().manual_seed(0)
    >>> for _ in range(3):
    ...     loss = maml(*tasks.meta_batch(25, g))
    ...     opt.zero_grad(); loss.backward(); opt.step()
    >>> task = tasks.sample(g)
    >>> adapted = maml.adapt(task.support_x, task.support_y)   # a new module; net unchanged
    >>> adapted(task.query_x).shape
    torch.Size([10, 1])
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        first_order: bool = False,
        learn_inner_lr: bool = False,
        adapt: Sequence[str] | None = None,
        batch_norm: str = "transductive",
        vectorize: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module; got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError("loss_fn must be a callable(outputs, targets) -> scalar tensor")
        if isinstance(inner_steps, bool) or int(inner_steps) != inner_steps or inner_steps < 0:
            raise ValueError(f"inner_steps must be an integer >= 0; got {inner_steps!r}")
        if not inner_lr > 0:
            raise ValueError(f"inner_lr must be > 0; got {inner_lr}")
        if batch_norm not in BATCH_NORM_POLICIES:
            raise ValueError(f"batch_norm must be one of {BATCH_NORM_POLICIES}; got "
                             f"{batch_norm!r}")
        self.model = model
        self.loss_fn = loss_fn
        self.inner_steps = int(inner_steps)
        self.first_order = bool(first_order)
        self.batch_norm = batch_norm
        self.vectorize = bool(vectorize)
        names = [n for n, _ in model.named_parameters()]
        if adapt is None:
            self.adapted_names = names
        else:
            prefixes = (adapt,) if isinstance(adapt, str) else tuple(adapt)
            self.adapted_names = [n for n in names if n.startswith(prefixes)]
            if not self.adapted_names:
                raise ValueError(f"no parameter name starts with {list(prefixes)}; the "
                                 f"model's are {names}")
        self.inner_lr = float(inner_lr)
        self.inner_lrs = None
        if learn_inner_lr:
            params = dict(model.named_parameters())
            self.inner_lrs = nn.ParameterDict({
                n.replace(".", "__"): nn.Parameter(torch.full_like(params[n], self.inner_lr))
                for n in self.adapted_names
            })
        if batch_norm == "transductive" and _batch_norms(model):
            torch.func.replace_all_batch_norm_modules_(model)
        self._step_stats: list[tuple[str, str]] = []  # (module name, statistic)
        if batch_norm == "per-step":
            if self.vectorize:
                raise ValueError("batch_norm='per-step' updates running statistics in place, "
                                 "which vmap cannot do; pass vectorize=False")
            for name, m in model.named_modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    if m.running_mean is None or m.running_var is None:
                        raise ValueError(f"batch-norm layer {name!r} keeps no running "
                                         "statistics (track_running_stats=False)")
                    for stat in ("running_mean", "running_var"):
                        self._step_stats.append((name, stat))
                        for k in range(self.inner_steps + 1):
                            m.register_buffer(f"{stat}_step{k}", getattr(m, stat).clone())

    # ---------------------------------------------------------------- inner loop
    def _step_size(self, name: str) -> Tensor | float:
        if self.inner_lrs is None:
            return self.inner_lr
        return self.inner_lrs[name.replace(".", "__")]

    def _call(self, weights: Mapping[str, Tensor], x: Tensor, step: int | None = None) -> Tensor:
        """The model on ``x`` with ``weights``; with per-step batch norm, the running
        statistics of inner step ``step`` (clamped to the stored ones)."""
        weights = dict(weights)
        if self._step_stats and step is not None:
            k = min(step, self.inner_steps)
            for module, stat in self._step_stats:
                prefix = f"{module}." if module else ""
                weights[f"{prefix}{stat}"] = weights[f"{prefix}{stat}_step{k}"]
        return functional_call(self.model, weights, (x,))

    def adapted_weights(
        self, support_x: Tensor, support_y: Tensor, steps: int | None = None,
        weights: Mapping[str, Tensor] | None = None, create_graph: bool | None = None,
    ) -> dict[str, Tensor]:
        """Parameters and buffers after ``steps`` inner steps on one task's support set.

        ``create_graph`` (default: not ``first_order``) keeps the graph through the inner
        steps for the second-order meta-gradient.
        """
        if weights is None:
            weights = {**dict(self.model.named_parameters()), **dict(self.model.named_buffers())}
        second = (not self.first_order) if create_graph is None else create_graph
        fast = {n: weights[n] for n in self.adapted_names}
        rest = {n: v for n, v in weights.items() if n not in fast}
        for k in range(self.inner_steps if steps is None else int(steps)):

            def support_loss(f: dict[str, Tensor], k: int = k) -> Tensor:
                return self.loss_fn(self._call({**rest, **f}, support_x, k), support_y)

            if self._step_stats and self.model.training:
                # per-step statistics are updated by a plain pass outside the gradient
                # transform (which forbids in-place updates of captured buffers)
                with torch.no_grad():
                    self._call({**rest, **{n: v.detach() for n, v in fast.items()}},
                               support_x, k)
            with _no_stat_updates(self.model, bool(self._step_stats)):
                if second:
                    g = grad(support_loss)(fast)
                else:  # first order: constants, and no graph is built for them
                    with torch.no_grad():
                        g = grad(support_loss)({n: v.detach() for n, v in fast.items()})
            fast = {n: fast[n] - self._step_size(n) * g[n] for n in fast}
        return {**rest, **fast}

    def _task_loss(self, weights: dict[str, Tensor], sx: Tensor, sy: Tensor, qx: Tensor,
                   qy: Tensor) -> Tensor:
        adapted = self.adapted_weights(sx, sy, weights=weights)
        return self.loss_fn(self._call(adapted, qx, self.inner_steps), qy)

    def forward(self, support_x: Tensor, support_y: Tensor, query_x: Tensor,
                query_y: Tensor) -> Tensor:
        """The meta-loss: the mean over tasks of the query loss after inner adaptation.

        Each argument is stacked over tasks (first dimension = tasks of the meta-batch), as
        :meth:`transferkit.meta.TaskSampler.meta_batch` returns them.
        """
        batch = (support_x, support_y, query_x, query_y)
        if len({len(t) for t in batch}) != 1 or support_x.ndim < 2:
            raise ValueError(
                "support_x, support_y, query_x, query_y must be stacked over the same number "
                f"of tasks; got shapes {[tuple(t.shape) for t in batch]}"
            )
        weights = {**dict(self.model.named_parameters()), **dict(self.model.named_buffers())}
        with _frozen_batch_norm(self.model, self.batch_norm == "frozen"):
            if self.vectorize:
                losses = vmap(self._task_loss, in_dims=(None, 0, 0, 0, 0),
                              randomness="different")(weights, *batch)
            else:
                losses = torch.stack([self._task_loss(weights, *task) for task in zip(*batch,
                                                                                     strict=True)])
        return losses.mean()

    # ------------------------------------------------------------------- users
    def training_step(self, stream: str = "tasks") -> Callable[[nn.Module, Any, StepContext],
                                                               dict[str, Tensor]]:
        """The loop's step function that meta-trains this learner (:func:`maml_step`)."""
        return maml_step(stream)

    def update_rule(self) -> Update | None:
        """The loop's update for this learner: ``None``, the plain backward and step."""
        return None

    def adapt(self, support_x: Tensor, support_y: Tensor, steps: int | None = None) -> nn.Module:
        """A copy of the model adapted to one task's support set; the meta-parameters are
        left as they are. ``steps`` defaults to ``inner_steps``."""
        if len(support_x) == 0 or len(support_x) != len(support_y):
            raise ValueError(f"the support set needs as many targets as inputs, at least one; "
                             f"got {len(support_x)} inputs and {len(support_y)} targets")
        for name, t in (("support_x", support_x), ("support_y", support_y)):
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name} has NaN or infinite values")
        with _frozen_batch_norm(self.model, self.batch_norm == "frozen"):
            with shape_errors(f"the model and its loss cannot adapt on support_x of shape "
                              f"{tuple(support_x.shape)} and support_y of shape "
                              f"{tuple(support_y.shape)}"):
                adapted = self.adapted_weights(support_x, support_y, steps, create_graph=False)
        out = copy.deepcopy(self.model)
        with torch.no_grad():
            for name, value in out.named_parameters():
                value.copy_(adapted[name])
        if self.batch_norm == "frozen":
            for m in _batch_norms(out):
                m.eval()
        with torch.no_grad():  # per-step: the adapted model normalises as the query pass did
            for name, m in out.named_modules():
                for module, stat in self._step_stats:
                    if module == name:
                        getattr(m, stat).copy_(getattr(m, f"{stat}_step{self.inner_steps}"))
        return out


def maml_step(stream: str = "tasks") -> Callable[[nn.Module, Any, StepContext], dict[str, Tensor]]:
    """A step function for :class:`transferkit.train.Trainer` whose model is a :class:`MAML`
    and whose stream ``stream`` serves stacked meta-batches: loss ``"query"``.

    Examples
    --------
    >>> from transferkit.meta import SinusoidTasks
    >>> from transferkit.train import GeneratedStream, Phase, Trainer
    >>> maml = MAML(nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Linear(16, 1)),
    ...             nn.functional.mse_loss, inner_lr=0.01)
    >>> tasks = SinusoidTasks(k_support=5, k_query=5)
    >>> phase = Phase(maml_step(), torch.optim.Adam(maml.parameters(), 1e-3),
    ...               {"tasks": GeneratedStream(lambda g: tasks.meta_batch(4, g), seed=0)})
    >>> hist = Trainer(maml, phase, 3, seed=0, progress=False).fit()
    >>> len(hist.series("loss/query")[1])
    3
    """

    def step(model: nn.Module, batches: Any, ctx: StepContext) -> dict[str, Tensor]:
        return {"query": model(*batches[stream])}

    return step
