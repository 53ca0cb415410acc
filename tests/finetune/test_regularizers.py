"""Tests of the L2-SP family (Li, Grandvalet, Davoine, ICML 2018) and the Fisher estimator."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transferkit.finetune import (
    L1SP,
    L2,
    L2SP,
    GroupLassoSP,
    L2SPFisher,
    fisher_diagonal,
    list_regularizers,
    penalized_parameters,
)
from transferkit.train import Stream, classification_step, fit, seeded

ALL = ["l2", "l2sp", "l1sp", "gl", "fisher"]


def tiny(dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """Conv -> BN -> ReLU -> flatten -> linear -> linear head, with biases."""
    with seeded(0):
        return nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1),
            nn.BatchNorm2d(3),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(3 * 4 * 4, 5),
            nn.ReLU(),
            nn.Linear(5, 4),
        ).to(dtype)


def make(kind: str, model: nn.Module, alpha: float, beta: float, **kw: object) -> nn.Module:
    if kind == "l2":
        return L2(model, alpha, beta, **kw)  # type: ignore[arg-type]
    if kind == "l2sp":
        return L2SP(model, alpha, beta, **kw)  # type: ignore[arg-type]
    if kind == "l1sp":
        return L1SP(model, alpha, beta, **kw)  # type: ignore[arg-type]
    if kind == "gl":
        return GroupLassoSP(model, alpha, beta, **kw)  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(5)
    fisher = {
        n: torch.rand(p.shape, generator=gen, dtype=p.dtype) for n, p in model.named_parameters()
    }
    return L2SPFisher(model, fisher, alpha, beta, **kw)  # type: ignore[arg-type]


def naive(kind: str, reg: nn.Module, model: nn.Module, alpha: float, beta: float) -> torch.Tensor:
    """The paper's formula written directly with autograd ops."""
    params = dict(model.named_parameters())
    start = reg.start_point()  # type: ignore[operator]
    total = torch.zeros((), dtype=torch.float64)
    for n in reg.pretrained_names:  # type: ignore[attr-defined]
        w = params[n]
        if kind == "l2":
            total = total + alpha / 2 * (w**2).sum()
            continue
        d = w - start[n]
        if kind == "l2sp":
            total = total + alpha / 2 * (d**2).sum()
        elif kind == "l1sp":
            total = total + alpha * d.abs().sum()
        elif kind == "gl":
            c_out = w.shape[0]
            group_size = w[0].numel()  # c_in * k_h * k_w, or in_features
            norms = d.reshape(c_out, -1).pow(2).sum(1).sqrt()
            total = total + alpha * math.sqrt(group_size) * norms.sum()
        else:
            fish = reg._sqrt_f()[reg.pretrained_names.index(n)] ** 2  # type: ignore[attr-defined,operator]
            total = total + alpha / 2 * (fish * d**2).sum()
    for n in reg.new_names:  # type: ignore[attr-defined]
        total = total + beta / 2 * (params[n] ** 2).sum()
    return total


def perturb(model: nn.Module, scale: float = 0.3, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))


# ------------------------------------------------------------ which parameters count
def test_penalized_parameters_are_conv_and_linear_weights_only() -> None:
    model = tiny()
    assert penalized_parameters(model) == ["0.weight", "4.weight", "6.weight"]
    reg = L2SP(model, 0.1, 0.01, new=["6"])
    assert reg.pretrained_names == ["0.weight", "4.weight"]
    assert reg.new_names == ["6.weight"]
    # biases and batch-norm parameters get no gradient from the penalty
    perturb(model)
    reg().backward()
    for name, p in model.named_parameters():
        if name in ("0.weight", "4.weight", "6.weight"):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


def test_explicit_params_override_the_default() -> None:
    model = tiny()
    reg = L2SP(model, 1.0, 0.0, new=[], params=["4.bias"])
    assert reg.pretrained_names == ["4.bias"]
    with torch.no_grad():
        model[4].bias.add_(2.0)
        model[4].weight.add_(5.0)
    assert reg().item() == pytest.approx(0.5 * 5 * 4.0)


