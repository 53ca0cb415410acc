"""Run a registered claim with a smaller budget: the claim tests' one way of doing it."""

from dataclasses import replace
from typing import Any

import numpy as np

from transferkit.claims import create_claim
from transferkit.claims.runner import run_claim


def small_claim(name: str, **changes: Any):
    """The claim ``name`` whose quick and full budgets are its quick config with ``changes``."""
    claim = create_claim(name)
    cfg = replace(claim.config("quick"), **changes)
    return replace(claim, budgets={"quick": cfg, "full": cfg})


def run_small(name: str, out, n_seeds: int, jobs: int = 1, **changes: Any):
    """Run ``small_claim(name, **changes)`` for ``n_seeds`` quick seeds; return (result, means)."""
    result = run_claim(small_claim(name, **changes), "quick", n_seeds, out, jobs=jobs)
    assert result["error"] is None, result["error"]
    return result, {a: float(np.mean(v)) for a, v in result["arms"].items()}
