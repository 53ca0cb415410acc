"""MAML, FOMAML, Meta-SGD, ANIL and Reptile: gradients, adaptation, memory, the loop."""

import gc
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from transferkit.meta import MAML, Reptile, ReptileUpdate, SinusoidTasks, maml_step, reptile_step
from transferkit.train import GeneratedStream, Phase, Trainer


def _tiny(dtype=torch.float64):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(1, 3), nn.Tanh(), nn.Linear(3, 1)).to(dtype)


def _batch(n_tasks=2, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return tuple(t.to(dtype) for t in SinusoidTasks(4, 5).meta_batch(n_tasks, g))


@pytest.mark.parametrize("vectorize", [True, False])
def test_second_order_gradients_match_finite_differences(vectorize):
    net = _tiny()
    maml = MAML(net, F.mse_loss, inner_lr=0.1, inner_steps=2, vectorize=vectorize)
    batch = _batch()
    grads = torch.autograd.grad(maml(*batch), list(net.parameters()))
    eps = 1e-6
    for p, g in zip(net.parameters(), grads, strict=True):
        flat = p.data.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + eps
            up = maml(*batch).item()
            flat[i] = old - eps
            down = maml(*batch).item()
            flat[i] = old
            assert g.view(-1)[i].item() == pytest.approx((up - down) / (2 * eps), abs=1e-7)


def test_first_order_drops_exactly_the_second_order_term():
    net = _tiny()
    batch = _batch(n_tasks=1)
    fo = MAML(net, F.mse_loss, inner_lr=0.1, inner_steps=1, first_order=True)
    so = MAML(net, F.mse_loss, inner_lr=0.1, inner_steps=1)
    sx, sy, qx, qy = (t[0] for t in batch)
    # by hand: phi = theta - a g(theta); FOMAML's gradient is the query gradient at phi
    theta = list(net.parameters())
    g = torch.autograd.grad(F.mse_loss(net(sx), sy), theta)
    phi = [t.detach() - 0.1 * gi for t, gi in zip(theta, g, strict=True)]
    names = [n for n, _ in net.named_parameters()]
    phi = [p.requires_grad_() for p in phi]
    out = torch.func.functional_call(net, dict(zip(names, phi, strict=True)), (qx,))
    expected = torch.autograd.grad(F.mse_loss(out, qy), phi)
    got = torch.autograd.grad(fo(*batch), theta)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)
    # and the second-order one differs from it by the Hessian term, which is not zero here
    full = torch.autograd.grad(so(*batch), theta)
    assert any((a - b).abs().max() > 1e-6 for a, b in zip(full, got, strict=True))
    # no inner graph: the adapted weights depend on theta with the identity Jacobian only
    adapted = fo.adapted_weights(sx, sy)
    jac = torch.autograd.grad(adapted["0.weight"].sum(), theta[0])[0]
    torch.testing.assert_close(jac, torch.ones_like(jac))


def test_adaptation_leaves_the_meta_parameters_alone_and_lowers_the_support_loss():
    net = _tiny(torch.float32)
    before = [p.detach().clone() for p in net.parameters()]
    maml = MAML(net, F.mse_loss, inner_lr=0.05, inner_steps=1)
    sx, sy, _, _ = (t[0] for t in _batch(1, torch.float32))
    adapted = maml.adapt(sx, sy, steps=20)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert adapted is not net
    assert F.mse_loss(adapted(sx), sy) < F.mse_loss(net(sx), sy)


def test_meta_sgd_learns_a_step_size_per_entry_and_anil_adapts_only_the_head():
    net = _tiny(torch.float32)
    msgd = MAML(net, F.mse_loss, inner_lr=0.01, learn_inner_lr=True)
    assert {n for n, _ in msgd.named_parameters()} >= {"inner_lrs.0__weight", "inner_lrs.2__bias"}
    loss = msgd(*_batch(3, torch.float32))
    loss.backward()
    assert msgd.inner_lrs["0__weight"].grad.abs().sum() > 0
    anil = MAML(_tiny(torch.float32), F.mse_loss, adapt=("2.",))
    assert anil.adapted_names == ["2.weight", "2.bias"]
    sx, sy, _, _ = (t[0] for t in _batch(1, torch.float32))
    w = anil.adapted_weights(sx, sy)
    assert torch.equal(w["0.weight"], anil.model[0].weight)  # the body is not adapted
    with pytest.raises(ValueError, match="no parameter name starts with"):
        MAML(_tiny(), F.mse_loss, adapt=("head",))


def test_batch_norm_policies():
    def bn_net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(1, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))

    batch = _batch(3, torch.float32)
    trans = MAML(bn_net(), F.mse_loss)
    assert trans.model[1].running_mean is None  # batch statistics only, as in MAML's code
    trans(*batch).backward()
    frozen_net = bn_net()
    stats = frozen_net[1].running_mean.clone()
    frozen = MAML(frozen_net, F.mse_loss, batch_norm="frozen")
    frozen(*batch).backward()
    assert torch.equal(frozen_net[1].running_mean, stats) and frozen_net[1].training
    with pytest.raises(ValueError, match="batch_norm must be one of"):
        MAML(bn_net(), F.mse_loss, batch_norm="per-batch")


