import os
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


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_out_dir_as_user(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    r = _run("reproduce", "finetune", "--out", str(ro / "x"))
    assert r.returncode == 2 and "cannot write to output directory" in r.stderr


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
