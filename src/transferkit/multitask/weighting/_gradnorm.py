"""GradNorm: gradient normalisation for adaptive loss balancing (Chen et al., ICML 2018)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ...distributed import is_distributed, sum_across_ranks
from ._base import (
    OptimizerFactory,
    Weighting,
    _adam,
    _as_tensor_list,
    _optimizer_state,
    register_weighting,
)


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
