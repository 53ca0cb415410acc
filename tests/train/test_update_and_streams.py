"""The loop's open parts: updates, per-stream draws, sampler state, Dataset streams, ranks."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from transferkit.train import (
    Callback,
    DatasetStream,
    Phase,
    Stream,
    Trainer,
    Update,
    classification_step,
    seeded,
)
from transferkit.train import loop as loop_module


def _net(seed=0):
    with seeded(seed):
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 2))


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


# ------------------------------------------------------------------------------ updates
def test_default_update_is_a_hand_written_step_bit_for_bit(tiny_xy):
    x, y = tiny_xy
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    stream = Stream(x, y, batch_size=16, seed=4)
    Trainer(net, Phase(classification_step(), opt, {"train": stream}, scheduler=sched),
            10, seed=0).fit()

    ref = _net()
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    ref_sched = torch.optim.lr_scheduler.StepLR(ref_opt, step_size=3, gamma=0.5)
    for draw in range(10):
        xb, yb = stream.batch(draw)
        loss = nn.functional.cross_entropy(ref(xb), yb)
        ref_opt.zero_grad(set_to_none=True)
        loss.backward()
        ref_opt.step()
        ref_sched.step()
    assert torch.equal(_params(net), _params(ref))


def test_clipping_matches_clip_grad_norm(tiny_xy):
    x, y = tiny_xy
    net, ref = _net(), _net()
    stream = Stream(x, y, batch_size=16, seed=1)
    update = Update(max_norm=0.05)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    Trainer(net, Phase(classification_step(), opt, {"train": stream}, update=update), 3).fit()
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    norms = []
    for draw in range(3):
        xb, yb = stream.batch(draw)
        ref_opt.zero_grad()
        nn.functional.cross_entropy(ref(xb), yb).backward()
        norms.append(float(nn.utils.clip_grad_norm_(ref.parameters(), 0.05)))
        ref_opt.step()
    assert torch.equal(_params(net), _params(ref))
    assert float(update.last_grad_norm) == pytest.approx(norms[-1])
    assert norms[-1] > 0.05  # the clip was active


def test_accumulation_equals_one_step_on_the_concatenated_batch(tiny_xy):
    x, y = tiny_xy
    net, ref = _net(), _net()
    stream = Stream(x, y, batch_size=8, seed=2)
    opt = torch.optim.SGD(net.parameters(), lr=0.3)
    trainer = Trainer(
        net, Phase(classification_step(), opt, {"train": stream}, update=Update(accumulate=4)), 2
    )
    hist = trainer.fit()
    assert trainer.draws(stream) == 8  # four micro-batches per step
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.3)
    for step in range(2):
        rows = [stream.batch(4 * step + j) for j in range(4)]
        xb, yb = torch.cat([r[0] for r in rows]), torch.cat([r[1] for r in rows])
        ref_opt.zero_grad()
        loss = nn.functional.cross_entropy(ref(xb), yb)
        loss.backward()
        ref_opt.step()
    torch.testing.assert_close(_params(net), _params(ref), rtol=1e-5, atol=1e-6)
    # the logged loss is the mean over the micro-batches = the loss on the whole batch
    assert hist.last("loss/ce") == pytest.approx(float(loss.detach()), rel=1e-5)


def test_bfloat16_autocast_on_cpu(tiny_xy):
    x, y = tiny_xy
    net = _net()
    seen = []
    net[1].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    update = Update(autocast=torch.bfloat16)
    hist = Trainer(net, Phase(classification_step(), opt, {"train": Stream(x, y, seed=0)},
                              update=update), 3).fit()
    assert seen == [torch.bfloat16] * 3
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert np.isfinite(hist.last("loss/ce"))
    assert update.state_dict() == {"scaler": None}  # no loss scaling on the CPU


@pytest.mark.parametrize(
    "kwargs, error",
    [({"accumulate": 0}, "accumulate"), ({"accumulate": 2.5}, "accumulate"),
     ({"max_norm": -1.0}, "max_norm"), ({"max_norm": float("inf")}, "max_norm"),
     ({"autocast": "bf16"}, "autocast")],
)
def test_update_validates_its_arguments(kwargs, error):
    with pytest.raises((ValueError, TypeError), match=error):
        Update(**kwargs)


def test_phase_update_must_be_an_update(tiny_xy):
    net = _net()
    phase = Phase(classification_step(), torch.optim.SGD(net.parameters(), lr=0.1),
                  {"train": Stream(*tiny_xy, seed=0)}, update=lambda *a: None)
    with pytest.raises(TypeError, match="Update"):
        Trainer(net, phase, 1)


def test_a_subclass_replaces_the_update(tiny_xy):
    class SignSGD(Update):  # e.g. an outer step that is not "optimizer.step()"
        def __call__(self, compute, phase, ctx):
            losses, total = compute()
            grads = torch.autograd.grad(total, list(ctx.model.parameters()))
            with torch.no_grad():
                for p, g in zip(ctx.model.parameters(), grads, strict=True):
                    p -= 0.01 * g.sign()
            return losses

    net = _net()
    before = _params(net)
    phase = Phase(classification_step(), torch.optim.SGD(net.parameters(), lr=0.0),
                  {"train": Stream(*tiny_xy, seed=0)}, update=SignSGD())
    Trainer(net, phase, 1).fit()
    moved = (_params(net) - before).abs()
    assert (moved > 0).sum() > 10 and torch.allclose(moved[moved > 0], torch.tensor(0.01))


# ------------------------------------------------------------------------- draw counts
def test_each_stream_walks_its_epochs_whichever_phase_draws(tiny_xy):
    x, _ = tiny_xy
    ids = torch.arange(len(x))
    seen = {"a": [], "b": []}

    def step(name):
        def fn(model, batches, ctx):
            seen[name].append(batches[name][0])
            return {"z": model(x[:1]).sum() * 0.0}
        return fn

    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    sa, sb = Stream(ids, batch_size=8, seed=0), Stream(ids, batch_size=16, seed=1)
    phases = [Phase(step("a"), opt, {"a": sa}, steps=2, name="a"),
              Phase(step("b"), opt, {"b": sb}, name="b")]
    trainer = Trainer(net, phases, max_steps=3 * 12)  # 24 draws of a, 12 of b
    trainer.fit()
    assert trainer.draws(sa) == 24 and trainer.draws(sb) == 12
    for name, per_epoch in (("a", 12), ("b", 6)):
        first_epoch = torch.cat(seen[name][:per_epoch])
        assert sorted(first_epoch.tolist()) == ids.tolist()  # every row exactly once


def test_a_stream_shared_by_two_phases_keeps_one_count(tiny_xy):
    x, y = tiny_xy
    ids = torch.arange(len(x))
    got = []

    def fn(model, batches, ctx):
        got.append(batches["s"][0])
        return {"z": model(x[:1]).sum() * 0.0}

    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    shared = Stream(ids, batch_size=12, seed=3)
    Trainer(net, [Phase(fn, opt, {"s": shared}, name="a"), Phase(fn, opt, {"s": shared},
                                                                 name="b")], 8).fit()
    assert sorted(torch.cat(got).tolist()) == ids.tolist()


def test_unseeded_streams_draw_different_sequences():
    a, b = Stream(torch.arange(100), batch_size=10), Stream(torch.arange(100), batch_size=10)
    assert a.seed != b.seed
    assert not torch.equal(a.batch(0)[0], b.batch(0)[0])
    torch.manual_seed(0)
    c = Stream(torch.arange(100), batch_size=10)
    torch.manual_seed(0)
    d = Stream(torch.arange(100), batch_size=10)
    assert c.seed == d.seed  # repeatable under torch.manual_seed, like a shuffling DataLoader


# ---------------------------------------------------------------------- sampler state
class LossPacedSampler:
    """A toy curriculum: the pool grows by 8 rows each time the callback says so."""

    def __init__(self, n, batch_size):
        self.n, self.batch_size, self.pool = n, batch_size, 16

    def indices(self, draw):
        gen = torch.Generator().manual_seed(draw)
        return torch.randint(0, self.pool, (self.batch_size,), generator=gen)

    def state_dict(self):
        return {"pool": self.pool}

    def load_state_dict(self, state):
        self.pool = int(state["pool"])


class Grow(Callback):
    every = 3

    def __init__(self, sampler, kill_at=None):
        self.sampler, self.kill_at = sampler, kill_at

    def on_step_end(self, trainer, ctx):
        if trainer.history.last("loss/ce") > 0:  # driven by the (pending) losses
            self.sampler.pool = min(self.sampler.n, self.sampler.pool + 8)
        if trainer.step == self.kill_at:
            raise KeyboardInterrupt


def _paced_run(tiny_xy, ckpt=None, kill_at=None, stream_cls="tensor"):
    x, y = tiny_xy
    sampler = LossPacedSampler(len(x), 8)
    if stream_cls == "tensor":
        stream = Stream(x, y, sampler=sampler)
    else:
        stream = DatasetStream(TensorDataset(x, y), sampler=sampler)
    net = _net()
    trainer = Trainer(net, Phase(classification_step(), torch.optim.Adam(net.parameters(), 0.01),
                                 {"train": stream}), 20, callbacks=[Grow(sampler, kill_at)],
                      seed=1, checkpoint=ckpt, checkpoint_every=4)
    hist = trainer.fit()
    return net, hist, sampler


@pytest.mark.parametrize("stream_cls", ["tensor", "dataset"])
def test_stateful_sampler_survives_a_kill_exactly(tiny_xy, tmp_path, stream_cls):
    full_net, full_hist, full_sampler = _paced_run(tiny_xy, stream_cls=stream_cls)
    ckpt = tmp_path / "paced.pt"
    with pytest.raises(KeyboardInterrupt):
        _paced_run(tiny_xy, ckpt, kill_at=15, stream_cls=stream_cls)  # checkpoint at 12
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 12 and state["streams"][0]["sampler"]["pool"] == 48
    net, hist, sampler = _paced_run(tiny_xy, ckpt, stream_cls=stream_cls)
    assert torch.equal(_params(net), _params(full_net))
    assert hist.series("loss/ce") == full_hist.series("loss/ce")
    assert sampler.pool == full_sampler.pool


def test_a_checkpoint_for_other_streams_is_refused(tiny_xy, tmp_path):
    x, y = tiny_xy
    ckpt = tmp_path / "c.pt"
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    Trainer(net, Phase(classification_step(), opt, {"train": Stream(x, y, seed=0)}), 2,
            checkpoint=ckpt).fit()
    two = {"train": Stream(x, y, seed=0), "other": Stream(x, seed=1)}
    with pytest.raises(ValueError, match="1 streams; this trainer has 2"):
        Trainer(net, Phase(classification_step(), opt, two), 4, checkpoint=ckpt).fit()


# -------------------------------------------------------------------- Dataset streams
class SquaresDataset(Dataset):
    """Rows computed on the fly (stands in for files on disk)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.full((4,), float(i)), i % 3


