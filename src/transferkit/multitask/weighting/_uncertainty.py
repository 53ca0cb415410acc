"""Uncertainty weighting (Kendall, Gal, Cipolla, CVPR 2018)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ._base import OptimizerFactory, Weighting, _adam, _optimizer_state, register_weighting


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
