"""One epoch of training, the same program for one process and under ``torchrun``.

``python ddp_programs.py MODE OUT`` trains with a global batch of ``BATCH`` rows (each of
N ranks gets ``BATCH / N`` of them) and writes the final parameters (and buffers) from
rank 0 to ``OUT``. Nothing here mentions the process group: the trainer joins it.
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from transferkit.adaptation import MSTN, AdaptationModel, adaptation_step
from transferkit.multitask import GradNorm, SharedTrunk, multitask_step
from transferkit.nets import MLP
from transferkit.train import Phase, Stream, Trainer, classification_step, seeded

N, BATCH = 64, 16
STEPS = N // BATCH  # one epoch


def _data() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 1, 4, 4, generator=g)
    y = (x.flatten(1)[:, :3].sum(1) > 0).long() + (x.flatten(1)[:, 3] > 0).long()
    return x, y, 10 * x.flatten(1)[:, 5], torch.randn(N, 1, 4, 4, generator=g) + 0.5


def plain() -> nn.Module:
    x, y, _, _ = _data()
    with seeded(0):
        net = MLP((1, 4, 4), 3, hidden=(12,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    phase = Phase(classification_step(), opt, {"train": Stream(x, y, batch_size=BATCH, seed=1)})
    history = Trainer(net, phase, STEPS, seed=0).fit()
    # the logged losses are the whole batch's (averaged over the ranks), as in one process
    net.register_buffer("logged_loss", torch.tensor(history.series("loss/ce")[1]))
    return net


def nonfinite() -> nn.Module:
    """Plain training whose loss is NaN at step 1 on the last rank only (on the one process
    alone): with ``nonfinite="skip"`` every rank must skip that step together."""
    from transferkit.distributed import rank_and_world_size

    x, y, _, _ = _data()
    with seeded(0):
        net = MLP((1, 4, 4), 3, hidden=(12,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    inner = classification_step()

    def step(model: nn.Module, batches: dict, ctx: object) -> dict:
        losses = dict(inner(model, batches, ctx))
        rank, world = rank_and_world_size()
        if ctx.step == 1 and rank == world - 1:  # type: ignore[attr-defined]
            losses["ce"] = losses["ce"] * float("nan")
        return losses

    phase = Phase(step, opt, {"train": Stream(x, y, batch_size=BATCH, seed=1)})
    Trainer(net, phase, STEPS, seed=0, nonfinite="skip").fit()
    return net


def gradnorm() -> nn.Module:
    x, y, reg, _ = _data()
    with seeded(0):
        trunk = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 12),
                              nn.ReLU())
        heads = {"cls": nn.Linear(12, 3), "reg": nn.Sequential(nn.Linear(12, 1), nn.Flatten(0))}
    model = SharedTrunk(trunk, heads, {"cls": "ce", "reg": "mse"})
    strategy = GradNorm(["cls", "reg"], alpha=1.5, lr=0.05, n_init=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    phase = Phase(multitask_step(), opt, {"train": Stream(x, y, reg, batch_size=BATCH, seed=1)},
                  combiner=strategy)
    Trainer(model, phase, STEPS, seed=0).fit()
    model.add_module("strategy", strategy)  # its weights are compared too
    return model


def mstn() -> nn.Module:
    x, y, _, xt = _data()
    with seeded(0):
        model = AdaptationModel(MLP((1, 4, 4), 3, hidden=(12,)), MSTN(12, 3, hidden=(8,)))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    streams = {"source": Stream(x, y, batch_size=BATCH, seed=1),
               "target": Stream(xt, batch_size=BATCH, seed=2)}
    Trainer(model, Phase(adaptation_step(), opt, streams), STEPS, seed=0).fit()
    return model


def bbse() -> nn.Module:
    """Each rank holds its share of the holdout predictions; fitted on the gathered rows, BBSE's
    confusion counts are the ranks' summed counts."""
    import numpy as np

    from transferkit.distributed import gather_rows, rank_and_world_size
    from transferkit.labelshift import BBSE

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    pred = np.where(rng.random(300) < 0.8, y, rng.integers(0, 3, 300))
    rank, world = rank_and_world_size()
    mine = np.array_split(np.arange(300), world)[rank]
    est = BBSE().fit(gather_rows(pred[mine]), gather_rows(y[mine]))
    holder = nn.Module()
    holder.register_buffer("confusion", torch.from_numpy(est.confusion_))
    return holder


PROGRAMS = {"plain": plain, "gradnorm": gradnorm, "mstn": mstn, "bbse": bbse,
            "nonfinite": nonfinite}


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if isinstance(v, torch.Tensor)}


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    result = state(PROGRAMS[mode]())
    if int(torch.distributed.get_rank() if torch.distributed.is_initialized() else 0) == 0:
        torch.save(result, out)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