# ------------------------------------------------------------ zero at the start point
@pytest.mark.parametrize("kind", ALL)
def test_penalty_is_zero_at_the_start_point(kind: str) -> None:
    model = tiny()
    reg = make(kind, model, alpha=0.7, beta=0.0, new=["6"])
    value = reg().item()
    if kind == "l2":
        assert value > 0  # L2 pulls towards 0, not towards the start
    else:
        assert value == 0.0
    # with beta the value is exactly the new head's weight decay
    reg = make(kind, model, alpha=0.7, beta=0.2, new=["6"])
    head = 0.1 * (model[6].weight ** 2).sum().item()
    if kind != "l2":
        assert reg().item() == pytest.approx(head, rel=1e-12)


# ------------------------------------------------------------ hand-computed values
def hand_model() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        model[0].bias.fill_(9.0)
        model[2].weight.copy_(torch.tensor([[1.0, -1.0]]))
    return model


def moved(model: nn.Module) -> None:
    with torch.no_grad():
        # output unit 0 moves by (0, 3), unit 1 by (-1, 0)
        model[0].weight.add_(torch.tensor([[0.0, 3.0], [-1.0, 0.0]]))
        model[0].bias.add_(100.0)  # not penalised
        model[2].weight.copy_(torch.tensor([[2.0, 0.0]]))


def test_hand_computed_values() -> None:
    alpha, beta = 0.5, 0.1
    values = {}
    for kind in ["l2", "l2sp", "l1sp", "gl"]:
        model = hand_model()
        reg = make(kind, model, alpha, beta, new=["2"])
        moved(model)
        values[kind] = reg().item()
    # new head: beta/2 * (2^2 + 0^2) = 0.2
    # L2: alpha/2 * (1 + 25 + 4 + 16) = 11.5
    assert values["l2"] == pytest.approx(11.5 + 0.2)
    # L2-SP: alpha/2 * (3^2 + 1^2) = 2.5
    assert values["l2sp"] == pytest.approx(2.5 + 0.2)
    # L1-SP: alpha * (3 + 1) = 2.0
    assert values["l1sp"] == pytest.approx(2.0 + 0.2)
    # Group-Lasso-SP: alpha * sqrt(2) * (||(0,3)|| + ||(-1,0)||) = 0.5 * sqrt(2) * 4
    assert values["gl"] == pytest.approx(0.5 * math.sqrt(2) * 4 + 0.2)

    model = hand_model()
    fisher = {"0.weight": torch.tensor([[1.0, 2.0], [10.0, 0.0]])}
    reg = L2SPFisher(model, fisher, alpha, beta, new=["2"])
    moved(model)
    # alpha/2 * (2 * 3^2 + 10 * 1^2) = 7.0
    assert reg().item() == pytest.approx(7.0 + 0.2)


def test_group_lasso_groups_are_output_units_with_sqrt_group_size() -> None:
    conv = nn.Sequential(nn.Conv2d(3, 4, kernel_size=(2, 5)))  # weight (4, 3, 2, 5)
    reg = GroupLassoSP(conv, alpha=1.0, beta=0.0, new=[])
    with torch.no_grad():
        conv[0].weight[1, 0, 0, 0] += 3.0  # two weights of output channel 1
        conv[0].weight[1, 2, 1, 4] += 4.0
    coef = math.sqrt(3 * 2 * 5)  # sqrt(c_in * k_h * k_w)
    assert reg().item() == pytest.approx(coef * 5.0)  # one group: ||(3, 4)|| = 5
    with torch.no_grad():
        conv[0].weight[1, 2, 1, 4] -= 4.0
        conv[0].weight[3, 2, 1, 4] += 4.0  # now in another output channel
    assert reg().item() == pytest.approx(coef * (3.0 + 4.0))  # two groups: 3 + 4
    # the gradient of a group is its unit direction times the coefficient; untouched groups: 0
    reg().backward()
    g = conv[0].weight.grad
    assert g is not None
    assert g[0].abs().sum() == 0 and g[2].abs().sum() == 0
    assert g[1, 0, 0, 0].item() == pytest.approx(coef)
    assert g[3, 2, 1, 4].item() == pytest.approx(coef)


# ------------------------------------------------------------ gradients
@pytest.mark.parametrize("kind", ALL)
def test_gradients_match_autograd_of_the_formula(kind: str) -> None:
    alpha, beta = 0.3, 0.05
    model = tiny()
    reg = make(kind, model, alpha, beta, new=["6"])
    perturb(model)
    value = reg()
    value.backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    expected = naive(kind, reg, model, alpha, beta)
    expected.backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert value.item() == pytest.approx(expected.item(), rel=1e-10)
    assert sorted(got) == sorted(want)
    for n in want:
        torch.testing.assert_close(got[n], want[n], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ALL)
