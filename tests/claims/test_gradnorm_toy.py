"""The ``gradnorm-toy`` recipe with a small budget."""

from dataclasses import replace

import pytest
import torch

from transferkit.claims import create_claim
from transferkit.claims.recipes.gradnorm_toy import ToyConfig, toy_problem, train_arm
from transferkit.claims.runner import run_claim


@pytest.mark.slow
@pytest.mark.ci_slow
def test_gradnorm_weights_go_down_with_the_task_scale() -> None:
    # Mechanism, cheap: after a short run GradNorm gives the sigma = 100 tasks far smaller
    # weights than the sigma = 1 tasks, and every test ratio is finite.
    cfg = ToyConfig(n_train=1000, n_val=100, n_test=500, steps=150)
    prob = toy_problem(cfg, 0)
    res = train_arm("gradnorm", cfg, prob, 0, 3e-3, cfg.steps, "test", record=True)
    w = torch.tensor(res["curves"]["weights"][-1])
    assert bool(torch.isfinite(res["ratios"]).all())
    assert float(w[:3].mean()) > 10 * float(w[-3:].mean())
    assert float(w.sum()) == pytest.approx(cfg.n_tasks, rel=1e-4)


@pytest.mark.slow
def test_gradnorm_toy_direction(tmp_path) -> None:  # type: ignore[no-untyped-def]
    claim = create_claim("gradnorm-toy")
    cfg = claim.config("quick")
    small = replace(claim, budgets={"quick": replace(cfg, seeds=2), "full": cfg})
    result = run_claim(small, "quick", 2, tmp_path)
    assert result["error"] is None
    mean = {a: sum(v) / len(v) for a, v in result["arms"].items()}
    assert mean["sum/gradnorm"] < mean["sum/equal"]
    assert mean["spread/gradnorm"] < mean["spread/equal"]
