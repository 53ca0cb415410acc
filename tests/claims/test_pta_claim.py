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
                             settings=("single-task", "mt"))
    for arm in ("single", "single-dropout", "pta-i", "pta-f", "pta-p", "pta-hgd"):
        assert 0.5 < mean[arm] < 1.0 and 0.4 < mean[f"mt/{arm}"] < 1.0
    extras = result["extras"]["0"]
    assert extras["val_test_overlap"] == 0
    # every available task of the mt setting is scored on its own test set
    tasks = extras["mt_tasks"]["pta-hgd"]
    assert {"mnist5k", "digits8x8"} <= set(tasks) and set(tasks).isdisjoint(
        extras["skipped_tasks"])
    assert all(0.3 < acc < 1.0 for acc in tasks.values())


def test_the_mt_setting_keeps_each_tasks_labels_on_its_own_rows():
    from transferkit.claims.recipes.pta import PTAConfig, _stacked, _tasks

    tasks = _tasks("mt", PTAConfig(mt_tasks=("mnist5k", "digits8x8")), 0)
    x, y = _stacked(tasks, "train")
    assert x.shape == (300, 784)
    assert (y["mnist5k"][:150] >= 0).all() and (y["mnist5k"][150:] == -1).all()
    assert (y["digits8x8"][:150] == -1).all() and (y["digits8x8"][150:] >= 0).all()
    # the digits' test set is the rest of their archive, apart from their labelled rows
    assert len(tasks["digits8x8"].test[1]) == 1797 - 200
