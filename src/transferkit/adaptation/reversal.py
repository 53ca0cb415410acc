"""Gradient reversal, the domain discriminator and DANN's schedules.

Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015
(https://proceedings.mlr.press/v37/ganin15.html); Ganin et al., JMLR 2016
(https://jmlr.org/papers/v17/15-239.html).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["AnnealedLR", "DomainDiscriminator", "GradientReversal", "annealed_lr_factor",
           "annealed_lr_scheduler", "grad_reverse", "grl_lambda"]


class _GradientReversal(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by ``-coeff`` backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, coeff: float) -> Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * -ctx.coeff, None  # one op; (-g) * c and g * (-c) are the same bits


def grad_reverse(x: Tensor, coeff: float = 1.0) -> Tensor:
    """Gradient reversal layer.

    Ganin & Lempitsky, ICML 2015, https://proceedings.mlr.press/v37/ganin15.html.

    The identity in the forward pass; in the backward pass the gradient is multiplied by
    ``-coeff``. Placed between a feature extractor and a domain discriminator it lets one
    optimiser train the discriminator to tell the domains apart while the features are
    trained to confuse it.

    Parameters
    ----------
    x : Tensor, any shape
    coeff : float
        Non-negative scale of the reversed gradient (DANN's lambda).

    Returns
    -------
    Tensor
        ``x`` (a view), with the reversed gradient attached.

    Examples
    --------
    >>> import torch
    >>> x = torch.ones(3, requires_grad=True)
    >>> grad_reverse(x, 0.5).sum().backward()
    >>> x.grad
    tensor([-0.5000, -0.5000, -0.5000])
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"grad_reverse expects a Tensor; got {type(x).__name__}")
    coeff = float(coeff)
    if not math.isfinite(coeff) or coeff < 0:
        raise ValueError(f"coeff must be a finite number >= 0; got {coeff}")
    out: Tensor = _GradientReversal.apply(x, coeff)
    return out


class GradientReversal(nn.Module):
    """Gradient reversal layer as a module.

    Ganin & Lempitsky, ICML 2015, https://proceedings.mlr.press/v37/ganin15.html.

    Parameters
    ----------
    coeff : float
        Default scale of the reversed gradient; ``forward(x, coeff)`` may override it.

    Examples
    --------
    >>> import torch
    >>> layer = GradientReversal()
    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> (layer(x) * 3).sum().backward()
    >>> x.grad
    tensor([-3., -3.])
    """

    def __init__(self, coeff: float = 1.0) -> None:
        super().__init__()
        self.coeff = float(coeff)

    def forward(self, x: Tensor, coeff: float | None = None) -> Tensor:
        return grad_reverse(x, self.coeff if coeff is None else coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff}"


class DomainDiscriminator(nn.Module):
    """Domain discriminator of DANN.

    Ganin et al., JMLR 2016, https://jmlr.org/papers/v17/15-239.html.

    An MLP from ``in_features`` features to one logit (target = 1, source = 0).

    Parameters
    ----------
    in_features : int
        Width of the features it reads, shape ``(n, in_features)``.
    hidden : sequence of int
        Widths of the hidden ReLU layers (the papers use 1024-1024 on AlexNet, 500-500 on
        digits).
    dropout : float
        Dropout after every hidden layer (0 disables it).

    Examples
    --------
    >>> import torch
    >>> DomainDiscriminator(16, hidden=(8,))(torch.zeros(5, 16)).shape
    torch.Size([5])
    """

    def __init__(
        self, in_features: int, hidden: Sequence[int] = (256, 256), dropout: float = 0.0
    ) -> None:
        super().__init__()
        if int(in_features) < 1:
            raise ValueError(f"in_features must be >= 1; got {in_features}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        layers: list[nn.Module] = []
        width = int(in_features)
        for size in hidden:
            if int(size) < 1:
                raise ValueError(f"hidden widths must be >= 1; got {tuple(hidden)}")
            layers += [nn.Linear(width, int(size)), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(size)
        layers.append(nn.Linear(width, 1))
        self.in_features = int(in_features)
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Domain logits, shape ``(n,)``."""
        return self.net(x).squeeze(-1)


def grl_lambda(progress: float, gamma: float = 10.0) -> float:
    """DANN's adaptation-weight schedule 2 / (1 + exp(-gamma p)) - 1.

    Ganin et al., JMLR 2016, https://jmlr.org/papers/v17/15-239.html.

    Rises from 0 at ``p = 0`` towards 1, suppressing the noisy adversarial signal early in
    training. MSTN uses the same schedule for its semantic loss.

    Parameters
    ----------
    progress : float
        Training progress p in [0, 1] (``StepContext.progress``).
    gamma : float
        Steepness (10 in the papers).

    Examples
    --------
    >>> grl_lambda(0.0), round(grl_lambda(1.0), 4)
    (0.0, 0.9999)
    """
    p = float(progress)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"progress must be in [0, 1]; got {p}")
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


def annealed_lr_factor(progress: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """DANN's learning-rate annealing factor 1 / (1 + alpha p)^beta.

    Ganin et al., JMLR 2016, https://jmlr.org/papers/v17/15-239.html.

    The learning rate at progress p is ``lr0 * annealed_lr_factor(p)``
    (``0.01 / (1 + 10 p)^0.75`` in the papers).

    Examples
    --------
    >>> annealed_lr_factor(0.0), round(annealed_lr_factor(1.0), 4)
    (1.0, 0.1656)
    """
    p = float(progress)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"progress must be in [0, 1]; got {p}")
    return float((1.0 + alpha * p) ** (-beta))


class AnnealedLR:
    """Step -> learning-rate factor of DANN's annealing, for ``LambdaLR``.

    A picklable callable (so a scheduler built on it checkpoints), returning
    ``annealed_lr_factor(step / max_steps)``.

    Parameters
    ----------
    max_steps : int
        Steps of the run (progress p = step / max_steps).
    alpha, beta : float
        See :func:`annealed_lr_factor`.

    Examples
    --------
    >>> import torch
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    >>> sched = torch.optim.lr_scheduler.LambdaLR(opt, AnnealedLR(100))
    >>> for _ in range(100):
    ...     opt.step(); sched.step()
    >>> round(opt.param_groups[0]["lr"], 5)
    0.00166
    """

    def __init__(self, max_steps: int, alpha: float = 10.0, beta: float = 0.75) -> None:
        if int(max_steps) < 1:
            raise ValueError(f"max_steps must be >= 1; got {max_steps}")
        self.max_steps = int(max_steps)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def __call__(self, step: int) -> float:
        return annealed_lr_factor(min(step, self.max_steps) / self.max_steps, self.alpha, self.beta)


def annealed_lr_scheduler(
    optimizer: torch.optim.Optimizer, max_steps: int, alpha: float = 10.0, beta: float = 0.75
) -> torch.optim.lr_scheduler.LambdaLR:
    """DANN's annealed learning rate lr0 / (1 + alpha p)^beta as a LambdaLR.

    Ganin et al., JMLR 2016, https://jmlr.org/papers/v17/15-239.html.

    Pass it as ``scheduler=`` to :func:`transferkit.train.fit`; the loop steps it after
    every optimiser step.

    Examples
    --------
    >>> import torch
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01, momentum=0.9)
    >>> sched = annealed_lr_scheduler(opt, max_steps=10)
    >>> sched.get_last_lr()
    [0.01]
    """
    return torch.optim.lr_scheduler.LambdaLR(optimizer, AnnealedLR(max_steps, alpha, beta))
