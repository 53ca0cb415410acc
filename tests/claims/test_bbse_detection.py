"""The ``bbse-detection`` recipe with a small budget: calibration and power."""

from dataclasses import replace

import numpy as np
import pytest

from transferkit.claims import create_claim
from transferkit.claims.runner import run_claim


@pytest.mark.slow
def test_chi2_is_calibrated_and_powerful(tmp_path):
    claim = create_claim("bbse-detection")
    cfg = replace(claim.config("quick"), null_trials=200, power_trials=8, permutations=50)
    small = replace(claim, budgets={"quick": cfg, "full": cfg})
    result = run_claim(small, "quick", 2, tmp_path)
    assert result["error"] is None
    mean = {a: float(np.mean(v)) for a, v in result["arms"].items()}
    assert 0.01 <= mean["null/chi2"] <= 0.1
    assert mean["n800/chi2"] >= 0.8  # the power curve rises with n
    assert mean["n800/chi2"] > mean["n200/chi2"]
    assert mean["n200/chi2"] >= mean["n200/mmd"]
    assert (tmp_path / "bbse-detection.json").exists()
