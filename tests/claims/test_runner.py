import dataclasses
import json

import pytest

from transferkit.claims import runner
from transferkit.claims.executors import create_executor
from transferkit.claims.report import terminal_table, write_report

from . import toy_claim


def test_result_json_follows_the_schema(tmp_path):
    result = runner.run_claim(toy_claim.make(), "quick", None, tmp_path)
    saved = json.loads((tmp_path / "toy.json").read_text())
    for key in (
        "claim",
        "paper",
        "statement",
        "metric",
        "higher_is_better",
        "budget",
        "seeds",
        "arms",
        "comparisons",
        "holds",
        "seconds",
        "environment",
    ):
        assert key in saved, key
    assert saved["seeds"] == [0, 1, 2, 3, 4, 5] and saved["series"] == "development"
    assert set(saved["arms"]) == {"base", "better"} and len(saved["arms"]["base"]) == 6
    (c,) = saved["comparisons"]
    assert (c["method"], c["baseline"], c["required_delta"]) == ("better", "base", 0.05)
    assert c["holds"] is True and saved["holds"] is True
    assert c["verdict"] == saved["verdict"] == "holds" and c["seeds_for_power"] is None
    assert saved["extras"]["2"] == {"curve": [2, 3]}
    assert set(saved["environment"]) >= {"transferkit", "torch", "python", "threads"}
    assert result["holds"] is True


def test_claim_that_does_not_hold_is_reported(tmp_path):
    # differences of 0..0.024 against a margin of 0.05: shown to fall short of it
    result = runner.run_claim(toy_claim.make(gain=0.0), "quick", 5, tmp_path)
    assert result["holds"] is False and result["error"] is None
    assert result["verdict"] == "does not hold"
    assert result["comparisons"][0]["p_short"] < 0.05
    assert "does not hold" in terminal_table([result])


def test_fewer_than_five_seeds_can_only_be_inconclusive(tmp_path):
    result = runner.run_claim(toy_claim.make(), "quick", 3, tmp_path)
    (c,) = result["comparisons"]
    assert c["verdict"] == "holds"  # the comparison's own test is reported as it is
    assert result["verdict"] == "inconclusive" and result["holds"] is False
    assert "fewer than 5" in result["verdict_note"]
    assert "fewer than 5" in terminal_table([result])


def test_crash_is_an_error_result_and_finished_seeds_resume(tmp_path):
    bad = toy_claim.make(fail_on_seed=2)
    result = runner.run_claim(bad, "quick", None, tmp_path)
    assert result["holds"] is None and "toy failure on seed 2" in result["error"]
    assert "ERROR" in terminal_table([result])
    cached = sorted(p.name for p in tmp_path.glob(".partial/toy/*/seed*.json"))
    assert cached == ["seed0.json", "seed1.json"]

    ran = []
    original = runner._run_seed

    def spy(claim, cfg, seed, threads=1, units=None, on_unit=None):
        ran.append(seed)
        return original(claim, cfg, seed, threads, units, on_unit)

    # the same config resumes from the cache: only the seeds not finished run again
    runner._run_seed, saved = spy, runner._run_seed
    try:
        cfg = bad.budgets["quick"]
        runner._collect(
            bad,
            cfg,
            [0, 1],
            tmp_path / ".partial" / "toy" / f"quick-{runner.config_key(bad, cfg)}",
            create_executor("serial"),
            lambda s, r: None,
        )
    finally:
        runner._run_seed = saved
    assert ran == []


def test_parallel_jobs_give_the_same_result(tmp_path):
    serial = runner.run_claim(toy_claim.make(), "quick", None, tmp_path / "a", jobs=1)
    parallel = runner.run_claim(toy_claim.make(), "quick", None, tmp_path / "b", jobs=2)
    assert serial["arms"] == parallel["arms"]