@pytest.mark.parametrize("workers", [0, 2])
def test_dataset_stream_serves_the_same_batches_as_a_tensor_stream(workers):
    n = 50
    tensors = Stream(torch.arange(n).float()[:, None].repeat(1, 4), torch.arange(n) % 3,
                     batch_size=8, seed=5)
    ds = DatasetStream(SquaresDataset(n), batch_size=8, seed=5, num_workers=workers)
    for draw in [0, 1, 2, 7, 3]:  # a jump back restarts the loader at that draw
        a, b = tensors.batch(draw), ds.batch(draw)
        assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    ds.close()


def test_dataset_stream_training_equals_tensor_stream_training(tiny_xy):
    x, y = tiny_xy
    nets = []
    for stream in (Stream(x, y, batch_size=16, seed=2),
                   DatasetStream(TensorDataset(x, y), batch_size=16, seed=2, num_workers=1)):
        net = _net()
        Trainer(net, Phase(classification_step(), torch.optim.SGD(net.parameters(), lr=0.1),
                           {"train": stream}), 12, seed=0).fit()
        nets.append(_params(net))
    assert torch.equal(*nets)


def test_dataset_stream_errors():
    with pytest.raises(TypeError, match="map-style Dataset"):
        DatasetStream(torch.zeros(4))
    with pytest.raises(ValueError, match="num_workers"):
        DatasetStream(SquaresDataset(4), num_workers=-1)
    with pytest.raises(ValueError, match="stale state"):
        DatasetStream(SquaresDataset(40), sampler=LossPacedSampler(40, 4), num_workers=2)

    class Dicts(SquaresDataset):
        def __getitem__(self, i):
            return {"x": torch.zeros(2)}

    with pytest.raises(TypeError, match="tuple of tensors"):
        DatasetStream(Dicts(4), batch_size=2, seed=0).batch(0)


