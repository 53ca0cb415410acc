"""Loss-weighting strategies: shipped property checks, GradNorm by hand, equal = plain sum."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from transferkit.multitask import (
    DWA,
    GradNorm,
    SharedTrunk,
    UncertaintyWeighting,
    create_weighting,
    list_weightings,
    multitask_step,
)
from transferkit.testing.weighting import check_weighting
from transferkit.train import Phase, Stream, Trainer, seeded, sum_losses


def test_registry_has_the_four_strategies() -> None:
    assert {"equal", "uncertainty", "dwa", "gradnorm"} <= set(list_weightings())
    with pytest.raises(KeyError, match="unknown weighting"):
        create_weighting("nope", tasks=2)


@pytest.mark.parametrize("name", list_weightings())
@pytest.mark.parametrize("n_tasks", [1, 2, 4])
def test_property_check_every_registered_strategy(name: str, n_tasks: int) -> None:
    check_weighting(name, n_tasks=n_tasks)


class _BadWeighting(GradNorm):
    def forward(self, losses: torch.Tensor) -> torch.Tensor:
        return -super().forward(losses)


def test_property_check_can_fail() -> None:
    with pytest.raises(AssertionError, match="positive"):
        check_weighting(_BadWeighting(2))


def _two_task_problem() -> tuple[nn.Parameter, torch.Tensor, torch.Tensor]:
    W = nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
    A = torch.tensor([[3.0, 0.0], [0.0, 4.0]])      # grad_W <A, W> = A, norm 5
    B = torch.tensor([[0.0, 1.0], [0.0, 0.0]])      # <B, W> = W[0, 1]
    return W, A, B


def test_gradnorm_update_matches_hand_computation() -> None:
    # Two tasks on a shared W (2x2). L1 = <A, W> + 10, L2 = 6 * <B, W>^2 with <B, W> = W[0,1].
    W, A, B = _two_task_problem()
    lr, alpha = 0.1, 0.5
    gn = GradNorm(2, alpha=alpha, shared=W, n_init=1,
                  optimizer=lambda p: torch.optim.SGD(p, lr=lr))

    def losses(scale1: float, scale2: float) -> dict[str, torch.Tensor]:
        return {"a": scale1 * ((A * W).sum() + 10.0), "b": scale2 * 6.0 * (B * W).sum() ** 2}

    first = losses(1.0, 1.0)                  # step 0: records L(0) only
    L0 = [v.item() for v in first.values()]   # [3*1 + 4*3 + 10 = 25, 6 * 4 = 24]
    assert L0 == [25.0, 24.0]
    gn(first)
    assert torch.equal(gn(torch.ones(2)), torch.ones(2))
    # step 1: task a at half its initial loss, task b unchanged
    second = losses(0.5, 1.0)
    gn(second)
    # by hand: ||grad_W L_a|| = 0.5 * ||A|| = 0.5 * 5 = 2.5
    #          ||grad_W L_b|| = 12 * <B, W> * ||B|| = 12 * 2 = 24 (W[0,1] = -2 -> 24 in norm)
    n = [2.5, 24.0]
    w = [1.0, 1.0]
    G = [w[i] * n[i] for i in range(2)]                # [2.5, 24]
    G_bar = sum(G) / 2                                  # 13.25
    ratios = [12.5 / 25.0, 24.0 / 24.0]                 # [0.5, 1.0]
    mean_ratio = sum(ratios) / 2                        # 0.75
    r = [ratios[i] / mean_ratio for i in range(2)]      # [2/3, 4/3]
    target = [G_bar * r[i] ** alpha for i in range(2)]  # [10.818, 15.300]
    grad = [math.copysign(1.0, G[i] - target[i]) * n[i] for i in range(2)]  # [-2.5, +24]
    new = [max(w[i] - lr * grad[i], 1e-6) for i in range(2)]                # [1.25, 1e-6]
    new = [2 * v / sum(new) for v in new]
    assert gn(torch.ones(2)).tolist() == pytest.approx(new, rel=1e-6)
    assert float(gn.initial_losses[0]) == 25.0 and float(gn.initial_losses[1]) == 24.0


def test_gradnorm_initial_losses_are_averaged() -> None:
    W = nn.Parameter(torch.ones(2, 2))
    gn = GradNorm(2, shared=W, n_init=3)
    for scale in (1.0, 2.0, 6.0):
        gn({"a": scale * W.sum(), "b": 2 * scale * W.sum()})
    assert gn.initial_losses.tolist() == pytest.approx([4 * 3.0, 8 * 3.0])
    assert torch.equal(gn(torch.ones(2)), torch.ones(2))


def _toy_model(seed: int = 0) -> SharedTrunk:
    with seeded(seed):
        trunk = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())
        heads = {"a": nn.Linear(16, 1), "b": nn.Linear(16, 3)}
    return SharedTrunk(trunk, heads, {"a": "mse", "b": "ce"})


def _toy_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 5, generator=gen)
    return x, 30.0 * x[:, :1], (x[:, 1] > 0).long() + (x[:, 2] > 0).long()


def test_gradnorm_loss_sends_no_gradient_to_the_network() -> None:
    model = _toy_model()
    x, ya, yb = _toy_data()
    gn = GradNorm(["a", "b"], alpha=1.0, n_init=1)
    for _ in range(3):
        model.zero_grad(set_to_none=True)
        losses = model.task_losses(model(x), {"a": ya, "b": yb})
        w = gn(torch.stack([v.detach() for v in losses.values()]))
        total = gn.combine(losses, shared=model.shared_parameters())
        # the weights' update left nothing in the network's .grad
        assert all(p.grad is None for p in model.parameters())
        # and the network's gradient is exactly that of sum_i w_i L_i, nothing second order
        expected = torch.autograd.grad(
            w[0] * losses["a"] + w[1] * losses["b"], list(model.parameters()), retain_graph=True
        )
        total.backward()
        for p, g in zip(model.parameters(), expected, strict=True):
            assert p.grad is not None
            torch.testing.assert_close(p.grad, g)
    assert not torch.equal(gn(torch.ones(2)), torch.ones(2))  # it did learn


def test_gradnorm_optimizer_is_created_once_and_checkpointed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x, ya, yb = _toy_data()

    def trainer(ckpt: str | None, steps: int) -> tuple[Trainer, GradNorm]:
        model = _toy_model()
        gn = GradNorm(["a", "b"], alpha=1.0, lr=0.05, n_init=2)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        phase = Phase(multitask_step(), opt, {"train": Stream(x, ya, yb, batch_size=16, seed=0)},
                      combiner=gn)
        return Trainer(model, phase, steps, seed=0, checkpoint=ckpt), gn

    t_full, gn_full = trainer(None, 12)
    opt_id = id(gn_full.optimizer)
    t_full.fit()
    assert id(gn_full.optimizer) == opt_id
    assert len(gn_full.optimizer.state[gn_full.weights]) > 0  # Adam moments kept
    ckpt = str(tmp_path / "ck.pt")
    t_half, _ = trainer(ckpt, 6)
    t_half.fit()
    t_resumed, gn_resumed = trainer(ckpt, 12)
    t_resumed.fit()
    torch.testing.assert_close(gn_resumed.weights, gn_full.weights, rtol=0, atol=0)
    for p, q in zip(t_resumed.model.parameters(), t_full.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_equal_weighting_reproduces_the_plain_summed_loss_step_exactly() -> None:
    x, ya, yb = _toy_data()
    states = []
    for combiner in (sum_losses, create_weighting("equal", tasks=2)):
        model = _toy_model()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        phase = Phase(multitask_step(), opt, {"train": Stream(x, ya, yb, batch_size=16, seed=0)},
                      combiner=combiner)
        Trainer(model, phase, 8, seed=0).fit()
        states.append([p.detach().clone() for p in model.parameters()])
    for p, q in zip(*states, strict=True):
        assert torch.equal(p, q)


def test_uncertainty_weights_move_towards_inverse_losses() -> None:
    u = UncertaintyWeighting(2, lr=0.05)
    one = torch.ones(())
    for _ in range(400):
        u({"a": 4.0 * one, "b": 0.5 * one})
    w = u(torch.ones(2))
    assert w.tolist() == pytest.approx([0.25, 2.0], rel=0.05)


def test_dwa_follows_the_loss_ratios() -> None:
    d = DWA(3, temperature=2.0, period=2)
    one = torch.ones(())
    for a in (1.0, 1.0, 0.5, 0.5):          # two periods: task 0 halves, others stay
        d({"a": a * one, "b": one, "c": 2 * one})
    r = torch.tensor([0.5, 1.0, 1.0])
    expected = 3 * torch.softmax(r / 2.0, dim=0)
    torch.testing.assert_close(d(torch.ones(3)), expected)


def test_missing_task_in_a_batch_is_skipped() -> None:
    gn = GradNorm(["a", "b"], n_init=1)
    model = _toy_model()
    x, ya, yb = _toy_data()
    yb_missing = torch.full_like(yb, -1)
    for _ in range(3):
        losses = model.task_losses(model(x), {"a": ya, "b": yb_missing})
        assert list(losses) == ["a"]
        total = gn.combine(losses, shared=model.shared_parameters())
        assert torch.isfinite(total)


def test_strategy_validates_inputs() -> None:
    with pytest.raises(ValueError, match="n_tasks must be >= 1"):
        create_weighting("equal", tasks=0)
    with pytest.raises(ValueError, match="unknown tasks"):
        create_weighting("equal", tasks=["a", "b"])({"c": torch.ones(())})
    with pytest.raises(ValueError, match="shape"):
        create_weighting("dwa", tasks=3)(torch.ones(2))
    with pytest.raises(ValueError, match="last shared layer"):
        GradNorm(2)({"a": torch.ones((), requires_grad=True), "b": torch.ones(())})


def test_state_dict_roundtrip_with_weights_only_load() -> None:
    W = nn.Parameter(torch.randn(3, 3, generator=torch.Generator().manual_seed(0)))
    for name in list_weightings():
        s = create_weighting(name, tasks=["a", "b"], shared=W)
        for k in range(8):
            s({"a": (W * (k + 1)).pow(2).sum(), "b": W.sum().abs()})
        buf = io.BytesIO()
        torch.save(s.state_dict(), buf)
        buf.seek(0)
        t = create_weighting(name, tasks=2, shared=W)
        t.load_state_dict(torch.load(buf, weights_only=True))
        torch.testing.assert_close(t(torch.ones(2)), s(torch.ones(2)))
        assert t.tasks == ("a", "b")