def test_add_grad_gives_the_autograd_update_without_a_node(kind: str) -> None:
    model = tiny()
    reg = make(kind, model, 0.3, 0.05, new=["6"])
    perturb(model)
    x = torch.randn(5, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    (model(x).pow(2).mean() + 0.7 * reg()).backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    model(x).pow(2).mean().backward()
    reg.add_grad_(scale=0.7)  # every weight has a gradient (L2/L2-SP's in-place path)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, want[n], rtol=1e-10, atol=1e-12)
    model.zero_grad(set_to_none=True)
    model(x).pow(2).mean().backward()
    model[4].weight.grad = None  # a weight with no gradient yet gets the penalty's alone
    reg.add_grad_(scale=0.7)
    for n, p in model.named_parameters():
        if n == "4.weight":
            continue
        torch.testing.assert_close(p.grad, want[n], rtol=1e-10, atol=1e-12)
    model.zero_grad(set_to_none=True)
    (0.7 * reg()).backward()
    alone = model[4].weight.grad.clone()
    model.zero_grad(set_to_none=True)
    reg.add_grad_(scale=0.7)
    torch.testing.assert_close(model[4].weight.grad, alone, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ALL)
def test_penalty_scales_with_the_outer_gradient(kind: str) -> None:
    model = tiny()
    reg = make(kind, model, 0.3, 0.05, new=["6"])
    perturb(model)
    reg().backward()
    g1 = model[4].weight.grad.clone()
    model.zero_grad(set_to_none=True)
    (-2.5 * reg()).backward()
    torch.testing.assert_close(model[4].weight.grad, -2.5 * g1)


def test_alpha_and_beta_can_be_changed_after_construction() -> None:
    model = tiny()
    reg = L2SP(model, 1.0, 1.0, new=["6"])
    perturb(model)
    full = naive("l2sp", reg, model, 1.0, 1.0).item()
    reg.alpha, reg.beta = 0.5, 0.25
    assert reg().item() == pytest.approx(naive("l2sp", reg, model, 0.5, 0.25).item())
    assert reg().item() < full
    with pytest.raises(ValueError, match="beta"):
        reg.beta = -1.0


@pytest.mark.parametrize("kind", ALL)
def test_backward_twice_through_a_retained_graph(kind: str) -> None:
    model = tiny()
    reg = make(kind, model, 0.3, 0.05, new=["6"])
    perturb(model)
    value = reg()
    value.backward(retain_graph=True)
    once = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    value.backward()
    for n, p in model.named_parameters():
        if n in once:
            torch.testing.assert_close(p.grad, 2 * once[n])


def test_frozen_parameters_get_no_gradient() -> None:
    model = tiny()
    reg = L2SP(model, 0.3, 0.05, new=["6"])
    perturb(model)
    model[0].weight.requires_grad_(False)
    reg().backward()
    assert model[0].weight.grad is None
    assert model[4].weight.grad is not None


# ------------------------------------------------------------ the start point is a copy
def test_start_point_is_a_copy_of_the_model() -> None:
    model = tiny()
    reg = L2SP(model, 1.0, 0.0, new=["6"])
    before = {n: t.clone() for n, t in reg.start_point().items()}
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    for n, t in reg.start_point().items():
        assert torch.equal(t, before[n])
        assert t.data_ptr() != dict(model.named_parameters())[n].data_ptr()
    assert reg().item() > 0


def test_start_point_is_a_copy_of_the_source_state_dict() -> None:
    source = tiny()
    model = tiny()
    perturb(model)
    state = source.state_dict()
    reg = L2SP(model, 1.0, 0.0, source=state)
    expected = 0.5 * sum(
        ((p - state[n]) ** 2).sum() for n, p in model.named_parameters() if n.endswith("weight")
        and n in ("0.weight", "4.weight", "6.weight")
    )
    assert reg().item() == pytest.approx(expected.item())
    with torch.no_grad():
        for t in state.values():
            t.zero_()
        for p in source.parameters():
            p.zero_()
    assert reg().item() == pytest.approx(expected.item())


# ------------------------------------------------------------ the pretrained/new split
def test_split_by_source_keys() -> None:
    with seeded(0):
        source = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.ReLU(),
                              nn.Linear(3, 2))
    model[0].load_state_dict(source[0].state_dict())
    model[2].load_state_dict(source[2].state_dict())
    reg = L2SP(model, 1.0, 0.5, source=source)
    assert reg.pretrained_names == ["0.weight", "2.weight"]
    assert reg.new_names == ["4.weight"]
    assert reg().item() == pytest.approx(0.25 * (model[4].weight ** 2).sum().item())