def test_memory_mapped_npy_stream(tmp_path):
    arr = np.arange(60, dtype=np.float32).reshape(20, 3)
    np.save(tmp_path / "x.npy", arr)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")

    class Rows(Dataset):
        def __len__(self):
            return len(mm)

        def __getitem__(self, i):
            return torch.from_numpy(np.array(mm[i]))

    (xb,) = DatasetStream(Rows(), batch_size=5, seed=0).batch(0)
    assert xb.shape == (5, 3) and set((xb[:, 0] / 3).long().tolist()) <= set(range(20))


# ------------------------------------------------------------------------------ ranks
def test_ranks_get_disjoint_shards_of_every_batch():
    data = torch.arange(40)
    whole = Stream(data, batch_size=10, seed=0)
    shards = [Stream(data, batch_size=10, seed=0, rank=r, world_size=3) for r in range(3)]
    for draw in range(5):
        parts = [s.batch(draw)[0] for s in shards]
        assert sorted(torch.cat(parts).tolist()) == sorted(whole.batch(draw)[0].tolist())
        assert sum(len(p) for p in parts) == 10
    with pytest.raises(ValueError, match="world_size"):
        Stream(data, rank=3, world_size=3)
    with pytest.raises(ValueError, match="both"):
        Stream(data, rank=0)
    with pytest.raises(ValueError, match="cannot be shared"):
        Stream(data, batch_size=2, seed=0, rank=0, world_size=3).batch(0)


