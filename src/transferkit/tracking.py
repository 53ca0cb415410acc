"""Experiment tracking with MLflow (the optional extra ``tracking``), off unless asked.

``transferkit reproduce --track [URI]`` logs one MLflow run per claim: the budget, seeds and
config as parameters, each arm's value per seed as a metric (step = the seed's position)
and its mean, the verdict as a tag, and the claim's JSON and ``report.md`` as artifacts.
``transferkit finetune``/``adapt --track [URI]`` log the run's settings, the per-epoch
curves (validation accuracy, DEV risk), the final metrics and the files written.

Without a URI the store is MLflow's local SQLite database ``mlflow.db`` in the current
folder, artifacts under ``./mlruns`` (``mlflow ui --backend-store-uri sqlite:///mlflow.db``
shows them); a URI (``http://host:5000``, ``sqlite:///path.db``, ``databricks``) sends
them there. Nothing here runs, and MLflow is never imported, unless tracking was asked for;
under ``torch.distributed`` only rank 0 tracks.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_URI", "EXPERIMENT", "MLflowTracker", "open_tracker"]

DEFAULT_URI = "sqlite:///mlflow.db"
EXPERIMENT = "transferkit"
_MAX_PARAM = 500  # MLflow's limit on a parameter value's length


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    text = obj if isinstance(obj, str) else json.dumps(obj, default=str)
    return {prefix[:-1]: text[:_MAX_PARAM]}


def _metric_name(name: str) -> str:
    """``name`` with every character MLflow does not take in a metric name replaced by _.

    Examples
    --------
    >>> _metric_name("alpha=0.1.val_accuracy")
    'alpha_0.1.val_accuracy'
    """
    return re.sub(r"[^\w\-. :/]", "_", name)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(float(value))


class MLflowTracker:
    """Logs transferkit runs to an MLflow tracking store.

    Parameters
    ----------
    uri : str, optional
        The tracking URI; ``None`` or ``""``: :data:`DEFAULT_URI`.
    experiment : str
        The MLflow experiment the runs go to.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     tracker = MLflowTracker(f"sqlite:///{d}/mlflow.db")
    ...     curves = {"alpha=0.1": {"epoch": [1, 2], "val_accuracy": [0.8, 0.9]}}
    ...     run_id = tracker.log_workflow("finetune", {"method": "l2sp"},
    ...                                   {"validation": {"accuracy": 0.9}}, curves, [])
    ...     run = tracker.client.get_run(run_id)
    ...     run.data.params, run.data.metrics["alpha_0.1.val_accuracy"]
    ({'method': 'l2sp'}, 0.9)
    """

    def __init__(self, uri: str | None = None, experiment: str = EXPERIMENT) -> None:
        try:
            import mlflow
        except ImportError:
            raise ImportError("tracking needs MLflow: pip install 'transferkit[tracking]'"
                              ) from None
        self.uri = uri or DEFAULT_URI
        self.client = mlflow.tracking.MlflowClient(self.uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (found.experiment_id if found is not None
                              else self.client.create_experiment(experiment))

    def start(self, name: str, params: Mapping[str, Any],
              tags: Mapping[str, str] | None = None) -> str:
        """A new run with ``params`` (nested mappings flattened to dotted names); its id."""
        run = self.client.create_run(self.experiment_id, run_name=name, tags=dict(tags or {}))
        run_id: str = run.info.run_id
        from mlflow.entities import Param

        items = list(_flatten(params).items())
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in items[i:i + 100]])
        return run_id

    def metrics(self, run_id: str, points: Iterable[tuple[str, Any, int]]) -> None:
        """Log ``(name, value, step)`` points in as few batches as MLflow takes (1,000 each);
        values that are not finite numbers are skipped, and a character MLflow refuses in
        a name (``alpha=0.1``) becomes ``_``."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(_metric_name(k), float(v), now, step) for k, v, step in points
                 if _finite(v)]
        for i in range(0, len(batch), 1000):
            self.client.log_batch(run_id, metrics=batch[i:i + 1000])

    @staticmethod
    def curve_points(curves: Mapping[str, Mapping[str, Sequence[Any]]]
                     ) -> list[tuple[str, Any, int]]:
        """Per-epoch curves ``{label: {"epoch": [...], metric: [...]}}`` as stepped points."""
        points = []
        for label, curve in curves.items():
            epochs = list(curve.get("epoch", []))
            for metric, values in curve.items():
                if metric == "epoch":
                    continue
                name = f"{label}.{metric}" if label else metric
                points += [(name, v, int(epochs[i]) if i < len(epochs) else i + 1)
                           for i, v in enumerate(values)]
        return points

    def artifacts(self, run_id: str, paths: Iterable[str | os.PathLike[str]]) -> None:
        for p in paths:
            if Path(p).is_file():
                self.client.log_artifact(run_id, str(p))

    def end(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status)

    # ---------------------------------------------------------------- claims
    def log_claim(self, result: Mapping[str, Any], json_path: str | os.PathLike[str],
                  report: str | os.PathLike[str] | None = None) -> str:
        """One run for a claim's result (see the module docstring); returns its id."""
        from .claims.report import verdict_word

        verdict = verdict_word(result).lower()  # "error" for a crashed claim
        params = {"claim": result["claim"], "budget": result.get("budget"),
                  "seeds": result.get("seeds"), "config": result.get("config", {}),
                  "overrides": result.get("overrides", {})}
        run_id = self.start(f"{result['claim']} ({result.get('budget')})", params,
                            {"verdict": verdict, "paper": str(result.get("paper", ""))[:250],
                             **_code_tags()})
        points = [(f"arm.{arm}", v, i) for arm, values in result.get("arms", {}).items()
                  for i, v in enumerate(values)]
        points += [(f"mean.{a}", s.get("mean"), 0) for a, s in result.get("summary", {}).items()]
        points += [("seconds", result.get("seconds"), 0),
                   ("compute_seconds", result.get("compute_seconds"), 0)]
        for c in result.get("comparisons", []):
            name = f"{c['method']}_vs_{c['baseline']}"
            points += [(f"delta.{name}", c.get("delta_mean"), 0),
                       (f"holds.{name}", float(bool(c.get("holds"))), 0),
                       (f"shown_short.{name}", float(c.get("verdict") == "does not hold"), 0)]
        self.metrics(run_id, points)
        figures = _report_figures(report, result["claim"]) if report is not None else []
        files: list[str | os.PathLike[str]] = [json_path, *([report] if report else []), *figures]
        self.artifacts(run_id, files)
        self.end(run_id, "FAILED" if result.get("error") else "FINISHED")
        return run_id

    # ------------------------------------------------------------- workflows
    def log_workflow(self, command: str, settings: Mapping[str, Any],
                     metrics: Mapping[str, Any], curves: Mapping[str, Mapping[str, Any]],
                     files: Iterable[str | os.PathLike[str]]) -> str:
        """One run for ``transferkit finetune``/``adapt``; returns its id."""
        run_id = self.start(command, settings, {"command": command, **_code_tags()})
        points = self.curve_points(curves)
        for part in ("validation", "test", "source_validation", "target"):
            m = metrics.get(part)
            if isinstance(m, Mapping):
                points += [(f"{part}.{k}", v, 0) for k, v in m.items()]
        points += [(k, v, 0) for k, v in metrics.items()]
        self.metrics(run_id, points)
        self.artifacts(run_id, files)
        self.end(run_id)
        return run_id


    def log_result(self, command: str, result: Any,
                   curves: Mapping[str, Mapping[str, Any]]) -> str:
        """One run for what a workflow returned (``FinetuneResult``, ``AdaptResult``): the
        settings it saved in its folder, its metrics, ``curves`` and the files it wrote."""
        settings = json.loads((Path(result.out) / "settings.json").read_text())
        return self.log_workflow(command, settings, result.metrics, curves, result.written)