def test_new_names_override_a_source_entry_of_the_same_name() -> None:
    source = tiny()
    model = tiny()
    reg = L2SP(model, 1.0, 0.0, source=source.state_dict(), new=["6"])
    assert reg.new_names == ["6.weight"]


def test_shape_mismatch_names_the_parameter() -> None:
    source = tiny()
    model = tiny()
    model[6] = nn.Linear(5, 7).double()
    with pytest.raises(ValueError, match=r"'6\.weight'.*\(7, 5\).*\(4, 5\)"):
        L2SP(model, 0.1, 0.01, source=source)
    reg = L2SP(model, 0.1, 0.01, source=source, new=["6"])  # declared new: fine
    assert reg.new_names == ["6.weight"]


def test_input_validation() -> None:
    model = tiny()
    with pytest.raises(ValueError, match="say which parameters are new"):
        L2SP(model, 0.1, 0.01)
    with pytest.raises(ValueError, match="match no module"):
        L2SP(model, 0.1, 0.01, new=["head"])
    with pytest.raises(TypeError, match="list of names"):
        L2SP(model, 0.1, 0.01, new="6")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        L2SP(model, -1.0, 0.01, new=["6"])
    with pytest.raises(ValueError, match="no weight to penalise"):
        L2SP(nn.Sequential(nn.ReLU()), 0.1, 0.01, new=[])
    with pytest.raises(ValueError, match="fisher has no entry"):
        L2SPFisher(model, {}, 0.1, 0.01, new=["6"])
    with pytest.raises(ValueError, match=r"fisher\['0.weight'\] has shape"):
        L2SPFisher(model, {"0.weight": torch.ones(2), "4.weight": torch.ones(5, 48)}, new=["6"])


def test_works_on_a_copy_of_the_model() -> None:
    model = tiny()
    reg = L2SP(model, 1.0, 0.0, new=["6"])
    other = tiny()
    perturb(other)
    expected = 0.5 * sum(
        ((dict(other.named_parameters())[n] - t) ** 2).sum() for n, t in reg.start_point().items()
    )
    assert reg(other).item() == pytest.approx(expected.item())
    assert reg(model).item() == 0.0


def test_follows_the_model_to_another_dtype() -> None:
    model = tiny(torch.float32)
    reg = L2SPFisher(model, {n: torch.ones_like(p) for n, p in model.named_parameters()},
                     1.0, 0.0, new=["6"])
    model.double()
    perturb(model)
    value = reg()
    assert value.dtype == torch.float64
    assert reg.start_point()["0.weight"].dtype == torch.float64
    expected = 0.5 * sum(
        ((dict(model.named_parameters())[n] - t) ** 2).sum() for n, t in reg.start_point().items()
    )
    assert value.item() == pytest.approx(expected.item())


def test_regularised_fine_tuning_stays_closer_to_the_start() -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 6, generator=gen), torch.randint(0, 3, (40,), generator=gen)

    def drift(alpha: float) -> float:
        with seeded(0):
            net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
        reg = L2SP(net, alpha, 0.0, new=["2"])
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        fit(net, classification_step(regularizer=reg), {"train": Stream(x, y, batch_size=20)},
            opt, max_steps=100, seed=0, log_losses_every=0)
        return (net[0].weight - reg.start_point()["0.weight"]).norm().item()

    assert drift(1.0) < 0.5 * drift(0.0)


