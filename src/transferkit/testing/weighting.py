"""Property checks of loss-weighting strategies (as balanced by GradNorm, https://arxiv.org/abs/1711.02257).

:func:`check_weighting` drives a strategy through a few training steps of a tiny shared-trunk
regression whose tasks have very different loss scales, and asserts what every strategy
must satisfy. The test-suite runs it over every registered strategy.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..multitask.weighting import Weighting, create_weighting

__all__ = ["check_weighting"]


def check_weighting(strategy: Weighting | str, n_tasks: int = 3, n_steps: int = 25,
                    seed: int = 0) -> None:
    """Assert the properties every loss-weighting strategy must have.

    At every step of a small multi-task regression (loss scales 1, 100, 10^4, ...):

    - the weights have shape ``(T,)`` and are finite and strictly positive;
    - they sum to T when the strategy declares ``sums_to_n_tasks``;
    - the combined loss equals ``sum_i w_i L_i`` with the weights read before the call;
    - combining leaves the network's ``.grad`` untouched (no gradient leaks from the
      strategy's own update into the network), and the combined loss's backward gives the
      network the gradient of ``sum_i w_i L_i``;
    - a step where one task has no labelled example (absent from the dict) still works.

    Parameters
    ----------
    strategy : Weighting or str
        An instance (it is trained by the check, so pass a fresh one) or a registered name
        (built with ``n_tasks`` tasks).
    n_tasks : int
        Tasks when ``strategy`` is a name.
    n_steps : int
    seed : int

    Raises
    ------
    AssertionError
        Naming the property that failed and the step.

    Examples
    --------
    >>> check_weighting("equal")
    """
    if isinstance(strategy, str):
        strategy = create_weighting(strategy, tasks=n_tasks)
    if not isinstance(strategy, Weighting):
        raise TypeError(f"strategy must be a Weighting or a registered name; got {type(strategy)}")
    T = strategy.n_tasks
    names = list(strategy.tasks) if strategy.tasks is not None else [f"task{i}" for i in range(T)]
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 5, generator=gen)
    targets = [(10.0 ** i) * torch.tanh(x @ torch.randn(5, 1, generator=gen)) for i in range(T)]
    shared = nn.Linear(5, 8)
    heads = nn.ModuleList(nn.Linear(8, 1) for _ in range(T))
    with torch.no_grad():
        for p in [*shared.parameters(), *heads.parameters()]:
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    params = [*shared.parameters(), *heads.parameters()]
    opt = torch.optim.SGD(params, lr=1e-5)
    name = type(strategy).__name__

    for step in range(n_steps):
        z = torch.tanh(shared(x))
        losses = {n: nn.functional.mse_loss(heads[i](z), targets[i]) for i, n in enumerate(names)}
        if step == n_steps - 2 and T > 1:
            losses.pop(names[-1])        # a batch without labels for the last task
        vec = torch.stack([losses[n].detach() if n in losses else torch.zeros(())
                           for n in names])
        before = strategy(vec)
        _check_weights(before, T, strategy, name, step)
        opt.zero_grad(set_to_none=True)
        total = strategy(losses, None, shared=[shared.weight])
        assert isinstance(total, Tensor) and total.dim() == 0, (
            f"{name}: the combiner must return a scalar tensor (step {step})")
        assert all(p.grad is None for p in params), (
            f"{name}: combining the losses wrote gradients into the network (step {step})")
        expected = sum(before[names.index(n)] * v for n, v in losses.items())
        assert isinstance(expected, Tensor)
        assert torch.allclose(total, expected, rtol=1e-5), (
            f"{name}: combined loss {total.item()} != sum w_i L_i {expected.item()} (step {step})")
        assert torch.isfinite(total), f"{name}: combined loss is not finite (step {step})"
        grads = torch.autograd.grad(expected, params, retain_graph=True, allow_unused=True)
        total.backward()
        for p, g in zip(params, grads, strict=True):
            g = torch.zeros_like(p) if g is None else g
            got = torch.zeros_like(p) if p.grad is None else p.grad
            assert torch.allclose(got, g, rtol=1e-4, atol=1e-6 * (1 + float(g.abs().max()))), (
                f"{name}: the network's gradient is not that of sum w_i L_i (step {step})")
        opt.step()
        after = strategy(vec)
        _check_weights(after, T, strategy, name, step)


def _check_weights(w: Tensor, T: int, strategy: Weighting, name: str, step: int) -> None:
    assert isinstance(w, Tensor) and w.shape == (T,), (
        f"{name}: weights must have shape ({T},); got {getattr(w, 'shape', type(w))} (step {step})")
    assert bool(torch.isfinite(w).all()), f"{name}: weights not finite: {w.tolist()} (step {step})"
    assert bool((w > 0).all()), f"{name}: weights not positive: {w.tolist()} (step {step})"
    if strategy.sums_to_n_tasks:
        assert abs(float(w.sum()) - T) < 1e-4 * T, (
            f"{name}: weights sum to {float(w.sum())}, not {T} (step {step})")
