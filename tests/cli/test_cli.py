import json
import subprocess
import sys

import pytest

from transferkit.cli import main


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "transferkit", *args], capture_output=True, text=True, timeout=300
    )


def test_list_names_the_claims(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "finetune" in out


def test_unknown_claim_is_one_line_and_nonzero():
    r = _run("reproduce", "no-such-claim")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "unknown claim 'no-such-claim'" in r.stderr and "finetune" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("seeds", ["0", "-3", "many"])
def test_bad_seed_count(seeds):
    r = _run("reproduce", "finetune", "--seeds", seeds)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "positive whole number" in r.stderr and "Traceback" not in r.stderr


def test_out_dir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    r = _run("reproduce", "finetune", "--out", str(f / "sub"))
    assert r.returncode == 2 and "cannot write to output directory" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "1797 images" in out and "5000 images" in out


@pytest.fixture
def toy_claims():
    """Register the runner's toy claim (and a crashing one) for in-process CLI runs."""
    from transferkit.claims.base import CLAIMS, load_recipes

    from ..claims import toy_claim

    load_recipes()
    crashing = toy_claim.make(fail_on_seed=1, name="toy-crash")
    with CLAIMS.temporary("toy", toy_claim.make()) as toy, \
            CLAIMS.temporary("toy-crash", crashing) as crash:
        yield {"toy": toy, "toy-crash": crash}


def test_set_overrides_are_applied_and_recorded(tmp_path, toy_claims, capsys):
    assert main(["reproduce", "toy", "--quiet", "--out", str(tmp_path), "--set", "gain=0.0",
                 "--set", "seeds=3"]) == 0
    saved = json.loads((tmp_path / "toy.json").read_text())
    assert saved["overrides"] == {"gain": "0.0", "seeds": "3"}
    assert saved["config"]["gain"] == 0.0 and len(saved["seeds"]) == 3
    assert saved["holds"] is False


@pytest.mark.parametrize(
    "item, message",
    [("nope=1", "has no field 'nope'"), ("gain=high", "gain takes float"),
     ("seeds=2.5", "seeds takes int"), ("gain", "FIELD=VALUE")],
)
def test_bad_overrides_are_one_line_errors(tmp_path, toy_claims, capsys, item, message):
    assert main(["reproduce", "toy", "--quiet", "--out", str(tmp_path), "--set", item]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "toy.json").exists()  # checked before any work


def test_a_crashed_claim_makes_the_exit_status_nonzero(tmp_path, toy_claims, capsys):
    assert main(["reproduce", "toy", "toy-crash", "--quiet", "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "ended in ERROR: toy-crash" in captured.err
    assert json.loads((tmp_path / "toy.json").read_text())["holds"] is True  # others ran
    # a verdict that does not hold still exits 0
    assert main(["reproduce", "toy", "--quiet", "--out", str(tmp_path / "b"),
                 "--set", "gain=0"]) == 0


def test_nested_and_typed_overrides():
    from dataclasses import dataclass

    from transferkit.claims.overrides import apply_overrides

    @dataclass(frozen=True)
    class Inner:
        steps: int = 10
        name: str = "a"

    @dataclass(frozen=True)
    class Outer:
        lr: float = 0.1
        hidden: tuple[int, ...] = (4,)
        flag: bool = False
        inner: Inner = Inner()
        maybe: int | None = None

    cfg = apply_overrides(Outer(), {"hidden": "(8, 8)", "flag": "yes", "inner.steps": "3",
                                    "maybe": "none", "lr": "1e-3"})
    assert cfg == Outer(lr=1e-3, hidden=(8, 8), flag=True, inner=Inner(steps=3))
    assert apply_overrides(Outer(), {"maybe": "4"}).maybe == 4
    for bad in ({"hidden": "(1.5,)"}, {"inner": "3"}, {"lr.x": "1"}, {"inner.nope": "1"}):
        with pytest.raises(ValueError):
            apply_overrides(Outer(), bad)


def test_progress_names_claim_seed_and_time_left(tmp_path, toy_claims, capsys):
    assert main(["reproduce", "toy", "--out", str(tmp_path), "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    assert "[claim 1/1 toy] running (quick, 6 seeds, 1 process)" in err
    assert "seed 1/6 (seed 0) done" in err and "left" in err
    assert "s of compute in all" in err
    # a rerun takes every seed from the cache and says so
    assert main(["reproduce", "toy", "--out", str(tmp_path), "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    assert "seed 6/6 (seed 5) done, from the cache" in err and "resumed" in err


def test_top_level_help_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys\nfrom transferkit.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "reproduce" in out and "finetune" in out and out.strip().endswith("False")


def test_each_command_builds_its_own_options_only_when_run(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    assert "--method" in capsys.readouterr().out


def test_a_set_that_drops_a_compared_arm_is_refused_before_any_seed(tmp_path, capsys):
    code = main(["reproduce", "maml", "--quiet", "--out", str(tmp_path),
                 "--set", "arms=('maml',)"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--set for claim 'maml'" in err and "leave out 'pretrained'" in err
    assert not (tmp_path / "maml.json").exists() and not (tmp_path / ".partial").exists()
