import math

import pytest
import torch

from transferkit.adaptation import (
    AnnealedLR,
    DomainDiscriminator,
    GradientReversal,
    annealed_lr_factor,
    annealed_lr_scheduler,
    grad_reverse,
    grl_lambda,
)


def _reversed_as_function(coeff):
    # value: x - (1 + coeff) * x = -coeff * x (what finite differences see);
    # analytic gradient: only through the reversal layer, -coeff, if it is correct.
    def g(x):
        return torch.sin(grad_reverse(x, coeff) - (1.0 + coeff) * x.detach())

    return g


@pytest.mark.parametrize("coeff", [0.0, 0.25, 1.0, 3.0])
def test_gradcheck_float64(coeff):
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_reversed_as_function(coeff), (x,))
    assert torch.autograd.gradgradcheck(_reversed_as_function(coeff), (x,))


def test_gradcheck_detects_a_wrong_sign():
    # the same construction with the sign of the reversal ignored must fail gradcheck
    x = torch.randn(3, dtype=torch.float64, requires_grad=True)

    def wrong(inp):
        return torch.sin(grad_reverse(inp, 0.5) - 0.5 * inp.detach())  # value 0.5 x

    assert not torch.autograd.gradcheck(wrong, (x,), raise_exception=False)


def test_reversal_values():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = grad_reverse(x, 2.0)
    assert torch.equal(y, x)
    (y * torch.tensor([3.0, 4.0])).sum().backward()
    assert x.grad.tolist() == [-6.0, -8.0]
    x.grad = None
    GradientReversal(0.5)(x, coeff=1.0).sum().backward()
    assert x.grad.tolist() == [-1.0, -1.0]


def test_reversal_rejects_bad_coeff():
    with pytest.raises(ValueError, match="coeff"):
        grad_reverse(torch.zeros(1), -1.0)
    with pytest.raises(TypeError, match="Tensor"):
        grad_reverse([1.0])


def test_grl_lambda_schedule():
    assert grl_lambda(0.0) == 0.0
    for p in (0.1, 0.5, 0.9):
        assert grl_lambda(p) == pytest.approx(2 / (1 + math.exp(-10 * p)) - 1)
    assert grl_lambda(0.2) < grl_lambda(0.4) < 1
    with pytest.raises(ValueError, match="progress"):
        grl_lambda(1.5)


def test_annealed_lr_matches_formula_through_lambdalr():
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.01, momentum=0.9)
    sched = annealed_lr_scheduler(opt, max_steps=50)
    lrs = []
    for _ in range(50):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    for t, lr in enumerate(lrs):
        assert lr == pytest.approx(0.01 / (1 + 10 * t / 50) ** 0.75)
    assert annealed_lr_factor(0.5) == pytest.approx(6**-0.75)
    state = sched.state_dict()
    assert state["lr_lambdas"][0]["max_steps"] == 50
    with pytest.raises(ValueError):
        AnnealedLR(0)


def test_discriminator_shapes_and_validation():
    d = DomainDiscriminator(6, hidden=(4, 3), dropout=0.1)
    assert d(torch.zeros(7, 6)).shape == (7,)
    with pytest.raises(ValueError, match="in_features"):
        DomainDiscriminator(0)
