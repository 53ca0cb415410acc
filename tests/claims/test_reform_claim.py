"""The ``reform`` recipe with a small budget: direction of the claim."""

import pytest

from .small import run_small


@pytest.mark.slow
@pytest.mark.ci_slow
def test_reform_beats_target_only_at_few_labels(tmp_path):
    _, mean = run_small("reform", tmp_path, 2)
    assert mean["k5/reform"] > mean["k5/target-only"]
    assert mean["k1/reform"] - mean["k1/target-only"] > mean["k30/reform"] - mean["k30/target-only"]
