"""One non-finite batch: the loop's policy, and stateful pieces that never fold it in."""

import math

import pytest
import torch
from torch import nn

from transferkit.adaptation import MSTN
from transferkit.multitask import SharedTrunk, create_weighting, list_weightings
from transferkit.train import (
    NonFiniteLossError,
    Phase,
    Stream,
    Trainer,
    Update,
    classification_step,
    seeded,
)


def _data(bad_row=5):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=gen)
    y = (x[:, 0] > 0).long()
    x[bad_row] = float("nan")
    return x, y


def _params(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


def _trainer(policy, update=None):
    x, y = _data()
    with seeded(0):
        net = nn.Linear(4, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    # one batch of all 40 rows: every step sees the NaN row
    phase = Phase(classification_step(), opt, {"train": Stream(x, y, batch_size=40, seed=0)},
                  scheduler=sched, update=update or Update())
    return Trainer(net, phase, 3, nonfinite=policy), net, opt, sched


def test_default_policy_stops_with_a_clear_error():
    trainer, *_ = _trainer("raise")
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 0 .*'ce'"):
        trainer.fit()


@pytest.mark.parametrize("update", [Update(), Update(accumulate=2)])
def test_skip_touches_nothing(update):
    trainer, net, opt, sched = _trainer("skip", update)
    before = _params(net)
    trainer.fit()
    assert torch.equal(_params(net), before)
    assert opt.state == {} or all(not s for s in opt.state.values())  # no momentum buffers
    assert sched.last_epoch == 0 and trainer.step == 3
    assert all(math.isnan(v) for v in trainer.history.series("loss/ce")[1])


def test_warn_goes_on_and_ignore_does_not_check():
    trainer, net, *_ = _trainer("warn")
    with pytest.warns(RuntimeWarning, match="non-finite loss"):
        trainer.fit()
    assert torch.isnan(_params(net)).all()
    with pytest.raises(ValueError, match="nonfinite must be one of"):
        _trainer("sometimes")


@pytest.mark.parametrize("name", list_weightings())
def test_weightings_never_fold_a_non_finite_loss_into_their_state(name):
    torch.manual_seed(0)
    model = SharedTrunk(nn.Sequential(nn.Linear(3, 8), nn.ReLU()),
                        {"a": nn.Linear(8, 1), "b": nn.Linear(8, 1)},
                        {"a": "mse", "b": "mse"}, shared_layer="0")
    strategy = create_weighting(name, tasks=["a", "b"], shared=model.shared_parameters())
    x = torch.randn(16, 3)
    for _ in range(3):  # learn a little from clean losses
        out = model(x)
        strategy({"a": out["a"].pow(2).mean(), "b": (out["b"] - 3).pow(2).mean()})
    state = {k: v.clone() for k, v in strategy.state_dict().items() if torch.is_tensor(v)}
    weights = strategy(torch.ones(2)).clone()
    out = model(x)
    strategy({"a": out["a"].pow(2).mean() * float("nan"), "b": out["b"].pow(2).mean()})
    for k, v in strategy.state_dict().items():
        if torch.is_tensor(v) and k in state:
            assert torch.equal(v, state[k]), k
    assert torch.equal(strategy(torch.ones(2)), weights)
    assert torch.isfinite(weights).all()


def test_mstn_centroids_survive_a_nan_batch():
    torch.manual_seed(0)
    obj = MSTN(4, n_classes=3, hidden=(8,))
    s, t = torch.randn(12, 4), torch.randn(12, 4)
    labels, logits = torch.arange(12) % 3, torch.randn(12, 3)
    obj(s, t, labels, logits)
    before = obj.source_centroids.clone(), obj.target_centroids.clone()
    bad = s.clone()
    bad[0] = float("nan")
    obj(bad, t, labels, logits)
    assert torch.equal(obj.source_centroids, before[0])
    assert torch.equal(obj.target_centroids, before[1])
    out = obj(s, t, labels, logits)  # a clean batch after it is clean
    assert torch.isfinite(out.semantic)
