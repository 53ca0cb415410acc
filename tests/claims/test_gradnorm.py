"""The ``gradnorm`` recipe (digits: class, parity, bold-ink regression) with a small budget."""

from dataclasses import replace

import pytest

from transferkit.claims import create_claim
from transferkit.claims.recipes.gradnorm import DigitsMTLConfig, delta_m, digit_tasks
from transferkit.claims.runner import run_claim


def test_delta_m_signs() -> None:
    single = {"digit": 0.9, "bold_ink": 10.0}
    assert delta_m({"digit": 0.99, "bold_ink": 10.0}, single) == pytest.approx(5.0)
    assert delta_m({"digit": 0.9, "bold_ink": 12.0}, single) == pytest.approx(-10.0)


def test_digit_tasks_have_very_different_scales() -> None:
    x, ys = digit_tasks()
    assert x.shape == (1797, 64)
    assert set(ys) == {"digit", "parity", "bold_ink"}
    assert float(ys["bold_ink"].std()) > 20.0


@pytest.mark.slow
def test_gradnorm_digits_runs_and_balances_the_classification_tasks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    claim = create_claim("gradnorm")
    cfg = replace(claim.config("quick"), seeds=2)
    assert isinstance(cfg, DigitsMTLConfig)
    small = replace(claim, budgets={"quick": cfg, "full": cfg})
    result = run_claim(small, "quick", 2, tmp_path)
    assert result["error"] is None
    extras = result["extras"]
    for ex in extras.values():
        m = ex["test_metrics"]
        # the big regression loss starves the digit task under equal weights; GradNorm not
        assert m["gradnorm"]["digit"] > m["equal"]["digit"]
