"""The ``maml`` recipe with a small budget: direction of the claim."""

import pytest

from transferkit.claims.recipes.maml import ARMS

from .small import run_small


@pytest.mark.slow
@pytest.mark.ci_slow
def test_maml_adapts_better_than_pretraining_at_a_small_budget(tmp_path):
    _, mean = run_small("maml", tmp_path, 1, iterations=400, cls_iterations=100,
                        eval_tasks=50, ks=(5, 10), arms=ARMS, classification=True)
    for k in (5, 10):
        assert mean[f"k{k}/maml"] < mean[f"k{k}/pretrained"]
    assert set(mean) >= {f"5way1shot/{arm}" for arm in ("pretrained", "maml", "fomaml", "reptile")}
