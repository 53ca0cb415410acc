"""Records of the full runs: written, read beside a result, stale when the code changes, and
every shipped record's verdict recomputed from its stored arms."""

import dataclasses
import json

import pytest

from transferkit.claims import records, runner
from transferkit.claims.base import CLAIMS, create_claim, load_recipes
from transferkit.claims.report import terminal_table, write_report
from transferkit.cli import main

from . import toy_claim


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """The toy claim registered, and the records folder moved to a temporary one."""
    load_recipes()
    folder = tmp_path / "records"
    folder.mkdir()
    monkeypatch.setattr(records, "RECORDS", folder)
    with CLAIMS.temporary("toy", toy_claim.make()) as claim:
        yield {"toy": claim}


def test_a_full_run_is_recorded_and_shown_beside_a_quick_one(tmp_path, toy):
    full = runner.run_claim(toy["toy"], "full", None, tmp_path / "full")
    path = records.write_record(full, toy["toy"])
    stored = json.loads(path.read_text())
    meta = stored["record"]
    assert stored["arms"] == full["arms"] and stored["verdict"] == "holds"
    assert stored["series"] == "confirmation-1" and "extras" not in stored
    assert set(meta) >= {"commit", "date", "machine", "fingerprint"}
    assert meta["fingerprint"]["digest"] == records.fingerprint(toy["toy"])["digest"]
    summary = records.record_summary("toy")
    assert summary is not None and summary["verdict"] == "holds" and not summary["stale"]
    assert summary["seeds"] == 6

    quick = runner.run_claim(toy["toy"], "quick", 5, tmp_path / "quick")
    table = terminal_table([quick], {"toy": summary})
    assert "full record: holds (6 seeds, confirmation-1" in table
    text = write_report([quick], tmp_path / "quick").read_text()
    assert "full record: holds" in text and "STALE:" not in text


def test_a_record_is_stale_when_the_full_config_changes(tmp_path, toy):
    full = runner.run_claim(toy["toy"], "full", None, tmp_path)
    records.write_record(full, toy["toy"])
    cfg = dataclasses.replace(toy["toy"].budgets["full"], gain=0.2)
    CLAIMS.unregister("toy")
    CLAIMS.register("toy", dataclasses.replace(toy["toy"], budgets={"quick": cfg, "full": cfg}))
    summary = records.record_summary("toy")
    assert summary is not None and summary["stale"]
    assert "STALE" in terminal_table([full], {"toy": summary})


def test_the_code_hash_ignores_prose_but_not_code():
    text = "def f(x):\n    '''Doc.'''\n    return x + 1  # note\nC(notes='a', budgets=1, n=2)\n"
    prose = "def f(x):\n    '''Other doc.'''\n    return x + 1\nC(notes='b', budgets=3, n=2)\n"
    code = "def f(x):\n    return x + 2\nC(notes='a', budgets=1, n=2)\n"
    dump = lambda t: records.ast.dump(records._StripProse().visit(records.ast.parse(t)))  # noqa: E731
    assert dump(text) == dump(prose) and dump(text) != dump(code)


def test_only_full_runs_as_the_recipe_defines_them_are_recorded(tmp_path, toy, capsys):
    quick = runner.run_claim(toy["toy"], "quick", None, tmp_path)
    with pytest.raises(ValueError, match="full run"):
        records.make_record(quick, toy["toy"])
    for extra in (["--quick"], ["--full", "--seeds", "3"], ["--full", "--set", "gain=0"]):
        assert main(["reproduce", "toy", "--record", "--quiet", "--out", str(tmp_path),
                     *extra]) == 2
        assert "--record" in capsys.readouterr().err
    assert main(["reproduce", "toy", "--full", "--record", "--quiet", "--out",
                 str(tmp_path)]) == 0
    assert records.load_record("toy") is not None
    assert "full record: holds" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(records.shipped()) or ["(none shipped)"])
def test_every_shipped_record_recomputes_to_its_stored_verdict(name):
    if name == "(none shipped)":
        pytest.skip("no record is shipped")
    record = records.load_record(name)
    assert record is not None, f"records/{name}.json is not a readable record"
    again = records.recheck(record, create_claim(name))
    assert again["verdict"] == record["verdict"]
    assert [c["verdict"] for c in again["comparisons"]] == \
        [c["verdict"] for c in record["comparisons"]]
    assert [c["p_value"] for c in again["comparisons"]] == \
        pytest.approx([c["p_value"] for c in record["comparisons"]], nan_ok=True)
    assert record["budget"] == "full" and record["series"].startswith("confirmation-")


