"""Task samplers: shapes, the sinusoid's ranges, disjoint meta-train and meta-test classes."""

import math

import pytest
import torch

from transferkit.meta import FewShotTasks, SinusoidTasks, split_classes
from transferkit.train import GeneratedStream


def test_sinusoid_tasks_follow_the_papers_ranges():
    tasks = SinusoidTasks(k_support=5, k_query=7)
    g = torch.Generator().manual_seed(0)
    sx, sy, qx, qy = tasks.meta_batch(400, g)
    assert sx.shape == (400, 5, 1) and qy.shape == (400, 7, 1)
    assert sx.abs().max() <= 5 and qx.abs().max() <= 5
    # recover each task's amplitude and phase from its points: y = A sin(x - phase)
    x, y = torch.cat([sx, qx], 1)[..., 0].double(), torch.cat([sy, qy], 1)[..., 0].double()
    design = torch.stack([torch.sin(x), -torch.cos(x)], dim=-1)  # A cos(p), A sin(p)
    coef = torch.linalg.lstsq(design, y[..., None]).solution[..., 0]
    amp, phase = coef.norm(dim=-1), torch.atan2(coef[:, 1], coef[:, 0])
    assert amp.min() >= 0.1 - 1e-6 and amp.max() <= 5 + 1e-6 and amp.max() > 4.5
    assert phase.min() >= -1e-6 and phase.max() <= math.pi + 1e-6 and phase.max() > 2.9


def test_the_sampler_never_mixes_meta_train_and_meta_test_classes():
    x = torch.arange(200.0)[:, None]
    y = torch.arange(10).repeat(20)
    train, test = split_classes(range(10), 4, torch.Generator().manual_seed(0))
    assert not set(train) & set(test) and sorted(train + test) == list(range(10))
    sampler = FewShotTasks(x, y, test, n_way=3, k_shot=2, k_query=4)
    g = torch.Generator().manual_seed(1)
    seen = set()
    for _ in range(30):
        t = sampler.sample(g)
        rows = torch.cat([t.support_x, t.query_x]).long().flatten()
        seen |= set(y[rows].tolist())
        assert not set(t.support_x.flatten().tolist()) & set(t.query_x.flatten().tolist())
        # each task label names one original class, in support and query alike
        for label in range(3):
            classes = set(y[t.support_x[t.support_y == label].long().flatten()].tolist())
            classes |= set(y[t.query_x[t.query_y == label].long().flatten()].tolist())
            assert len(classes) == 1
    assert seen == set(test)


def test_bad_task_settings_are_named():
    x, y = torch.randn(20, 2), torch.arange(4).repeat(5)
    with pytest.raises(ValueError, match="fewer than k_shot"):
        FewShotTasks(x, y, [0, 1], n_way=2, k_shot=3, k_query=3)
    with pytest.raises(ValueError, match="n_way must be between 2"):
        FewShotTasks(x, y, [0, 1], n_way=3)
    with pytest.raises(ValueError, match="n_test must be"):
        split_classes(range(3), 3)


def test_generated_streams_repeat_by_draw_and_shard_tasks():
    tasks = SinusoidTasks(3, 3)
    s = GeneratedStream(lambda g: tasks.meta_batch(4, g), seed=5)
    assert torch.equal(s.batch(2)[0], s.batch(2)[0])
    half = GeneratedStream(lambda g: tasks.meta_batch(4, g), seed=5, rank=1, world_size=2)
    assert torch.equal(half.batch(2)[0], s.batch(2)[0][2:])
