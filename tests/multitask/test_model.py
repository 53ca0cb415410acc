"""SharedTrunk: per-task heads and losses, masks for missing labels, the last shared layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from transferkit.multitask import SharedTrunk, masked_task_loss, multitask_step
from transferkit.multitask.model import all_labelled
from transferkit.train import Stream, fit


def _net() -> SharedTrunk:
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU())
    heads = {"cls": nn.Linear(6, 3), "multi": nn.Linear(6, 2), "reg": nn.Linear(6, 1)}
    return SharedTrunk(trunk, heads, {"cls": "ce", "multi": "bce", "reg": "mse"})


def test_last_shared_layer_default_and_named() -> None:
    net = _net()
    assert net.shared_parameters()[0] is net.trunk[2].weight
    named = SharedTrunk(net.trunk, dict(net.heads), net.losses, shared_layer="0")
    assert named.shared_parameters()[0] is net.trunk[0].weight
    with pytest.raises(ValueError, match="not a submodule"):
        SharedTrunk(net.trunk, dict(net.heads), net.losses, shared_layer="9")


def test_masked_losses_equal_losses_on_labelled_rows() -> None:
    net = _net()
    x = torch.randn(6, 4)
    y_cls = torch.tensor([0, 1, -1, 2, -1, 0])
    y_multi = torch.tensor([[1.0, 0.0], [float("nan"), 1.0], [0.0, 0.0],
                            [1.0, 1.0], [0.0, float("nan")], [1.0, 0.0]])
    y_reg = torch.tensor([[1.0], [2.0], [float("nan")], [0.5], [0.0], [float("nan")]])
    out = net(x)
    losses = net.task_losses(out, {"cls": y_cls, "multi": y_multi, "reg": y_reg})
    keep = y_cls >= 0
    torch.testing.assert_close(losses["cls"],
                               nn.functional.cross_entropy(out["cls"][keep], y_cls[keep]))
    ok = ~torch.isnan(y_multi)
    per = nn.functional.binary_cross_entropy_with_logits(out["multi"][ok], y_multi[ok])
    torch.testing.assert_close(losses["multi"], per)
    rk = ~torch.isnan(y_reg[:, 0])
    torch.testing.assert_close(losses["reg"], nn.functional.mse_loss(out["reg"][rk], y_reg[rk]))
    for v in losses.values():
        assert torch.isfinite(v)


def test_task_without_labels_is_left_out_and_explicit_masks_work() -> None:
    net = _net()
    x = torch.randn(4, 4)
    y = torch.tensor([0, 1, 2, 0])
    losses = net.task_losses(net(x), {"cls": torch.full((4,), -1), "reg": torch.zeros(4, 1)})
    assert list(losses) == ["reg"]
    masked = net.task_losses(net(x), {"cls": y}, masks={"cls": torch.tensor([1, 0, 0, 1]).bool()})
    torch.testing.assert_close(
        masked["cls"], nn.functional.cross_entropy(net(x)["cls"][[0, 3]], y[[0, 3]]))
    assert masked_task_loss("mse", torch.zeros(2, 1), torch.full((2, 1), float("nan"))) is None


def test_one_missing_label_scan_for_all_tasks_keeps_every_case() -> None:
    """The fast path (mse / bce losses computed as if labelled, the other targets scanned
    together) gives what the per-task scan gives: a task with no label is left out, a
    NaN output (divergence, not a missing label) stays NaN, and labelled batches give the
    plain losses."""
    net = _net()
    x = torch.randn(4, 4)
    out = net(x)
    y = torch.tensor([0, 1, 2, 0])
    nan_reg = torch.full((4, 1), float("nan"))
    losses = net.task_losses(out, {"cls": y, "reg": nan_reg})
    assert list(losses) == ["cls"]
    plain = net.task_losses(out, {"cls": y, "reg": torch.ones(4, 1)})
    torch.testing.assert_close(plain["reg"], nn.functional.mse_loss(out["reg"], torch.ones(4, 1)))
    bad = {**out, "reg": torch.full((4, 1), float("nan"))}
    assert torch.isnan(net.task_losses(bad, {"cls": y, "reg": torch.ones(4, 1)})["reg"])
    assert all_labelled([y, torch.ones(3)]) and not all_labelled([y, nan_reg])
    assert not all_labelled([torch.tensor([0, -1]), torch.ones(2)])


def test_validation_errors() -> None:
    net = _net()
    with pytest.raises(ValueError, match="same tasks"):
        SharedTrunk(net.trunk, {"a": nn.Linear(6, 1)}, {"b": "mse"})
    with pytest.raises(ValueError, match="loss of task"):
        SharedTrunk(net.trunk, {"a": nn.Linear(6, 1)}, {"a": "hinge"})
    with pytest.raises(ValueError, match="unknown tasks"):
        net.task_losses(net(torch.randn(2, 4)), {"zzz": torch.zeros(2)})


def test_multitask_step_trains_with_the_loop() -> None:
    net = _net()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(128, 4, generator=gen)
    y_cls = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    y_multi = torch.stack([(x[:, 2] > 0).float(), (x[:, 3] > 0).float()], dim=1)
    y_reg = x[:, :1] * 2
    stream = Stream(x, y_cls, y_multi, y_reg, batch_size=32)
    before = net.task_losses(net(x), {"cls": y_cls, "multi": y_multi, "reg": y_reg})
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    fit(net, multitask_step(), {"train": stream}, opt, max_steps=150, seed=0)
    after = net.task_losses(net(x), {"cls": y_cls, "multi": y_multi, "reg": y_reg})
    for t in before:
        assert after[t].item() < before[t].item()
    bad = Stream(x, y_cls, batch_size=32)
    with pytest.raises(ValueError, match="one target per task"):
        fit(net, multitask_step(), {"train": bad}, opt, max_steps=1)