def test_only_rank_zero_writes_checkpoints_and_shows_progress(tiny_xy, tmp_path, monkeypatch):
    monkeypatch.setattr(loop_module, "rank_and_world_size", lambda: (1, 2))
    net = _net()
    ckpt = tmp_path / "r.pt"
    trainer = Trainer(net, Phase(classification_step(), torch.optim.SGD(net.parameters(), 0.1),
                                 {"train": Stream(*tiny_xy, seed=0)}), 3, checkpoint=ckpt,
                      progress=True)
    trainer.fit()
    assert trainer.rank == 1 and not trainer.progress and not ckpt.exists()


# --------------------------------------------------------------------------- history
def test_losses_are_buffered_and_read_in_bulk(tiny_xy):
    pending = []

    class Peek(Callback):
        every = 100  # runs after the last step only

        def on_step_end(self, trainer, ctx):
            pending.append(len(trainer._pending))  # nothing was read from the device yet
            pending.append(len(trainer.history.records))  # reading the history flushes

    net = _net()
    trainer = Trainer(net, Phase(classification_step(), torch.optim.SGD(net.parameters(), 0.1),
                                 {"train": Stream(*tiny_xy, seed=0)}), 5, callbacks=[Peek()])
    hist = trainer.fit()
    assert pending == [5, 5]
    steps, values = hist.series("loss/ce")
    assert steps == [1, 2, 3, 4, 5] and all(isinstance(v, float) for v in values)


def test_progress_bar_draws_in_a_terminal_of_zero_columns(tiny_xy, monkeypatch, capsys):
    import os
    import shutil

    monkeypatch.setattr(shutil, "get_terminal_size", lambda fallback=None: os.terminal_size((0, 0)))
    net = _net()
    Trainer(net, Phase(classification_step(), torch.optim.SGD(net.parameters(), lr=0.1),
                       {"train": Stream(*tiny_xy, seed=0)}), 60, progress=True,
            desc="zero-width").fit()
    err = capsys.readouterr().err
    assert "zero-width:" in err and "/60" in err and "it/s" in err


def test_logged_losses_keep_their_float64_value(tiny_xy):
    x, y = tiny_xy
    with seeded(0):
        net = nn.Linear(16, 2).double()

    def step(model, batches, ctx):
        xb, yb = batches["train"]
        return {"ce": nn.functional.cross_entropy(model(xb.flatten(1).double()), yb)}

    stream = Stream(x, y, batch_size=96, seed=0)
    hist = Trainer(net, Phase(step, torch.optim.SGD(net.parameters(), lr=0.1),
                              {"train": stream}), 1).fit()
    with seeded(0):
        ref = nn.Linear(16, 2).double()
    xb, yb = stream.batch(0)
    expected = float(nn.functional.cross_entropy(ref(xb.flatten(1).double()), yb).detach())
    assert hist.last("loss/ce") == expected  # exactly, not rounded to float32
