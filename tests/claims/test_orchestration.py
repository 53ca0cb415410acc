"""``transferkit.claims.reproduce``: the library function behind ``transferkit reproduce``."""

import json

import pytest

from transferkit.claims import reproduce
from transferkit.claims.base import CLAIMS, load_recipes

from . import toy_claim


@pytest.fixture
def toy():
    load_recipes()
    with CLAIMS.temporary("toy", toy_claim.make()) as claim:
        yield claim


def test_reproduce_runs_reports_and_says_where(tmp_path, toy):
    lines = []
    run = reproduce(["toy", "toy"], out=tmp_path, jobs=1, overrides={"seeds": "5"},
                    say=lines.append)
    assert [r["claim"] for r in run.results] == ["toy"]  # a repeat runs once
    saved = json.loads((tmp_path / "toy.json").read_text())
    assert saved["overrides"] == {"seeds": "5"} and len(saved["seeds"]) == 5
    assert run.report == tmp_path / "report.md" and run.report.exists()
    assert "toy" in run.table and run.crashed == []
    assert lines[0].startswith("[claim 1/1 toy] running (quick, 5 seeds, 1 process)")
    assert sum("seed" in line and "done" in line for line in lines) == 5


@pytest.mark.parametrize("kwargs, message", [
    ({"claims": ["nope"]}, "unknown claim 'nope'"),
    ({"claims": ["toy"], "overrides": {"no_such_field": "1"}}, "override for claim 'toy'"),
    ({"claims": ["toy"], "record": True}, "full run"),
    ({"claims": ["toy"], "executor": "process", "address": "host:1"}, "address"),
    ({"claims": ["toy"], "budget": "medium"}, "budget"),
])
def test_bad_input_is_refused_before_any_work(tmp_path, toy, kwargs, message):
    with pytest.raises(ValueError, match=message):
        reproduce(out=tmp_path, jobs=1, say=None, **kwargs)
    assert not (tmp_path / "toy.json").exists()
