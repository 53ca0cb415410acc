"""The ``maml`` recipe with a small budget: direction of the claim."""

import pytest

from transferkit.claims.recipes.maml import ARMS, MAMLConfig

from .small import run_small


@pytest.mark.slow
@pytest.mark.ci_slow
def test_maml_adapts_better_than_pretraining_at_a_small_budget(tmp_path):
    result, mean = run_small("maml", tmp_path, 1, iterations=400, cls_iterations=100,
                             eval_tasks=50, val_tasks=50, ks=(5, 10), arms=ARMS,
                             classification=True)
    for k in (5, 10):
        assert mean[f"k{k}/maml"] < mean[f"k{k}/pretrained"]
    assert set(mean) >= {f"5way1shot/{arm}" for arm in ("pretrained", "maml", "fomaml", "reptile")}
    # every arm's test-time step was chosen from the same grid on meta-validation tasks
    steps = result["extras"]["0"]["step"]
    cfg = MAMLConfig()
    assert {f"k{k}/{arm}" for k in (5, 10) for arm in ARMS} <= set(steps)
    assert all(steps[key] in (cfg.cls_step_grid if key.startswith("5way") else cfg.step_grid)
               for key in steps)
