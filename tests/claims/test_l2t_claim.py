"""The ``l2t`` recipe with a small budget: every arm and a rating per held-out experience
(the experience store's resume is tested in tests/l2t)."""

import pytest

from .small import run_small


@pytest.mark.slow
@pytest.mark.ci_slow
def test_l2t_claim_reports_every_arm_and_rates_every_held_out_experience(tmp_path):
    result, mean = run_small("l2t", tmp_path, 1, train_pairs=14, test_pairs=3, steps=5)
    assert {"identity", "pca", "tca", "tsl", "reflection-select", "l2t", "spearman"} <= set(mean)
    assert all(v > 0 for k, v in mean.items() if k != "spearman")
    assert -1 <= mean["spearman"] <= 1
    extra = next(iter(result["extras"].values()))
    assert len(extra["pairs"]) == 3
    bases = {"identity", "pca", "tca", "tsl"}
    assert all(set(p["score"]) == bases for p in extra["pairs"])
    assert set(extra["train_ratio"]) == bases
    # the paper's reflection function: beta per kernel, one lambda for beta^T Q beta
    assert len(extra["reflection"]["beta"]) == 5 and extra["reflection"]["lambda"] >= 0
