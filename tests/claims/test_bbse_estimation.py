"""The ``bbse-estimation`` recipe with a small budget: the direction of the claim."""

from dataclasses import replace

import numpy as np
import pytest

from transferkit.claims import create_claim
from transferkit.claims.runner import run_claim


@pytest.mark.slow
@pytest.mark.ci_slow
def test_bbse_error_falls_with_n(tmp_path):
    claim = create_claim("bbse-estimation")
    cfg = replace(claim.config("quick"), ns=(500, 8000), trials=4)
    small = replace(claim, budgets={"quick": cfg, "full": cfg},
                    comparisons=[c for c in claim.comparisons if c.own])
    result = run_claim(small, "quick", 2, tmp_path)
    assert result["error"] is None
    mean = {a: float(np.mean(v)) for a, v in result["arms"].items()}
    assert mean["grow/n8000/bbse"] < mean["grow/n500/bbse"] - np.log10(2)
    assert mean["grow/n8000/mlls"] < mean["grow/n500/mlls"]
    assert (tmp_path / "bbse-estimation.json").exists()
    assert claim.plot is not None
    assert [p.name for p in claim.plot(result, tmp_path)] == ["bbse-estimation-error-vs-n.png"]
