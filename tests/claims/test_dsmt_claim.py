"""The ``dsmt`` recipe with a small budget: every arm at every fraction, AUROC in range, the
selection ran on labelled windows only and the schedule stopped within its epochs."""

import pytest

pytest.importorskip("tsfresh")
pytest.importorskip("neurokit2")

from .small import run_small  # noqa: E402


@pytest.mark.slow
@pytest.mark.ci_slow
def test_dsmt_claim_reports_every_arm(tmp_path):
    result, mean = run_small("dsmt", tmp_path, 1, n_pool=160, fractions=(0.25, 0.5),
                             n_test=80, epochs=3, patience=2, trees=50, k=4, k_curve=(2,))
    first = {"supervised", "naive-mtl", "dsmt", "random-forest", "dsmt-k2"}
    assert first | {f"f50/{a}" for a in ("supervised", "naive-mtl", "dsmt", "random-forest")} \
        == set(mean)
    assert all(0.0 <= v <= 1.0 for v in mean.values())
    extra = next(iter(result["extras"].values()))
    # 25% of 160 = 40 labelled: a third (13) validates, 27 train
    assert extra["dsmt"]["labelled"] == 27 and extra["dsmt"]["validation"] == 13
    assert extra["f50/dsmt"]["labelled"] + extra["f50/dsmt"]["validation"] == 80
    assert len(extra["dsmt"]["tasks"]) == 4 and extra["dsmt"]["epochs"] <= 3
    assert 0 <= extra["dsmt"]["relevant"] <= 4 and extra["dsmt"]["aux_epochs"] >= 1
    assert "tasks" not in extra["supervised"]
