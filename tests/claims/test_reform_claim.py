"""The ``reform`` recipe with a small budget: direction of the claim."""

from dataclasses import replace

import numpy as np
import pytest

from transferkit.claims import get_claim
from transferkit.claims.runner import run_claim


@pytest.mark.slow
@pytest.mark.ci_slow
def test_reform_beats_target_only_at_few_labels(tmp_path):
    claim = get_claim("reform")
    cfg = replace(claim.config("quick"), seeds=2)
    small = replace(claim, budgets={"quick": cfg, "full": cfg})
    result = run_claim(small, "quick", 2, tmp_path)
    assert result["error"] is None
    mean = {a: float(np.mean(v)) for a, v in result["arms"].items()}
    assert mean["k5/reform"] > mean["k5/target-only"]
    assert mean["k1/reform"] - mean["k1/target-only"] > mean["k30/reform"] - mean["k30/target-only"]
