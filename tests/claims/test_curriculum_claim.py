"""The ``curriculum`` recipe with a small budget: it runs and its arms are what they say."""

import pytest

from .small import run_small


@pytest.mark.slow
@pytest.mark.ci_slow
def test_curriculum_recipe_runs_all_arms(tmp_path):
    result, mean = run_small("curriculum", tmp_path, 1, steps=300, lrs=(0.05,), eval_every=50,
                             teacher_steps=150)
    for arm in ("vanilla", "curriculum", "random-pacing", "anti-curriculum"):
        assert 0.1 < mean[arm] <= 1.0 and f"final/{arm}" in mean and f"fixed/{arm}" in mean
    # easiest-first beats hardest-first early on, even at this budget
    assert mean["curriculum"] > mean["anti-curriculum"]
