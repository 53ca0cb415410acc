"""The ``finetune`` recipe with a small budget: the direction of the claim."""

from dataclasses import replace

import pytest

from transferkit.claims import create_claim
from transferkit.claims.runner import run_claim


@pytest.mark.slow
@pytest.mark.ci_slow
def test_finetune_beats_scratch_at_k3_direction(tmp_path):
    claim = create_claim("finetune")
    cfg = replace(claim.config("quick"), ks=(3,))
    comparisons = [c for c in claim.comparisons if c.method.startswith("k3/")]
    small = replace(claim, budgets={"quick": cfg, "full": cfg}, comparisons=comparisons)
    result = run_claim(small, "quick", 4, tmp_path)
    assert result["error"] is None
    arms = result["arms"]
    mean = {a: sum(v) / len(v) for a, v in arms.items()}
    assert mean["k3/finetune"] > mean["k3/scratch"]
    assert mean["k3/finetune"] > mean["k3/source-only"] + 0.1
