"""The ``dsmt`` recipe with a small budget: every arm, AUROC in range, the selection ran on
labelled windows only and the schedule stopped within its epochs."""

import pytest

pytest.importorskip("tsfresh")
pytest.importorskip("neurokit2")

from .small import run_small  # noqa: E402


@pytest.mark.slow
@pytest.mark.ci_slow
def test_dsmt_claim_reports_every_arm(tmp_path):
    result, mean = run_small("dsmt", tmp_path, 1, n_unlabelled=150, n_test=80, epochs=3,
                             patience=2, trees=50, k=4, k_curve=(2,))
    assert {"supervised", "naive-mtl", "dsmt", "random-forest", "dsmt-k2"} <= set(mean)
    assert all(0.0 <= v <= 1.0 for v in mean.values())
    extra = next(iter(result["extras"].values()))
    assert len(extra["dsmt"]["tasks"]) == 4 and extra["dsmt"]["epochs"] <= 3
    assert "tasks" not in extra["supervised"]