def _code_tags() -> dict[str, str]:
    """The code that ran: transferkit's version and, in a git checkout, its commit (and
    whether the checkout had uncommitted changes)."""
    from . import __version__
    from .claims.records import checkout_state

    return {"transferkit.version": __version__,
            **{f"transferkit.{k}": v for k, v in checkout_state().items()}}


def _report_figures(report: str | os.PathLike[str], claim: str) -> list[Path]:
    """The figures ``report.md`` shows in claim ``claim``'s section (files beside it).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "a_seeds.png").write_bytes(b"png")
    ...     lines = ["## `a` — holds", "![a_seeds](a_seeds.png)", "## `b` — holds", "![b](b.png)"]
    ...     _ = (Path(d) / "report.md").write_text(chr(10).join(lines))
    ...     [p.name for p in _report_figures(Path(d) / "report.md", "a")]
    ['a_seeds.png']
    """
    path = Path(report)
    section, found = False, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line.startswith(f"## `{claim}`")
        elif section:
            match = re.fullmatch(r"!\[[^\]]*\]\(([^)]+)\)", line.strip())
            if match and (path.parent / match.group(1)).is_file():
                found.append(path.parent / match.group(1))
    return found


def open_tracker(uri: str | None = None) -> MLflowTracker:
    """The tracker for ``--track [URI]`` (an empty or missing URI: the local store).

    Examples
    --------
    What ``--track [URI]`` opens (needs the extra ``tracking``):

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     tracker = open_tracker(f"sqlite:///{d}/mlflow.db")
    ...     run_id = tracker.start("demo", {"alpha": 0.1}, {"command": "demo"})
    ...     tracker.metrics(run_id, [("val.accuracy", 0.8, 1), ("alpha=0.1.loss", 0.5, 1)])
    ...     tracker.end(run_id)
    ...     sorted(tracker.client.get_run(run_id).data.metrics)
    ['alpha_0.1.loss', 'val.accuracy']
    """
    return MLflowTracker(uri or None)
