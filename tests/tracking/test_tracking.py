"""MLflow tracking: a claim's result and a workflow's run land in the store, readable back."""

from __future__ import annotations

import json

import pytest

from transferkit.claims.runner import run_claim
from transferkit.cli import main

from ..claims import toy_claim

mlflow = pytest.importorskip("mlflow")


def _runs(uri):
    client = mlflow.tracking.MlflowClient(uri)
    exp = client.get_experiment_by_name("transferkit")
    return client, client.search_runs([exp.experiment_id])


def test_a_claim_result_is_logged_with_params_per_seed_metrics_and_artifacts(tmp_path,
                                                                             monkeypatch):
    from transferkit.tracking import MLflowTracker

    monkeypatch.chdir(tmp_path)  # the artifacts' default root
    result = run_claim(toy_claim.make(), "quick", 3, tmp_path / "out")
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    tracker = MLflowTracker(uri)
    run_id = tracker.log_claim(result, tmp_path / "out" / "toy.json")
    client, runs = _runs(uri)
    assert [r.info.run_id for r in runs] == [run_id]
    run = client.get_run(run_id)
    assert run.data.params["claim"] == "toy" and run.data.params["config.gain"] == "0.1"
    assert run.data.tags["verdict"] == result["verdict"]
    history = client.get_metric_history(run_id, "arm.better")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == \
        pytest.approx(result["arms"]["better"])
    assert run.data.metrics["mean.base"] == pytest.approx(result["summary"]["base"]["mean"])
    assert [a.path for a in client.list_artifacts(run_id)] == ["toy.json"]


def test_reproduce_track_logs_every_claim_it_ran(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    code = main(["reproduce", "bbse-correction", "--seeds", "1", "--jobs", "1", "--quiet",
                 "--out", str(tmp_path / "out"), "--track", uri])
    assert code == 0
    assert "tracked 1 run(s)" in capsys.readouterr().out
    client, runs = _runs(uri)
    assert len(runs) == 1
    saved = json.loads((tmp_path / "out" / "bbse-correction.json").read_text())
    arms = {k[len("arm."):]: v for k, v in runs[0].data.metrics.items() if k.startswith("arm.")}
    assert arms == pytest.approx({a: v[0] for a, v in saved["arms"].items()})
    names = sorted(a.path for a in client.list_artifacts(runs[0].info.run_id))
    assert {"bbse-correction.json", "report.md"} <= set(names)
    assert any(n.endswith(".png") for n in names)  # the figures the report shows, logged too
    assert runs[0].data.tags["transferkit.version"]


def test_a_workflow_result_is_tracked_from_its_folder(tmp_path, monkeypatch, capsys):
    """What ``transferkit finetune --track`` logs (the CLI's finish reads the result's
    folder: its settings, metrics, curves and files)."""
    import argparse

    from transferkit.cli.finetune import finish
    from transferkit.workflows import FinetuneResult

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    (out / "settings.json").write_text(json.dumps({"method": "l2sp", "epochs": 2}))
    (out / "metrics.json").write_text("{}")
    metrics = {"method": "l2sp", "backbone": "mlp", "alpha_sweep": [{"alpha": 0.1}],
               "validation": {"accuracy": 0.75, "n": 8}, "test": None}
    result = FinetuneResult(out, 0.1, metrics, [out / "metrics.json"])
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    args = argparse.Namespace(track=uri)
    assert finish(args, "finetune", result, {"alpha=0.1": {"val_accuracy": [0.5, 0.75]}}) == 0
    assert "tracked as MLflow run" in capsys.readouterr().out
    client, runs = _runs(uri)
    assert len(runs) == 1 and runs[0].data.params["method"] == "l2sp"
    assert runs[0].data.metrics["validation.accuracy"] == 0.75
    assert runs[0].data.metrics["alpha_0.1.val_accuracy"] == 0.75  # '=' is not a name char
    assert [a.path for a in client.list_artifacts(runs[0].info.run_id)] == ["metrics.json"]
