"""The ``reform`` recipe with a small budget: direction of the claim, and its views."""

import pytest

from transferkit.claims.recipes.reform import ReFormConfig
from transferkit.data import mfeat_available

from .small import run_small


@pytest.mark.slow
@pytest.mark.ci_slow
def test_reform_beats_target_only_at_few_labels_and_every_view_has_its_arms(tmp_path):
    # every view, as the full budget has them (the quick budget keeps 7x7 and drop)
    _, mean = run_small("reform", tmp_path, 2, views=ReFormConfig().views)
    assert mean["k5/reform"] > mean["k5/target-only"]
    assert mean["k1/reform"] - mean["k1/target-only"] > mean["k30/reform"] - mean["k30/target-only"]
    assert mean["k5/reform-learned-m"] > mean["k5/target-only"]
    views = ["10x10", "shift", "drop"] + (["mfeat"] if mfeat_available() else [])
    for view in views:
        assert {f"{view}/k5/target-only", f"{view}/k5/reform"} <= set(mean)
    assert {"shift/k5/shared-features", "drop/k5/shared-features", "k5/transported"} <= set(mean)
    assert "10x10/k5/shared-features" not in mean  # no pixel centre is shared
    # keeping the old weights of the pixels both grids share beats the new labels alone
    assert mean["drop/k5/shared-features"] > mean["drop/k5/target-only"]
