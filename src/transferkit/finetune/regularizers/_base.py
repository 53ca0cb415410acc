"""The base of the fine-tuning penalties (:class:`FinetuneRegularizer`): which weights count,
the pretrained/new split, the start point, the multi-tensor autograd node; and the
registry."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ..._registry import Registry
from ..methods import register_finetune_method

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
    given a ``fisher=`` dict (as for :class:`L2SPFisher`). Non-finite weights give a
    non-finite penalty, which the training loop's non-finite policy stops (no check per
    step).

    Examples
    --------
    Every penalty is called on the model and returns a scalar to add to the loss; the split
    into pretrained and new weights is the base class's:

    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> reg = create_regularizer("l2sp", model=net, alpha=0.1, beta=0.01, new=["2"])
    >>> reg.pretrained_names, reg.new_names
    (['0.weight'], ['2.weight'])
    >>> with torch.no_grad():
    ...     _ = net[0].weight.add_(1.0)              # move away from the start point
    >>> bool(reg(net) > 0)
    True
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
    """The class registered as ``name`` (to read ``needs_fisher`` before building one).

    Examples
    --------
    >>> regularizer_class("l2sp-fisher").needs_fisher, regularizer_class("l2sp").needs_fisher
    (True, False)
    """
    return REGULARIZERS.get(name)


def list_regularizers() -> list[str]:
    """Names of the registered fine-tuning regularizers.

    Examples
    --------
    >>> list_regularizers()
    ['group-lasso-sp', 'l1sp', 'l2', 'l2sp', 'l2sp-fisher']
    """
    return REGULARIZERS.names()
