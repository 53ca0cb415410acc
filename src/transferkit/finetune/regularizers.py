"""The L2-SP family of fine-tuning regularisers (Li, Grandvalet, Davoine, ICML 2018).

Li, Grandvalet, Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional
Networks", ICML 2018, https://arxiv.org/abs/1802.01483.

Fine-tuning starts from pretrained weights ``w0``; these penalties keep the weights that
existed in the source model (the *pretrained* weights ``w_S``) close to that starting
point (SP), while the weights of newly added layers (``w_new``, e.g. a fresh classifier
head) get plain weight decay towards 0:

=================  ================================================================
``L2``             alpha/2 ||w_S||^2                          + beta/2 ||w_new||^2
``L2SP``           alpha/2 ||w_S - w0||^2                     + beta/2 ||w_new||^2
``L2SPFisher``     alpha/2 sum_j F_j (w_j - w0_j)^2           + beta/2 ||w_new||^2
``L1SP``           alpha   ||w_S - w0||_1                     + beta/2 ||w_new||^2
``GroupLassoSP``   alpha   sum_g sqrt(n_g) ||w_g - w0_g||_2   + beta/2 ||w_new||^2
=================  ================================================================

Conventions, taken from the authors' public TensorFlow code
(``holyseven/TransferLearningClassification``, ``model/network_base.py``):

- **which parameters count**: the ``weight`` of every ``nn.Linear``, ``nn.Conv1d``,
  ``nn.Conv2d`` and ``nn.Conv3d`` (the code penalises variables named ``weights``); no
  biases, no normalisation parameters (BatchNorm/LayerNorm scale and shift), no embeddings.
  :func:`penalized_parameters` lists them; pass ``params=`` to choose others explicitly.
- **constants**: the squared penalties carry a factor 1/2 (``tf.nn.l2_loss``); L1-SP and
  Group-Lasso-SP do not. The penalty is *added* to the mean cross-entropy of the batch.
- **Group-Lasso-SP groups** are the output units: one group per output channel of a
  convolution (all ``c_in * k_h * k_w`` weights that produce it) and one per output unit
  (row) of a linear layer, each weighted by ``sqrt(n_g)`` with ``n_g`` the group size,
  i.e. ``sqrt(k_h * k_w * c_in)`` (``sqrt(in_features)`` for a linear layer). The public
  code sums over the ``(k_h, k_w, c_in)`` axes of each TensorFlow kernel and multiplies by
  ``sqrt(k_h * k_w * c_in)``; it only handles 4-D conv kernels (a ResNet has no other
  pretrained weight), so the linear-layer rows are our extension. It adds 1e-16 under the
  square root; here the value is exact (0 at the start point) and the gradient of a group
  sitting exactly at its start point is 0 (a subgradient).
- **new versus pretrained**: a penalised parameter is *new* when its name matches one of
  ``new`` (a module or parameter name, matched as a prefix at ``.`` boundaries) or, when a
  ``source`` state dict is given, when the source has no entry of that name. Everything
  else is pretrained; its start point is the source's value (or the model's current value
  when no source is given), **cloned** at construction so later updates of the model or of
  the source never move it. A pretrained parameter whose shape differs from its start
  point raises a ``ValueError`` naming it.
- the optimiser must not add its own weight decay on top (``weight_decay=0``); the paper
  uses SGD with momentum 0.9.

The penalties are computed with multi-tensor (``torch._foreach_*``) kernels inside one
autograd node with a closed-form backward, so their cost does not grow with the number
of weight tensors the way a per-tensor Python loop does (``benchmarks/bench_regularizers.py``).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .._registry import Registry
from ..train.interface import Update
from .methods import register_finetune_method

__all__ = [
    "PenaltyUpdate",
    "L1SP",
    "L2",
    "L2SP",
    "L2SPFisher",
    "GroupLassoSP",
    "WEIGHT_MODULES",
    "fisher_diagonal",
    "penalized_parameters",
]

#: Module types whose ``weight`` is penalised by default (the paper's conv/FC weights).
WEIGHT_MODULES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

def penalized_parameters(model: nn.Module) -> list[str]:
    """Names of the parameters the L2-SP family penalises by default.

    The ``weight`` of every :data:`WEIGHT_MODULES` module (``nn.Linear``, ``nn.Conv1d``,
    ``nn.Conv2d``, ``nn.Conv3d``), as in the paper's public code: no biases, no
    normalisation parameters. Tied weights are listed once, under their first name.

    Examples
    --------
    >>> from torch import nn
    >>> penalized_parameters(nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2)))
    ['0.weight', '2.weight']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module; got {type(model).__name__}")
    named = dict(model.named_parameters())
    seen: set[int] = set()
    names = []
    for mname, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if not isinstance(module, WEIGHT_MODULES) or not isinstance(weight, nn.Parameter):
            continue
        if isinstance(weight, nn.parameter.UninitializedParameter):
            raise ValueError(
                f"{mname or 'the model'} has an uninitialised (lazy) weight; run one forward "
                "pass before building a regulariser"
            )
        name = f"{mname}.weight" if mname else "weight"
        if id(weight) in seen or name not in named:
            continue
        seen.add(id(weight))
        names.append(name)
    return names