def test_report_has_table_and_per_seed_plot(tmp_path, monkeypatch):
    claim = toy_claim.make()
    monkeypatch.setattr("transferkit.claims.base.create_claim", lambda name: claim)
    result = runner.run_claim(claim, "quick", None, tmp_path)
    report = write_report([result], tmp_path)
    text = report.read_text()
    assert "| `toy` | holds | quick | 6 |" in text
    assert "better vs base" in text and "![toy](toy.png)" in text
    assert (tmp_path / "toy.png").stat().st_size > 1000


def test_bad_seed_count_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=">= 1"):
        runner.run_claim(toy_claim.make(), "quick", 0, tmp_path)


def test_full_budget_runs_confirmation_seeds(tmp_path):
    result = runner.run_claim(toy_claim.make(), "full", 3, tmp_path)
    assert result["seeds"] == [1000, 1001, 1002] and result["series"] == "confirmation-1"
    assert runner.run_claim(toy_claim.make(), "quick", 3, tmp_path)["seeds"] == [0, 1, 2]
    # after a change made by looking at a full verdict, the claim moves to a new series
    moved = dataclasses.replace(toy_claim.make(), series=2)
    result = runner.run_claim(moved, "full", 2, tmp_path / "moved")
    assert result["seeds"] == [2000, 2001] and result["series"] == "confirmation-2"
    with pytest.raises(ValueError, match="series"):
        dataclasses.replace(toy_claim.make(), series=0)


def test_a_diverged_arm_is_a_result_counted_as_a_loss(tmp_path):
    result = runner.run_claim(toy_claim.make(diverge_on_seed=1), "quick", 6, tmp_path)
    assert result["error"] is None
    assert result["nonfinite"] == {"better": [1]}
    saved = json.loads((tmp_path / "toy.json").read_text())
    assert saved["arms"]["better"][1] is None  # strict JSON: null, not NaN
    (c,) = result["comparisons"]
    # seed 1 counts as the worst value any arm reached: a loss against the baseline
    base, better = result["arms"]["base"], result["arms"]["better"]
    worst = min(v for v in base + better if v == v)
    d = [(worst if i == 1 else b) - a for i, (a, b) in enumerate(zip(base, better, strict=True))]
    assert d[1] <= 0 and c["delta_mean"] == pytest.approx(sum(d) / 6)
    text = write_report([result], tmp_path).read_text()
    assert "counted as losses" in text


def test_bound_and_non_inferiority_comparisons(tmp_path):
    from transferkit.claims.base import Bound, NonInferiority

    comps = [Bound("base", 0.45, above=True), Bound("base", 0.6, above=False),
             NonInferiority("base", "better", margin=0.2),
             NonInferiority("base", "better", margin=0.01, own=False)]
    result = runner.run_claim(toy_claim.make(comparisons=comps), "quick", 5, tmp_path)
    labels = [c["label"] for c in result["comparisons"]]
    assert labels == ["base > 0.45", "base < 0.6", "base not worse than better by 0.2",
                      "base not worse than better by 0.01"]
    assert [c["holds"] for c in result["comparisons"]] == [True, True, True, False]
    assert result["holds"] is True
    with pytest.raises(ValueError, match="margin"):
        NonInferiority("a", "b", margin=0.0)


def test_result_files_get_the_users_normal_mode(tmp_path):
    import os
    import stat

    runner.run_claim(toy_claim.make(), "quick", 2, tmp_path)
    umask = os.umask(0o022)
    os.umask(umask)
    mode = stat.S_IMODE((tmp_path / "toy.json").stat().st_mode)
    assert mode == 0o666 & ~umask


def test_every_seed_unit_runs_with_the_fixed_thread_count(tmp_path):
    import torch

    seen = []
    claim = toy_claim.make()
    original = claim.run

    def spy(cfg, seed):
        seen.append(torch.get_num_threads())
        return original(cfg, seed)

    from dataclasses import replace

    before = torch.get_num_threads()
    result = runner.run_claim(replace(claim, run=spy), "quick", 2, tmp_path)
    assert seen == [runner.UNIT_THREADS] * 2 and torch.get_num_threads() == before
    assert result["environment"]["threads"] == runner.UNIT_THREADS