def test_strings_used_only_by_the_notes_are_prose():
    base = "NOTES = 'a'\nLABEL = 'x'\ndef f():\n    return LABEL\nC(notes='b' + NOTES, n=1)\n"
    prose = base.replace("NOTES = 'a'", "NOTES = 'changed'")
    code = base.replace("LABEL = 'x'", "LABEL = 'y'")
    dump = lambda t: records.ast.dump(records._StripProse().visit(records.ast.parse(t)))  # noqa: E731
    assert dump(base) == dump(prose) and dump(base) != dump(code)


def test_a_record_is_carried_to_a_new_rule_only_when_its_code_is_unchanged(tmp_path, toy):
    full = runner.run_claim(toy["toy"], "full", None, tmp_path)
    path = records.write_record(full, toy["toy"])
    meta = json.loads(path.read_text())["record"]
    if not meta["commit"] or meta["dirty"]:
        pytest.skip("not a git checkout, or the toy claim's code differs from its commit")
    assert not records.refingerprint("toy")  # nothing to carry over
    stored = json.loads(path.read_text())
    stored["record"]["fingerprint"]["digest"] = "0" * 16  # as if hashed by an older rule
    path.write_text(json.dumps(stored))
    assert records.record_summary("toy")["stale"]
    assert records.refingerprint("toy") and not records.record_summary("toy")["stale"]
    stored["record"]["commit"] = "0" * 40  # code that cannot be read at its commit stays stale
    path.write_text(json.dumps(stored))
    assert not records.refingerprint("toy") and records.record_summary("toy")["stale"]


def test_a_run_whose_code_changed_while_it_ran_is_not_recorded(tmp_path, toy):
    start = records.before_run(toy["toy"])
    full = runner.run_claim(toy["toy"], "full", None, tmp_path)
    cfg = dataclasses.replace(toy["toy"].budgets["full"], gain=0.3)  # changed mid-run
    changed = dataclasses.replace(toy["toy"], budgets={"quick": cfg, "full": cfg})
    with pytest.raises(ValueError, match="changed while it ran"):
        records.make_record(full, changed, start)
    assert records.make_record(full, toy["toy"], start)["record"]["fingerprint"] == \
        start["fingerprint"]


def test_the_current_sources_are_read_again_when_a_file_changes(tmp_path, monkeypatch):
    import os

    module = tmp_path / "tk_fingerprint_probe.py"
    module.write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sources = records._Sources()
    first = records.ast.dump(sources.tree("tk_fingerprint_probe")[0])
    module.write_text("X = 22\n")
    os.utime(module, ns=(1, 1))  # a different modification time, whatever the clock
    assert records.ast.dump(sources.tree("tk_fingerprint_probe")[0]) != first


def test_a_record_is_carried_over_a_change_that_left_the_numbers_bit_for_bit(tmp_path, toy):
    full = runner.run_claim(toy["toy"], "full", None, tmp_path / "full")
    path = records.write_record(full, toy["toy"])
    before = runner.run_claim(toy["toy"], "quick", 5, tmp_path / "before")
    assert before["fingerprint"] == records.fingerprint(toy["toy"])["digest"]
    stored = json.loads(path.read_text())
    stored["record"]["fingerprint"]["digest"] = old = "1" * 16  # the code before a change
    path.write_text(json.dumps(stored))
    before = {**before, "fingerprint": old}  # ... which the first quick run ran
    after = runner.run_claim(toy["toy"], "quick", 5, tmp_path / "after")
    assert records.record_summary("toy")["stale"]
    with pytest.raises(ValueError, match="arms are not identical"):
        records.carry("toy", before, {**after, "arms": {"base": [0.0] * 5}})
    with pytest.raises(ValueError, match="the second result ran code"):
        records.carry("toy", before, {**after, "fingerprint": "2" * 16})
    with pytest.raises(ValueError, match="seeds differ"):
        records.carry("toy", before, {**after, "seeds": [9, 8, 7, 6, 5]})
    assert records.record_summary("toy")["stale"]
    assert records.carry("toy", before, after)
    carried = json.loads(path.read_text())
    assert not records.record_summary("toy")["stale"]
    assert carried["arms"] == full["arms"] and carried["verdict"] == full["verdict"]
    assert carried["record"]["carried"][0]["from"] == old
    assert not records.carry("toy", before, after)  # current: nothing to carry