def _matches(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _check_coef(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a non-negative number; got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return v


def _source_state(source: nn.Module | Mapping[str, Tensor] | None) -> Mapping[str, Tensor] | None:
    if source is None:
        return None
    if isinstance(source, nn.Module):
        return dict(source.named_parameters())
    if isinstance(source, Mapping):
        for key, value in source.items():
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"source[{key!r}] is a {type(value).__name__}; a source state dict maps "
                    "names to tensors"
                )
        return source
    raise TypeError(
        f"source must be an nn.Module or a state dict (name -> tensor); got {type(source).__name__}"
    )


class _PenaltyFn(torch.autograd.Function):
    """One autograd node for the whole penalty: value in ``forward``, closed-form gradient."""

    @staticmethod
    def forward(ctx: Any, penalty: FinetuneRegularizer, *params: Tensor) -> Tensor:
        k = penalty._n_pre
        with torch.no_grad():
            pre = list(params[:k])
            d = penalty._diffs(pre)
            fresh = list(params[k:])
            value = penalty._value(d, fresh)
        ctx.penalty, ctx.pre, ctx.d, ctx.fresh = penalty, pre, d, fresh
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        penalty: FinetuneRegularizer = ctx.penalty
        d = ctx.d
        if d is None:  # a second backward through a retained graph: the first consumed d
            with torch.no_grad():
                d = penalty._diffs(ctx.pre)
        ctx.d = None  # _grad may scale d in place (it is a private copy when there is a start)
        grads: list[Tensor | None] = list(penalty._grad(d, ctx.fresh, grad))
        for i, needed in enumerate(ctx.needs_input_grad[1:]):
            if not needed:
                grads[i] = None
        return (None, *grads)


def _fold(scalars: list[float], grad: Tensor) -> tuple[list[float], Tensor | None]:
    """Fold the incoming gradient into the per-tensor scalars when that costs no sync."""
    if grad.device.type == "cpu":
        g = float(grad)
        return [c * g for c in scalars], None
    return scalars, grad


def _stack(norms: Sequence[Tensor], dtype: torch.dtype | None) -> Tensor:
    if dtype is None:
        return torch.stack(list(norms))
    return torch.stack([n.to(dtype) for n in norms])


class FinetuneRegularizer(nn.Module):
    """Base class of the fine-tuning penalties: ``reg(model) -> scalar`` added to the loss.

    The shared machinery: which weights count, the pretrained/new split, the start point.
    Subclasses registered with :func:`register_regularizer` are built by name with
    :func:`create_regularizer`; ``needs_fisher`` says whether ``create_regularizer`` must be
    given a ``fisher=`` dict (as for :class:`L2SPFisher`).
    """

    _uses_start = True
    needs_fisher = False

    def __init__(
        self,
        model: nn.Module,
        alpha: float,
        beta: float,
        *,
        source: nn.Module | Mapping[str, Tensor] | None = None,
        new: Iterable[str] | None = None,
        params: Iterable[str] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module; got {type(model).__name__}")
        self._alpha = _check_coef("alpha", alpha)
        self._beta = _check_coef("beta", beta)
        named = dict(model.named_parameters())
        if params is None:
            names = penalized_parameters(model)
        else:
            if isinstance(params, str):
                raise TypeError("params must be a list of parameter names, not one string")
            names = list(params)
            unknown = [n for n in names if n not in named]
            if unknown:
                raise ValueError(
                    f"params names {unknown} are not parameters of {type(model).__name__}; "
                    f"its parameters are {sorted(named)}"
                )
        if not names:
            raise ValueError(
                f"{type(model).__name__} has no weight to penalise (no nn.Linear/nn.Conv "
                "weight); pass params=[...] with the names of the parameters to penalise"
            )
        state = _source_state(source)
        if state is None and new is None:
            raise ValueError(
                "say which parameters are new: pass new=[module or parameter names] (e.g. "
                "new=['head'] or new=[] if there is none) and/or source=<the pretrained model "
                "or its state dict> (parameters absent from the source are new)"
            )
        if isinstance(new, str):
            raise TypeError(f"new must be a list of names; got the string {new!r} (use [{new!r}])")
        prefixes = list(new or ())
        all_names = set(named) | {n for n, _ in model.named_modules()}
        missing = [p for p in prefixes if p not in all_names]
        if missing:
            raise ValueError(
                f"new names {missing} match no module or parameter of {type(model).__name__}"
            )

        pretrained, fresh = [], []
        for n in names:
            if _matches(n, prefixes) or (state is not None and n not in state):
                fresh.append(n)
            else:
                pretrained.append(n)
        self.pretrained_names: list[str] = pretrained
        self.new_names: list[str] = fresh
        self._buffer_names: list[str] = []
        if self._uses_start:
            for i, n in enumerate(pretrained):
                p = named[n]
                ref = state[n] if state is not None else p
                if tuple(ref.shape) != tuple(p.shape):
                    raise ValueError(
                        f"parameter {n!r} has shape {tuple(p.shape)} in the model but "
                        f"{tuple(ref.shape)} in the starting point; declare it new "
                        f"(new=[{n.rsplit('.', 1)[0]!r}]) or fix the source"
                    )
                start = ref.detach().to(device=p.device, dtype=p.dtype).clone()
                bname = f"start_{i}"
                self.register_buffer(bname, start)
                self._buffer_names.append(bname)
        self._model_ref = weakref.ref(model)
        self._params: list[Tensor] = [named[n] for n in pretrained + fresh]
        self._n_pre = len(pretrained)
        dtypes = {p.dtype for p in self._params}
        self._dtype: torch.dtype | None = None if len(dtypes) == 1 else torch.float64
        self._set_coefs()

    # ------------------------------------------------------------------ helpers
    def _set_coefs(self) -> None:
        self._scalars = [self._alpha] * self._n_pre + [self._beta] * len(self.new_names)
        self._coef_cache: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    @property
    def alpha(self) -> float:
        """Strength on the pretrained weights (settable)."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        self._alpha = _check_coef("alpha", value)
        self._set_coefs()

    @property
    def beta(self) -> float:
        """Strength on the new weights (settable)."""
        return self._beta

    @beta.setter
    def beta(self, value: float) -> None:
        self._beta = _check_coef("beta", value)
        self._set_coefs()

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha:g}, beta={self.beta:g}, pretrained={len(self.pretrained_names)}, "
            f"new={len(self.new_names)}"
        )

    def _starts(self) -> list[Tensor]:
        cached = self.__dict__.get("_start_list")
        if cached is None:
            cached = [self._buffers[b] for b in self._buffer_names]
            self.__dict__["_start_list"] = cached
        return cached

    def _apply(self, fn: Any, recurse: bool = True) -> FinetuneRegularizer:  # .to(), .double(), ...
        out = super()._apply(fn, recurse)
        self.__dict__.pop("_start_list", None)
        self.__dict__.pop("_sqrt_list", None)
        self._coef_cache = {}
        return out

    def start_point(self) -> dict[str, Tensor]:
        """The cloned starting point of each pretrained weight, by name (empty for L2)."""
        if not self._uses_start:
            return {}
        return dict(zip(self.pretrained_names, self._starts(), strict=True))

    def _resolve(self, model: nn.Module | None) -> list[Tensor]:
        owner = self._model_ref()
        if model is None or model is owner:
            if owner is None and model is None:
                raise ValueError("the model this regulariser was built for is gone; pass model")
            return self._params
        named = dict(model.named_parameters())
        out: list[Tensor] = []
        for n, p in zip(self.pretrained_names + self.new_names, self._params, strict=True):
            q = named.get(n)
            if q is None:
                raise ValueError(f"{type(model).__name__} has no parameter {n!r} to penalise")
            if q.shape != p.shape:
                raise ValueError(
                    f"parameter {n!r} has shape {tuple(q.shape)}; the regulariser was built "
                    f"for shape {tuple(p.shape)}"
                )
            out.append(q)
        return out

    def _diffs(self, pre: list[Tensor]) -> list[Tensor]:
        if not self._uses_start:
            return pre
        return list(torch._foreach_sub(pre, self._starts()))

    def forward(self, model: nn.Module | None = None) -> Tensor:
        """The penalty of ``model``'s current weights (a scalar tensor with gradients).

        ``model`` defaults to the model the regulariser was built for; another model with
        the same parameter names and shapes (a copy) also works.
        """
        params = self._follow(self._resolve(model))
        return _PenaltyFn.apply(self, *params)

    def _follow(self, params: list[Tensor]) -> list[Tensor]:
        """Move the start point to the weights' device and dtype when they moved."""
        starts = self._starts()
        if starts and (starts[0].device != params[0].device or starts[0].dtype != params[0].dtype):
            self.to(device=params[0].device, dtype=params[0].dtype)
        return params

    def _plain_quadratic(self) -> bool:
        """L2 or L2-SP: the base class's quadratic gradient with no Fisher weighting."""
        cls = type(self)
        return (cls._grad is FinetuneRegularizer._grad
                and cls._weighted is FinetuneRegularizer._weighted
                and cls._scale_pre_grad is FinetuneRegularizer._scale_pre_grad)

    @torch.no_grad()
    def add_grad_(self, model: nn.Module | None = None, scale: float = 1.0) -> None:
        """Add ``scale`` times the penalty's gradient to each weight's ``.grad``, in place.

        The same gradient as ``(scale * reg(model)).backward()`` (the closed form the
        autograd node uses), without building an autograd node: call it after
        ``loss.backward()`` and before the optimiser step. A weight without a gradient
        yet gets this one. The penalty's value is not computed.
        """
        params = self._follow(self._resolve(model))
        k = self._n_pre
        if self._plain_quadratic() and all(p.grad is not None for p in params):
            # grad += scale * (alpha (w - w0) on pretrained, beta w on new): in place, no copy
            pre, fresh = list(params[:k]), list(params[k:])
            g_pre: list[Tensor] = [p.grad for p in pre]  # type: ignore[misc]
            g_new: list[Tensor] = [p.grad for p in fresh]  # type: ignore[misc]
            a, b = float(scale) * self._alpha, float(scale) * self._beta
            if pre:
                torch._foreach_add_(g_pre, pre, alpha=a)
                if self._uses_start:
                    torch._foreach_add_(g_pre, self._starts(), alpha=-a)
            if fresh:
                torch._foreach_add_(g_new, fresh, alpha=b)
            return
        d = self._diffs(list(params[:k]))
        grads = self._grad(d, list(params[k:]),
                           torch.tensor(float(scale), dtype=params[0].dtype))
        have = [i for i, p in enumerate(params) if p.grad is not None]
        if have:
            current: list[Tensor] = [params[i].grad for i in have]  # type: ignore[misc]
            torch._foreach_add_(current, [grads[i] for i in have])
        for p, g in zip(params, grads, strict=True):
            if p.grad is None:
                p.grad = g.detach().clone()

    # ------------------------------------------------------ value and gradient
    # The default is the quadratic family (L2, L2-SP, L2-SP-Fisher):
    #   value = sum_t c_t / 2 * ||s_t * d_t||^2,  grad_t = c_t * s_t^2 * d_t,
    # with c_t = alpha (pretrained) or beta (new), s_t = sqrt(Fisher) or 1.
    def _weighted(self, d: list[Tensor]) -> list[Tensor]:
        return d

    def _half_coefs(self, like: Tensor) -> Tensor:
        key = (like.device, like.dtype)
        vec = self._coef_cache.get(key)
        if vec is None:
            k, m = self._n_pre, len(self.new_names)
            vec = torch.tensor([self.alpha / 2] * k + [self.beta / 2] * m, device=like.device,
                               dtype=like.dtype)
            self._coef_cache[key] = vec
        return vec

    def _value(self, d: list[Tensor], fresh: list[Tensor]) -> Tensor:
        v = _stack(torch._foreach_norm(self._weighted(d) + fresh), self._dtype)
        return torch.dot(v * v, self._half_coefs(v))

    def _grad(self, d: list[Tensor], fresh: list[Tensor], grad: Tensor) -> list[Tensor]:
        k = self._n_pre
        scal, post = _fold(self._scalars, grad)
        if not d:
            pre: list[Tensor] = []
        elif self._uses_start:  # d = w - w0 is our own copy: scale it in place
            torch._foreach_mul_(d, scal[:k])
            pre = d
        else:  # L2: d is the weights themselves
            pre = list(torch._foreach_mul(d, scal[:k]))
        self._scale_pre_grad(pre)
        out = pre + (list(torch._foreach_mul(fresh, scal[k:])) if fresh else [])
        if post is not None:
            torch._foreach_mul_(out, post)
        return out

    def _scale_pre_grad(self, g: list[Tensor]) -> None:
        pass


REGULARIZERS: Registry[type[FinetuneRegularizer]] = Registry(
    "fine-tuning regularizer", base=FinetuneRegularizer
)


def register_regularizer(
    name: str, *, method: str | None = "", alpha_scale: float = 1.0,
) -> Callable[[type[FinetuneRegularizer]], type[FinetuneRegularizer]]:
    """Class decorator adding a :class:`FinetuneRegularizer` subclass under ``name``.

    It is also offered as a fine-tuning method (``transferkit finetune --method``,
    :func:`~transferkit.finetune.prepare_finetune`) called ``method`` (by default ``name``;
    ``None`` offers none), whose ``--alpha auto`` grid is ``ALPHA_GRID * alpha_scale``.

    Examples
    --------
    >>> class Zero(FinetuneRegularizer):
    ...     def forward(self, model): return torch.zeros(())
    >>> with REGULARIZERS.temporary("zero-demo", Zero):
    ...     "zero-demo" in list_regularizers()
    True
    """

    def wrap(cls: type[FinetuneRegularizer]) -> type[FinetuneRegularizer]:
        REGULARIZERS.register(name, cls)
        if method is not None:
            register_finetune_method(method or name, penalty=name, alpha_scale=alpha_scale)
        return cls

    return wrap


def create_regularizer(name: str, **kwargs: Any) -> FinetuneRegularizer:
    """Build a registered penalty by name, e.g.
    ``create_regularizer("l2sp", model=net, alpha=0.01, beta=0.01, source=pretrained)``.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> reg = create_regularizer("l2sp", model=net, alpha=0.1, beta=0.0, new=["2"])
    >>> float(reg(net).detach())  # 0 at the start point (the new layer's beta is 0 here)
    0.0
    """
    cls = REGULARIZERS.get(name)
    if cls.needs_fisher and "fisher" not in kwargs:
        raise ValueError(f"regularizer {name!r} needs fisher= (see fisher_diagonal)")
    return cls(**kwargs)


def regularizer_class(name: str) -> type[FinetuneRegularizer]:
    """The class registered as ``name`` (to read ``needs_fisher`` before building one)."""
    return REGULARIZERS.get(name)


def list_regularizers() -> list[str]:
    """Names of the registered fine-tuning regularizers.

    Examples
    --------
    >>> list_regularizers()
    ['group-lasso-sp', 'l1sp', 'l2', 'l2sp', 'l2sp-fisher']
    """
    return REGULARIZERS.names()


@register_regularizer("l2", method="finetune")
class L2(FinetuneRegularizer):
    """L2 weight decay towards 0 (the fine-tuning baseline of Li et al., ICML 2018, https://arxiv.org/abs/1802.01483).

    ``Omega(w) = alpha/2 ||w_S||^2 + beta/2 ||w_new||^2`` over the weights of
    :func:`penalized_parameters`. It needs no start point, only the pretrained/new split.

    Parameters
    ----------
    model : nn.Module
        The model being fine-tuned (already with its new head).
    alpha : float
        Strength on the pretrained weights.
    beta : float
        Strength on the new weights.
    source : nn.Module or state dict, optional
        Parameters absent from it are new.
    new : list of str, optional
        Names (module or parameter prefixes) of the new layers. At least one of ``source``
        and ``new`` is required.
    params : list of str, optional
        Parameter names to penalise instead of the default conv/linear weights.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 2, bias=False))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.fill_(1.0)
    >>> round(L2(net, alpha=0.1, beta=0.0, new=[])().item(), 6)  # 0.1 / 2 * 6
    0.3
    """

    _uses_start = False


@register_regularizer("l2sp")
class L2SP(FinetuneRegularizer):
    """L2-SP: L2 towards the starting point (Li, Grandvalet, Davoine, ICML 2018, https://arxiv.org/abs/1802.01483).

    ``Omega(w) = alpha/2 ||w_S - w0||^2 + beta/2 ||w_new||^2``, where ``w_S`` are the
    penalised weights (conv/linear ``weight``, see :func:`penalized_parameters`) that exist
    in the source model, ``w0`` their pretrained values (cloned at construction) and
    ``w_new`` the weights of the new layers. Add it to the mean cross-entropy; train with
    SGD + momentum and no optimiser weight decay. The paper's defaults are alpha = 0.1,
    beta = 0.01.

    Parameters
    ----------
    model : nn.Module
        The model to fine-tune, already carrying the pretrained weights and its new layers.
    alpha : float
        Strength of the pull towards the starting point (pretrained weights).
    beta : float
        Weight decay of the new weights.
    source : nn.Module or state dict, optional
        The pretrained model (or its ``state_dict()``): its values are the starting point,
        and penalised parameters absent from it are new. Without it the starting point is
        the model's weights at construction.
    new : list of str, optional
        Module or parameter names (prefixes) of the new layers, e.g. ``["head"]`` or
        ``["4"]`` for the last layer of an ``nn.Sequential``; needed when the new layer has
        the same name as a source layer. At least one of ``source`` and ``new`` is required
        (``new=[]`` says there is no new layer).
    params : list of str, optional
        Parameter names to penalise instead of the default conv/linear weights.

    Attributes
    ----------
    pretrained_names, new_names : list of str
        The penalised parameters of each kind.

    Examples
    --------
    Fine-tune your own pretrained model on your own tensors:

    >>> import torch
    >>> from torch import nn
    >>> from transferkit.finetune import L2SP
    >>> from transferkit.train import Stream, classification_step, fit, seeded
    >>> with seeded(0):
    ...     net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))  # "pretrained"
    ...     net[2] = nn.Linear(16, 3)                                          # new head
    >>> x, y = torch.randn(60, 8), torch.randint(0, 3, (60,))
    >>> reg = L2SP(net, alpha=0.1, beta=0.01, new=["2"])
    >>> reg.pretrained_names, reg.new_names
    (['0.weight'], ['2.weight'])
    >>> bool(reg() > 0)  # at the start only the new head's weight decay is non-zero
    True
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)  # no weight decay
    >>> step = classification_step(regularizer=reg)  # cross-entropy + penalty
    >>> hist = fit(net, step, {"train": Stream(x, y, batch_size=20)}, opt, max_steps=30, seed=0)
    >>> hist.last("loss/ce") < hist.series("loss/ce")[1][0]
    True
    >>> torch.equal(reg.start_point()["0.weight"], net[0].weight)  # the start is a copy
    False
    """


@register_regularizer("l2sp-fisher")
class L2SPFisher(FinetuneRegularizer):
    """L2-SP-Fisher: L2-SP weighted by the source's diagonal Fisher (Li et al., ICML 2018, https://arxiv.org/abs/1802.01483).

    ``Omega(w) = alpha/2 sum_j F_j (w_j - w0_j)^2 + beta/2 ||w_new||^2``, where ``F`` is
    the diagonal Fisher information of the source model on source data
    (:func:`fisher_diagonal`), so weights the source task relies on are held more firmly.

    Parameters
    ----------
    model : nn.Module
    fisher : mapping of str -> Tensor
        Diagonal Fisher of each pretrained weight (same shape as the weight); extra keys
        are ignored, a missing pretrained weight is an error. Negative values are an error.
        Like the start point it is cloned.
    alpha, beta, source, new, params
        As for :class:`L2SP`.
    eps : float
        Added to the Fisher (the public code's ``fisher_epsilon``), default 0.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 1, bias=False))
    >>> fisher = {"0.weight": torch.tensor([[4.0, 0.0]])}
    >>> reg = L2SPFisher(net, fisher, alpha=1.0, beta=0.0, new=[])
    >>> with torch.no_grad():
    ...     _ = net[0].weight.add_(1.0)
    >>> round(reg().item(), 6)  # 1/2 * (4 * 1 + 0 * 1)
    2.0
    """

    needs_fisher = True

    def __init__(
        self,
        model: nn.Module,
        fisher: Mapping[str, Tensor],
        alpha: float = 0.1,
        beta: float = 0.01,
        *,
        source: nn.Module | Mapping[str, Tensor] | None = None,
        new: Iterable[str] | None = None,
        params: Iterable[str] | None = None,
        eps: float = 0.0,
    ) -> None:
        super().__init__(model, alpha, beta, source=source, new=new, params=params)
        if not isinstance(fisher, Mapping):
            raise TypeError(f"fisher must be a mapping name -> tensor; got {type(fisher).__name__}")
        eps = _check_coef("eps", eps)
        self._sqrt_names: list[str] = []
        for i, (n, start) in enumerate(zip(self.pretrained_names, self._starts(), strict=True)):
            if n not in fisher:
                raise ValueError(
                    f"fisher has no entry for the pretrained weight {n!r} "
                    f"(it has {sorted(fisher)[:8]}{'...' if len(fisher) > 8 else ''})"
                )
            f = fisher[n]
            if not isinstance(f, Tensor) or tuple(f.shape) != tuple(start.shape):
                shape = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
                raise ValueError(
                    f"fisher[{n!r}] has shape {shape}; the weight has shape {tuple(start.shape)}"
                )
            if bool((f < 0).any()) or not bool(torch.isfinite(f).all()):
                raise ValueError(f"fisher[{n!r}] must be finite and >= 0")
            sq = (f.detach().to(device=start.device, dtype=start.dtype) + eps).sqrt()
            self.register_buffer(f"sqrt_fisher_{i}", sq)
            self._sqrt_names.append(f"sqrt_fisher_{i}")

    def _sqrt_f(self) -> list[Tensor]:
        cached = self.__dict__.get("_sqrt_list")
        if cached is None:
            cached = [self._buffers[b] for b in self._sqrt_names]
            self.__dict__["_sqrt_list"] = cached
        return cached

    def _weighted(self, d: list[Tensor]) -> list[Tensor]:
        return list(torch._foreach_mul(d, self._sqrt_f()))

    def _scale_pre_grad(self, g: list[Tensor]) -> None:
        s = self._sqrt_f()
        torch._foreach_mul_(g, s)
        torch._foreach_mul_(g, s)


@register_regularizer("l1sp", alpha_scale=0.01)
class L1SP(FinetuneRegularizer):
    """L1-SP: L1 distance to the starting point (Li, Grandvalet, Davoine, ICML 2018, https://arxiv.org/abs/1802.01483).

    ``Omega(w) = alpha ||w_S - w0||_1 + beta/2 ||w_new||^2`` (no 1/2 on the L1 term, as
    in the public code). The gradient of ``|t|`` at ``t = 0`` is taken as 0.

    Parameters
    ----------
    model, alpha, beta, source, new, params
        As for :class:`L2SP`.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 1, bias=False))
    >>> reg = L1SP(net, alpha=0.5, beta=0.0, new=[])
    >>> with torch.no_grad():
    ...     _ = net[0].weight.add_(torch.tensor([[1.0, -3.0]]))
    >>> round(reg().item(), 6)  # 0.5 * (1 + 3)
    2.0
    """

    def _value(self, d: list[Tensor], fresh: list[Tensor]) -> Tensor:
        total = (d or fresh)[0].new_zeros((), dtype=self._dtype)
        if d:
            total = total + self.alpha * _stack(torch._foreach_norm(d, 1), self._dtype).sum()
        if fresh:
            v = _stack(torch._foreach_norm(fresh), self._dtype)
            total = total + (0.5 * self.beta) * torch.dot(v, v)
        return total

    def _grad(self, d: list[Tensor], fresh: list[Tensor], grad: Tensor) -> list[Tensor]:
        k = self._n_pre
        scal, post = _fold(self._scalars, grad)
        if d:
            torch._foreach_sign_(d)  # d = w - w0 is our own copy
            torch._foreach_mul_(d, scal[:k])
        out = d + (list(torch._foreach_mul(fresh, scal[k:])) if fresh else [])
        if post is not None:
            torch._foreach_mul_(out, post)
        return out


@register_regularizer("group-lasso-sp", alpha_scale=0.01)
class GroupLassoSP(FinetuneRegularizer):
    """Group-Lasso-SP: per-output-unit L2 distances to the start (Li et al., ICML 2018, https://arxiv.org/abs/1802.01483).

    ``Omega(w) = alpha sum_g sqrt(n_g) ||w_g - w0_g||_2 + beta/2 ||w_new||^2``. A group
    ``g`` is one output unit of a pretrained layer: one output channel of a convolution
    (its ``c_in/groups * k_h * k_w`` weights; ``weight[j]``) or one row of a linear layer
    (``in_features`` weights), and ``n_g`` is that count, i.e. the paper's coefficient
    ``sqrt(k_h * k_w * c_in)``. Groups that stay at their start point contribute 0 and get
    a zero (sub)gradient.

    Parameters
    ----------
    model, alpha, beta, source, new, params
        As for :class:`L2SP`; with ``params``, groups are taken along dimension 0.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 2, bias=False))
    >>> reg = GroupLassoSP(net, alpha=1.0, beta=0.0, new=[])
    >>> with torch.no_grad():
    ...     _ = net[0].weight[0].add_(torch.tensor([3.0, 4.0, 0.0, 0.0]))
    >>> round(reg().item(), 6)  # sqrt(4) * ||(3, 4, 0, 0)|| for output unit 0; unit 1 has not moved
    10.0
    """

    def _group_norms(self, d: list[Tensor]) -> list[Tensor]:
        return [t.reshape(t.shape[0], -1).norm(dim=1) if t.dim() > 0 else t.abs() for t in d]

    @staticmethod
    def _coef(t: Tensor) -> float:
        return math.sqrt(t.numel() / t.shape[0]) if t.dim() > 0 and t.shape[0] else 1.0

    def _value(self, d: list[Tensor], fresh: list[Tensor]) -> Tensor:
        total = (d or fresh)[0].new_zeros((), dtype=self._dtype)
        for t, n in zip(d, self._group_norms(d), strict=True):
            total = total + (self.alpha * self._coef(t)) * n.sum()
        if fresh:
            v = _stack(torch._foreach_norm(fresh), self._dtype)
            total = total + (0.5 * self.beta) * torch.dot(v, v)
        return total

    def _grad(self, d: list[Tensor], fresh: list[Tensor], grad: Tensor) -> list[Tensor]:
        out = []
        for t, n in zip(d, self._group_norms(d), strict=True):
            safe = torch.where(n > 0, n, torch.ones_like(n))
            scale = torch.where(n > 0, (self.alpha * self._coef(t)) / safe, torch.zeros_like(n))
            out.append(t * scale.reshape((-1,) + (1,) * (t.dim() - 1)))
        out += list(torch._foreach_mul(fresh, self.beta)) if fresh else []
        torch._foreach_mul_(out, grad)
        return out


# ----------------------------------------------------------------------- Fisher
def _batches(
    data: Tensor | Iterable[Any], labels: Tensor | None, batch_size: int
) -> Iterator[tuple[Tensor, Tensor | None]]:
    if isinstance(data, Tensor):
        if labels is not None and len(labels) != len(data):
            raise ValueError(f"labels has {len(labels)} rows; data has {len(data)}")
        for i in range(0, len(data), batch_size):
            yield data[i : i + batch_size], None if labels is None else labels[i : i + batch_size]
        return
    if labels is not None:
        raise ValueError("labels= goes with a data tensor; an iterable of batches carries its own")
    for batch in data:
        if isinstance(batch, Tensor):
            yield batch, None
        elif isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
            y = batch[1] if len(batch) > 1 and isinstance(batch[1], Tensor) else None
            yield batch[0], y
        else:
            raise TypeError(
                f"each batch must be a tensor or a tuple (x, y, ...); got {type(batch).__name__}"
            )


def fisher_diagonal(
    model: nn.Module,
    data: Tensor | Iterable[Any],
    labels: Tensor | None = None,
    *,
    mode: str = "expected",
    names: Iterable[str] | None = None,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    log_prob: Callable[[Tensor], Tensor] | None = None,
) -> dict[str, Tensor]:
    """Diagonal Fisher information of a classifier on (source) data, for :class:`L2SPFisher`.

    Li, Grandvalet, Davoine, ICML 2018, https://arxiv.org/abs/1802.01483 (section 3, L2-SP-Fisher).

    ``F_j = 1/m sum_i E_{y ~ p(y | x_i)} [ (d/dw_j log p(y | x_i; w0))^2 ]``: the mean over
    the ``m`` examples of the squared per-example gradient of the log-likelihood at the
    current (pretrained) weights. Per-example gradients are computed with ``torch.func``
    (``vmap`` of ``grad`` over a functional call of ``model``), in eval mode (dropout off,
    batch-norm running statistics), without changing the model.

    Parameters
    ----------
    model : nn.Module
        The source model, with its source head; ``model(x)`` returns class scores (logits)
        of shape (batch, n_classes).
    data : Tensor or iterable of batches
        Source inputs ``(m, ...)``, or an iterable (e.g. a ``DataLoader``) of tensors or of
        tuples ``(x, y, ...)``.
    labels : Tensor, optional
        ``(m,)`` int64 labels for ``mode="empirical"`` when ``data`` is a tensor.
    mode : {"expected", "sampled", "empirical"}
        How ``y`` is drawn: ``"expected"`` sums over every class weighted by the model's
        probabilities (the true Fisher, one gradient per class and example; the paper's
        estimator); ``"sampled"`` draws one ``y ~ p(y | x)`` per example (unbiased, cheaper
        with many classes; uses ``generator``); ``"empirical"`` uses the data's labels
        (the "empirical Fisher", a different quantity).
    names : iterable of str, optional
        Parameters to return; by default :func:`penalized_parameters` of ``model``.
    batch_size : int
        Examples per vectorised batch when ``data`` is a tensor.
    generator : torch.Generator, optional
        For ``mode="sampled"`` (on the data's device).
    log_prob : callable, optional
        Turns the model's output into log-probabilities; ``log_softmax`` by default.

    Returns
    -------
    dict of str -> Tensor
        One tensor per parameter, of the parameter's shape, non-negative.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from transferkit.train import seeded
    >>> with seeded(0):
    ...     net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    >>> fisher = fisher_diagonal(net, x)
    >>> sorted(fisher), fisher["0.weight"].shape, bool((fisher["2.weight"] >= 0).all())
    (['0.weight', '2.weight'], torch.Size([8, 4]), True)
    """
    from torch.func import functional_call, grad, vmap

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module; got {type(model).__name__}")
    if mode not in ("expected", "sampled", "empirical"):
        raise ValueError(f"mode must be 'expected', 'sampled' or 'empirical'; got {mode!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    named = dict(model.named_parameters())
    wanted = penalized_parameters(model) if names is None else list(names)
    unknown = [n for n in wanted if n not in named]
    if unknown:
        raise ValueError(f"names {unknown} are not parameters of {type(model).__name__}")
    if not wanted:
        raise ValueError("no parameter to compute the Fisher of")
    to_logp = log_prob if log_prob is not None else (lambda out: F.log_softmax(out, dim=-1))

    params = {n: p.detach() for n, p in named.items()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    targets = {n: params[n] for n in wanted}
    others = {n: p for n, p in params.items() if n not in targets}

    def logp_all(tp: dict[str, Tensor], x: Tensor) -> Tensor:
        out = functional_call(model, ({**others, **tp}, buffers), (x.unsqueeze(0),))
        return to_logp(out)[0]

    def logp_one(tp: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return logp_all(tp, x).gather(0, y.reshape(1)).squeeze(0)

    per_example = vmap(grad(logp_one), in_dims=(None, 0, 0))
    total = {n: torch.zeros_like(p) for n, p in targets.items()}
    count = 0
    was_training = model.training
    model.eval()
    try:
        for x, y in _batches(data, labels, batch_size):
            if len(x) == 0:
                continue
            pairs: list[tuple[Tensor, Tensor | None]]
            if mode == "empirical":
                if y is None:
                    raise ValueError("mode='empirical' needs labels (labels= or (x, y) batches)")
                pairs = [(y.to(x.device).long(), None)]
            else:
                with torch.no_grad():
                    probs = to_logp(functional_call(model, (params, buffers), (x,))).exp()
                if mode == "sampled":
                    drawn = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                    pairs = [(drawn, None)]
                else:
                    pairs = [
                        (torch.full((len(x),), c, dtype=torch.long, device=x.device), probs[:, c])
                        for c in range(probs.shape[1])
                    ]
            for yy, weight in pairs:
                grads = per_example(targets, x, yy)
                for n, g in grads.items():
                    sq = g.square()
                    if weight is not None:
                        sq = sq * weight.reshape((-1,) + (1,) * (sq.dim() - 1))
                    total[n] += sq.sum(0)
            count += len(x)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("data has no examples")
    return {n: t / count for n, t in total.items()}


class PenaltyUpdate(Update):
    """The loop's update with a fine-tuning penalty applied without an autograd node.

    Before each optimiser step (and before clipping, as when the penalty is in the
    loss) the penalty's gradient is added in place to the weights' gradients by
    :meth:`FinetuneRegularizer.add_grad_`. The update equals the one of adding
    ``reg(model)`` to the loss (to float rounding); the penalty's value is not logged.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from transferkit.train import Phase, Stream, Trainer, classification_step
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> reg = L2SP(model, alpha=0.1, beta=0.01, new=["2"])
    >>> x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    >>> phase = Phase(classification_step(), torch.optim.SGD(model.parameters(), lr=0.1),
    ...               {"train": Stream(x, y, batch_size=8, seed=0)}, update=PenaltyUpdate(reg))
    >>> _ = Trainer(model, phase, max_steps=4, seed=0).fit()
    """

    def __init__(self, regularizer: FinetuneRegularizer, scale: float = 1.0,
                 **update_kwargs: Any) -> None:
        if update_kwargs.get("autocast") == torch.float16:
            raise ValueError("PenaltyUpdate does not support float16 loss scaling; add the "
                             "penalty to the loss instead")
        super().__init__(**update_kwargs)
        if not isinstance(regularizer, FinetuneRegularizer):
            raise TypeError(f"regularizer must be a FinetuneRegularizer; got "
                            f"{type(regularizer).__name__}")
        self.regularizer = regularizer
        self.scale = float(scale)

    def _step(self, phase: Any, scaler: Any) -> None:
        self.regularizer.add_grad_(scale=self.scale)
        super()._step(phase, scaler)
