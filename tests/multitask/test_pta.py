"""Pseudo-task augmentation: decoders, the control methods, the callback in the loop."""

import pytest
import torch
from torch import nn

from transferkit.multitask import (
    DecoderControlCallback,
    PseudoTaskModel,
    create_decoder_control,
    list_decoder_controls,
    pta_step,
)
from transferkit.train import Phase, Stream, Trainer


def _model(d=4, tasks=None, seed=0):
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(6, 12), nn.ReLU())
    return PseudoTaskModel(trunk, 12, tasks or {"a": 3}, n_decoders=d, seed=seed)


def _data(n=150, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


def _weights(model, task="a"):
    return [torch.cat([layer.weight.flatten(), layer.bias]).detach().clone()
            for layer in model.layers(task)]


def _train(model, control, steps=60, every=10):
    x, y = _data()
    cb = DecoderControlCallback(control, x[:40], {"a": y[:40]}, every=every, seed=1)
    phase = Phase(pta_step(), torch.optim.Adam(model.parameters(), 1e-2),
                  {"train": Stream(x[40:], y[40:], batch_size=16, seed=0)})
    Trainer(model, phase, steps, callbacks=[cb], seed=0).fit()
    return cb


def test_the_four_controls_are_registered():
    assert list_decoder_controls() == ["pta-f", "pta-hgd", "pta-i", "pta-p"]
    with pytest.raises(KeyError, match="unknown decoder control"):
        create_decoder_control("pta-x")


def test_decoders_start_different_and_stay_different_under_perturbation():
    model = _model()
    w = _weights(model)
    assert all(not torch.equal(w[0], other) for other in w[1:])
    for control in ("pta-p", "pta-hgd"):
        m = _model()
        _train(m, control)
        w = _weights(m)
        assert min(float((a - b).abs().max()) for i, a in enumerate(w) for b in w[i + 1:]) > 0


def test_frozen_decoders_do_not_move_during_their_meta_iteration():
    model = _model()
    x, y = _data()
    model.frozen[0] = torch.tensor([True, False, True, False])
    before = _weights(model)
    trunk_before = model.trunk[0].weight.clone()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(5):
        losses = model.pseudo_task_losses(x, {"a": y})
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()
    after = _weights(model)
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
    assert not torch.equal(before[1], after[1])
    assert not torch.equal(trunk_before, model.trunk[0].weight)  # frozen ones still train it


def test_random_freezing_draws_new_decoders_each_meta_iteration():
    model = _model(d=8)
    control = create_decoder_control("pta-f", p_freeze=0.5)
    g = torch.Generator().manual_seed(0)
    draws = []
    for _ in range(3):
        control.control(model, torch.zeros(1, 8), g)
        draws.append(model.frozen.clone())
    assert not torch.equal(draws[0], draws[1]) and 0 < int(draws[0].sum()) < 8


def test_the_greedy_step_copies_the_best_weights_and_dropout_rate():
    model = _model()
    control = create_decoder_control("pta-hgd", rate_noise=0.0)
    g = torch.Generator().manual_seed(0)
    control.start(model, g)
    assert len(set(model.dropout[0].tolist())) == 4  # own rates, drawn at the start
    model.best[0] = 2
    best_rate = float(model.dropout[0, 2])
    control.control(model, torch.zeros(1, 4), g)
    w = _weights(model)
    assert all(torch.equal(w[2], other) for other in w)
    assert torch.allclose(model.dropout[0], torch.full((4,), best_rate))
    # with hyper-perturbation the copies' rates move, the best's does not
    noisy = create_decoder_control("pta-hgd", rate_noise=0.2)
    noisy.control(model, torch.zeros(1, 4), g)
    assert float(model.dropout[0, 2]) == best_rate
    assert any(float(model.dropout[0, j]) != best_rate for j in (0, 1, 3))


def test_the_callback_records_the_best_decoder_and_predictions_use_it():
    model = _model()
    _train(model, "pta-i", steps=30)
    x, y = _data()
    scores = model.decoder_scores(x[:40], {"a": y[:40]})
    assert int(model.best[0]) == int(scores[0].argmax())
    best = model.layers("a")[int(model.best[0])]
    torch.testing.assert_close(model.predict(x[:5])["a"], best(model.trunk(x[:5])))


def test_multi_task_models_and_missing_labels():
    model = _model(tasks={"a": 3, "b": 2})
    x, y = _data()
    yb = (x[:, 2] > 0).long()
    yb[:10] = -1
    losses = model.pseudo_task_losses(x, {"a": y, "b": yb})
    assert sorted(losses) == [f"{t}/d{j}" for t in "ab" for j in range(4)]
    with pytest.raises(ValueError, match="n_decoders must be"):
        _model(d=0)
