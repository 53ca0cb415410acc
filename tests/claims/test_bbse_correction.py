"""The ``bbse-correction`` recipe with a small budget: the direction of the claim."""

from dataclasses import replace

import numpy as np
import pytest

from transferkit.claims import create_claim
from transferkit.claims.runner import run_claim


@pytest.mark.slow
def test_bbse_retraining_beats_unweighted(tmp_path):
    claim = create_claim("bbse-correction")
    cfg = replace(claim.config("quick"), trials=2)
    small = replace(claim, budgets={"quick": cfg, "full": cfg})
    result = run_claim(small, "quick", 2, tmp_path)
    assert result["error"] is None
    mean = {a: float(np.mean(v)) for a, v in result["arms"].items()}
    assert mean["bbse-retrain"] > mean["unweighted"]
    assert mean["bbse-posterior"] > mean["unweighted"]
