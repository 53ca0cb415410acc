"""The ``pta`` recipe with a small budget: it runs, and its splits are honest."""

import pytest
import torch

from transferkit.claims.recipes.pta import PTAConfig, _split
from transferkit.data import load_mnist5k

from .small import run_small


def test_validation_comes_from_the_labelled_pool_and_never_overlaps_the_test_split():
    y = load_mnist5k().labels
    cfg = PTAConfig()
    for seed in (0, 1):
        train, val, test = _split(y, cfg, seed)
        assert len(set(train.tolist()) | set(val.tolist()) | set(test.tolist())) == len(y)
        assert not set(val.tolist()) & set(test.tolist())
        assert not set(train.tolist()) & set(val.tolist())
        assert torch.bincount(y[val], minlength=10).tolist() == [5] * 10
        assert torch.bincount(y[train], minlength=10).tolist() == [15] * 10


@pytest.mark.slow
@pytest.mark.ci_slow
def test_every_arm_trains_to_a_sensible_accuracy(tmp_path):
    result, mean = run_small("pta", tmp_path, 1, steps=120, meta_iteration=40,
                             settings=("single-task", "mtl"))
    for arm in ("single", "pta-i", "pta-f", "pta-p", "pta-hgd"):
        assert 0.5 < mean[arm] < 1.0 and 0.5 < mean[f"mtl/{arm}"] < 1.0
    assert result["extras"]["0"]["val_test_overlap"] == 0
