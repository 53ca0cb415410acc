import pytest
import torch
from torch import nn

from transferkit.nets import MLP
from transferkit.train import (
    Callback,
    Evaluate,
    Phase,
    Stream,
    Trainer,
    accuracy,
    classification_step,
    fit,
    seeded,
    sum_losses,
)


def _setup(tiny_xy, seed=0, dropout=0.2):
    x, y = tiny_xy
    with seeded(seed):
        model = MLP((1, 4, 4), n_classes=2, hidden=(16, 16), dropout=dropout)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    streams = {"train": Stream(x, y, batch_size=16, seed=seed)}
    return model, opt, streams


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_same_seed_same_numbers_bit_for_bit(tiny_xy):
    runs = []
    for _ in range(2):
        model, opt, streams = _setup(tiny_xy)
        hist = fit(model, classification_step(), streams, opt, 30, seed=3)
        runs.append((_params(model), hist.series("loss/ce")[1]))
    assert torch.equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    model, opt, streams = _setup(tiny_xy, seed=1)
    fit(model, classification_step(), streams, opt, 30, seed=4)
    assert not torch.equal(runs[0][0], _params(model))


def test_loop_leaves_global_rng_alone(tiny_xy):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model, opt, streams = _setup(tiny_xy)
    fit(model, classification_step(), streams, opt, 5, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_resume_from_checkpoint_equals_uninterrupted_run(tiny_xy, tmp_path):
    model, opt, streams = _setup(tiny_xy)
    full = fit(model, classification_step(), streams, opt, 40, seed=5)
    expected = _params(model)

    ckpt = tmp_path / "run.pt"

    class Kill(Callback):
        every = 1

        def on_step_end(self, trainer, ctx):
            if trainer.step == 17:
                raise KeyboardInterrupt

    model, opt, streams = _setup(tiny_xy)
    t = Trainer(
        model,
        Phase(classification_step(), opt, streams),
        40,
        callbacks=[Kill()],
        seed=5,
        checkpoint=ckpt,
        checkpoint_every=5,
    )
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    assert ckpt.exists()
    assert torch.load(ckpt, weights_only=True)["step"] == 15

    model, opt, streams = _setup(tiny_xy, seed=9)  # other init: everything must come from disk
    streams = {"train": Stream(*tiny_xy, batch_size=16, seed=0)}
    resumed = Trainer(
        model,
        Phase(classification_step(), opt, streams),
        40,
        seed=5,
        checkpoint=ckpt,
        checkpoint_every=5,
    ).fit()
    assert torch.equal(_params(model), expected)
    assert resumed.series("loss/ce") == full.series("loss/ce")
    assert not list(tmp_path.glob("*.tmp"))


def test_two_streams_phases_and_custom_combiner(tiny_xy):
    x, y = tiny_xy
    with seeded(0):
        model = nn.Linear(16, 2)
    seen = []

    def step_a(m, batches, ctx):
        seen.append((ctx.phase, sorted(batches)))
        (xs, ys), (xt,) = batches["source"], batches["target"]
        return {
            "ce": nn.functional.cross_entropy(m(xs.flatten(1)), ys),
            "t": m(xt.flatten(1)).pow(2).mean(),
        }

    def step_b(m, batches, ctx):
        seen.append((ctx.phase, sorted(batches)))
        xs, ys = batches["source"]
        return {"ce": nn.functional.cross_entropy(m(xs.flatten(1)), ys)}

    calls = []

    def halve(losses, ctx):
        calls.append(sorted(losses))
        return 0.5 * sum_losses(losses, ctx)

    src = Stream(x, y, batch_size=8)
    tgt = Stream(x, batch_size=8, seed=1)
    a = Phase(
        step_a,
        torch.optim.SGD(model.parameters(), lr=0.1),
        {"source": src, "target": tgt},
        steps=2,
        name="a",
        combiner=halve,
    )
    b = Phase(step_b, torch.optim.Adam(model.parameters(), lr=0.01), {"source": src}, name="b")
    Trainer(model, [a, b], max_steps=6).fit()
    assert [p for p, _ in seen] == ["a", "a", "b", "a", "a", "b"]
    assert seen[0][1] == ["source", "target"] and seen[2][1] == ["source"]
    assert len(calls) == 4 and calls[0] == ["ce", "t"]


def test_per_example_weights_change_the_loss(tiny_xy):
    x, y = tiny_xy
    w = torch.zeros(len(y))
    with seeded(0):
        model = nn.Linear(16, 2)
    before = _params(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    fit(model, classification_step(), {"train": Stream(x.flatten(1), y, w, batch_size=16)}, opt, 3)
    assert torch.equal(before, _params(model))  # all weights zero: no gradient at all


def test_evaluate_callback_and_early_stop(tiny_xy):
    x, y = tiny_xy
    model, opt, streams = _setup(tiny_xy, dropout=0.0)

    class StopAt(Callback):
        every = 10

        def on_step_end(self, trainer, ctx):
            if trainer.step >= 20:
                trainer.should_stop = True

    hist = fit(
        model,
        classification_step(),
        streams,
        opt,
        100,
        callbacks=[Evaluate(lambda m: {"acc": accuracy(m, x, y)}, every=10), StopAt()],
    )
    steps, accs = hist.series("acc")
    assert steps == [10, 20] and all(0.0 <= a <= 1.0 for a in accs)
    assert model.training  # evaluation restored train mode


def test_stream_validation():
    with pytest.raises(ValueError, match="tensor 1 has 3 rows"):
        Stream(torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match="batch_size"):
        Stream(torch.zeros(4), batch_size=0)


def _phase_log(x, y, model, name, seen, steps=2, first_steps=None):
    def step(m, batches, ctx):
        seen.append(ctx.phase)
        xs, ys = batches["s"]
        return {name: nn.functional.cross_entropy(m(xs.flatten(1)), ys)}

    return Phase(step, torch.optim.SGD(model.parameters(), lr=0.1),
                 {"s": Stream(x, y, batch_size=8, seed=0)}, steps=steps, name=name,
                 first_steps=first_steps)


def test_first_steps_is_a_burn_in_of_one_phase_then_the_cycle(tiny_xy):
    x, y = tiny_xy
    model = nn.Linear(16, 2)
    seen = []
    phases = [_phase_log(x, y, model, "aux", seen, 2, first_steps=5),
              _phase_log(x, y, model, "main", seen, 2)]
    Trainer(model, phases, 13, seed=0).fit()
    assert seen == ["aux"] * 5 + ["main"] * 2 + ["aux"] * 2 + ["main"] * 2 + ["aux"] * 2
    with pytest.raises(ValueError, match="first_steps"):
        Trainer(model, [_phase_log(x, y, model, "a", [], first_steps=-1)], 3)


def test_best_checkpoint_patience_stops_and_a_resumed_run_stays_stopped(tiny_xy, tmp_path):
    from transferkit.train import BestCheckpoint

    x, y = tiny_xy
    scores = iter([3.0, 2.0, 2.5, 2.4, 2.6] + [9.0] * 100)

    def make():
        model = nn.Linear(16, 2)
        seen = []
        best = BestCheckpoint(lambda m: next(scores), every=2, patience=3, after_phase="main")
        phases = [_phase_log(x, y, model, "aux", seen, 1), _phase_log(x, y, model, "main", seen, 1)]
        return Trainer(model, phases, 40, callbacks=[best], seed=0,
                       checkpoint=tmp_path / "ck.pt"), best, seen

    trainer, best, seen = make()
    trainer.fit()
    # evaluated after main steps 2, 4, 6, 8, 10; best at 4; three worse -> stop at 10
    assert trainer.step == 10 and best.best_step == 4 and best.best_score == 2.0
    again, best2, seen2 = make()
    again.fit()
    assert again.step == 10 and seen2 == [] and best2.best_step == 4


def test_a_callback_ends_one_phase_the_others_go_on_and_a_resume_keeps_it_ended(tiny_xy,
                                                                                 tmp_path):
    from transferkit.train import BestCheckpoint

    x, y = tiny_xy
    scores = iter([3.0, 2.0, 2.5, 2.6] + [9.0] * 100)

    def make(max_steps):
        model = nn.Linear(16, 2)
        seen = []
        stop_aux = BestCheckpoint(lambda m: next(scores), every=2, patience=2,
                                  after_phase="aux", ends="aux", restore=False)
        phases = [_phase_log(x, y, model, "aux", seen, 2, first_steps=4),
                  _phase_log(x, y, model, "main", seen, 2)]
        return Trainer(model, phases, max_steps, callbacks=[stop_aux], seed=0,
                       checkpoint=tmp_path / "ck.pt"), seen

    trainer, seen = make(14)
    trainer.fit()
    # aux scored after steps 2, 4 (burn-in), 8: best at 4, then worse at 8 and 12 -> ended
    assert seen == ["aux"] * 4 + ["main"] * 2 + ["aux"] * 2 + ["main"] * 2 + ["aux"] * 2 \
        + ["main"] * 2
    assert trainer.ended == {"aux"} and trainer.step == 14
    again, seen2 = make(20)  # resumed: only main steps remain
    again.fit()
    assert seen2 == ["main"] * 6 and again.ended == {"aux"}
    with pytest.raises(ValueError, match="no phase named 'x'"):
        again.end_phase("x")


def test_ending_every_phase_stops_training(tiny_xy):
    x, y = tiny_xy
    model = nn.Linear(16, 2)
    seen = []
    trainer = Trainer(model, [_phase_log(x, y, model, "only", seen, 1)], 5, seed=0)
    trainer.end_phase("only")
    trainer.fit()
    assert seen == [] and trainer.step == 0