def test_per_step_batch_norm_keeps_statistics_per_inner_step():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    with pytest.raises(ValueError, match="vectorize=False"):
        MAML(net, F.mse_loss, batch_norm="per-step")
    maml = MAML(net, F.mse_loss, inner_steps=2, batch_norm="per-step", vectorize=False)
    bn = net[1]
    start = bn.running_mean.clone()
    maml(*_batch(3, torch.float32)).backward()
    steps = [getattr(bn, f"running_mean_step{k}") for k in range(3)]
    assert all(not torch.equal(s, start) for s in steps)      # each step has seen batches
    assert not torch.equal(steps[0], steps[2])               # and they differ
    assert torch.equal(bn.running_mean, start)               # the layer's own are untouched
    sx, sy, _, _ = (t[0] for t in _batch(1, torch.float32))
    adapted = maml.adapt(sx, sy)
    torch.testing.assert_close(adapted[1].running_mean, bn.running_mean_step2)


def _live_tensors():
    gc.collect()
    with warnings.catch_warnings():  # inspecting every object touches deprecated aliases
        warnings.simplefilter("ignore")
        return sum(1 for o in gc.get_objects() if _is_tensor(o))


def _is_tensor(o):
    try:
        return isinstance(o, torch.Tensor)
    except ReferenceError:  # a weakref.proxy (some installed package's) to a dead object
        return False


@pytest.mark.parametrize("first_order", [False, True])
def test_memory_stays_flat_across_meta_iterations(first_order):
    net = nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 1))
    maml = MAML(net, F.mse_loss, inner_steps=3, first_order=first_order)
    opt = torch.optim.Adam(maml.parameters(), 1e-3)
    g = torch.Generator().manual_seed(0)
    tasks = SinusoidTasks(5, 5)

    def run(n):
        for _ in range(n):
            loss = maml(*tasks.meta_batch(8, g))
            opt.zero_grad()
            loss.backward()
            opt.step()

    run(5)
    start = _live_tensors()
    run(60)
    assert _live_tensors() <= start


def test_maml_and_reptile_train_in_the_loop_and_resume(tmp_path):
    tasks = SinusoidTasks(5, 5)

    def train(kind, steps, ckpt=None):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(1, 20), nn.ReLU(), nn.Linear(20, 1))
        if kind == "maml":
            model = MAML(net, F.mse_loss)
            step, update = maml_step(), None
        else:
            model = Reptile(net, F.mse_loss, inner_steps=3)
            step, update = reptile_step(), ReptileUpdate()
        stream = GeneratedStream(lambda g: tasks.meta_batch(4, g), seed=3)
        kwargs = {"update": update} if update is not None else {}
        phase = Phase(step, torch.optim.Adam(model.parameters(), 1e-2), {"tasks": stream},
                      **kwargs)
        hist = Trainer(model, phase, steps, seed=0, checkpoint=ckpt).fit()
        return net, hist

    for kind in ("maml", "reptile"):
        net, hist = train(kind, 40)
        key = "loss/query" if kind == "maml" else "loss/support"
        values = hist.series(key)[1]
        assert sum(values[-10:]) < sum(values[:10])
        ckpt = tmp_path / f"{kind}.pt"
        train(kind, 20, ckpt)
        resumed, _ = train(kind, 40, ckpt)
        for a, b in zip(resumed.parameters(), net.parameters(), strict=True):
            torch.testing.assert_close(a, b)


def test_reptile_with_sgd_at_lr_eps_is_the_papers_update():
    net = _tiny(torch.float32)
    reptile = Reptile(net, F.mse_loss, inner_lr=0.05, inner_steps=3)
    sx, sy, _, _ = _batch(2, torch.float32)
    theta = {n: p.detach().clone() for n, p in net.named_parameters()}
    phis = [reptile.adapted_weights(sx[i], sy[i], create_graph=False) for i in range(2)]
    _, direction = reptile.direction(sx, sy)
    for n in theta:
        mean_phi = (phis[0][n] + phis[1][n]) / 2
        torch.testing.assert_close(theta[n] - 0.5 * direction[n],
                                   theta[n] + 0.5 * (mean_phi.detach() - theta[n]))


@pytest.mark.parametrize("train_on_query", [True, False])
def test_reptile_meta_trains_on_the_support_and_query_points_maml_sees(train_on_query):
    net = _tiny(torch.float64)
    reptile = Reptile(net, F.mse_loss, inner_lr=0.05, inner_steps=2,
                      train_on_query=train_on_query)
    batch = _batch(2)
    sx, sy, qx, qy = batch
    ctx = type("Ctx", (), {"extra": {}})()
    reptile_step()(reptile, {"tasks": batch}, ctx)
    x, y = (torch.cat([sx, qx], dim=1), torch.cat([sy, qy], dim=1)) if train_on_query \
        else (sx, sy)
    _, expected = reptile.direction(x, y)
    for name, value in expected.items():
        torch.testing.assert_close(ctx.extra["reptile_direction"][name], value)