# ------------------------------------------------------------ Fisher
def manual_fisher(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    names = penalized_parameters(model)
    params = dict(model.named_parameters())
    total = {n: torch.zeros_like(params[n]) for n in names}
    model.eval()
    for i in range(len(x)):
        logp = F.log_softmax(model(x[i : i + 1]), dim=1)[0]
        classes = range(len(logp)) if y is None else [int(y[i])]
        for c in classes:
            grads = torch.autograd.grad(logp[c], [params[n] for n in names], retain_graph=True)
            w = logp[c].exp().detach() if y is None else 1.0
            for n, g in zip(names, grads, strict=True):
                total[n] += w * g**2
    return {n: t / len(x) for n, t in total.items()}


def test_fisher_expected_matches_a_per_example_loop() -> None:
    model = tiny()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(7, 2, 4, 4, generator=gen, dtype=torch.float64)
    got = fisher_diagonal(model, x, batch_size=3)
    want = manual_fisher(model, x, None)
    assert sorted(got) == sorted(want)
    for n in want:
        torch.testing.assert_close(got[n], want[n])


def test_fisher_empirical_uses_the_labels_and_accepts_batches() -> None:
    model = tiny()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, 2, 4, 4, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    want = manual_fisher(model, x, y)
    got = fisher_diagonal(model, x, y, mode="empirical")
    loader = [(x[:4], y[:4]), (x[4:], y[4:])]
    got2 = fisher_diagonal(model, loader, mode="empirical")
    for n in want:
        torch.testing.assert_close(got[n], want[n])
        torch.testing.assert_close(got2[n], want[n])
    with pytest.raises(ValueError, match="needs labels"):
        fisher_diagonal(model, x, mode="empirical")


def test_fisher_sampled_is_reproducible_and_leaves_the_model_as_it_was() -> None:
    model = tiny()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(20, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = fisher_diagonal(model, x, mode="sampled", generator=torch.Generator().manual_seed(1))
    b = fisher_diagonal(model, x, mode="sampled", generator=torch.Generator().manual_seed(1))
    for n in a:
        assert torch.equal(a[n], b[n])
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(ValueError, match="mode"):
        fisher_diagonal(model, x, mode="exact")


@pytest.mark.parametrize("name", list_regularizers())
def test_every_registered_regularizer_is_zero_at_the_start_and_grows_away(name):
    from transferkit.finetune import FinetuneRegularizer, create_regularizer, regularizer_class

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    kw = {"model": net, "alpha": 0.1, "beta": 0.0, "new": ["2"]}
    if regularizer_class(name).needs_fisher:
        kw["fisher"] = {n: torch.ones_like(p) for n, p in net.named_parameters()}
    reg = create_regularizer(name, **kw)
    assert isinstance(reg, FinetuneRegularizer)
    start = float(reg(net).detach())
    with torch.no_grad():
        net[0].weight.add_(0.5)
    moved = reg(net)
    moved.backward()
    assert (name == "l2" or start == 0.0) and float(moved) > start
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0


def test_create_regularizer_errors():
    from transferkit.finetune import create_regularizer

    net = nn.Linear(3, 2)
    with pytest.raises(KeyError, match="unknown fine-tuning regularizer"):
        create_regularizer("nope", model=net, alpha=0.1, beta=0.1)
    with pytest.raises(ValueError, match="needs fisher"):
        create_regularizer("l2sp-fisher", model=net, alpha=0.1, beta=0.1)


@pytest.mark.parametrize("kind", ["l2sp", "l1sp"])
def test_penalty_update_trains_like_the_penalty_in_the_loss(kind: str) -> None:
    from transferkit.finetune import PenaltyUpdate
    from transferkit.train import Phase, Trainer, Update

    x = torch.randn(40, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    y = torch.randint(0, 4, (40,), generator=torch.Generator().manual_seed(4))

    def train(in_update: bool) -> nn.Module:
        model = tiny()
        reg = make(kind, model, 0.3, 0.05, new=["6"])
        perturb(model)
        step = classification_step()

        def with_penalty(m, batches, ctx):
            return {**step(m, batches, ctx), "penalty": reg(m)}

        phase = Phase(step if in_update else with_penalty,
                      torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                      {"train": Stream(x, y, batch_size=8, seed=0)},
                      update=PenaltyUpdate(reg, max_norm=5.0) if in_update else
                      Update(max_norm=5.0))
        Trainer(model, phase, max_steps=12, seed=0, log_losses_every=0).fit()
        return model

    a, b = train(True), train(False)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-11)
    with pytest.raises(TypeError, match="FinetuneRegularizer"):
        PenaltyUpdate(nn.Linear(2, 2))  # type: ignore[arg-type]
