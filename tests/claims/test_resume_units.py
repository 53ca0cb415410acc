"""kill -9 in the middle of a seed: the rerun redoes only the unfinished units and writes the
same JSON as an uninterrupted run."""

import json
import signal
import subprocess
import sys
import time

import pytest

from .test_executors import numbers

ARGS = ["reproduce", "finetune", "--seeds", "1", "--jobs", "1", "--quiet",
        "--set", "steps=150"]


def _run(out, wait=True):
    cmd = [sys.executable, "-m", "transferkit", *ARGS, "--out", str(out)]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
@pytest.mark.ci_slow
def test_a_kill_mid_seed_loses_only_the_unit_in_progress(tmp_path):
    full = _run(tmp_path / "full")
    assert full.returncode == 0, full.stderr
    expected = json.loads((tmp_path / "full" / "finetune.json").read_text())

    out = tmp_path / "killed"
    proc = _run(out, wait=False)
    deadline = time.monotonic() + 300
    done: list = []
    while time.monotonic() < deadline and len(done) < 3 and proc.poll() is None:
        time.sleep(0.2)
        done = list(out.glob(".partial/finetune/*/seed0/*.json"))
    assert len(done) >= 3 and proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "finetune.json").exists()

    rerun = _run(out)
    assert rerun.returncode == 0, rerun.stderr
    resumed = json.loads((out / "finetune.json").read_text())
    assert resumed["arms"] == expected["arms"]
    assert numbers(resumed) == numbers(expected)  # the same JSON, times aside
    cached = resumed["cached_units"]["0"]
    assert len(cached) >= 3  # those units were not computed again
    n_units = len(expected["arms"])
    assert len(cached) < n_units
    # the reported compute is the whole seed's (cached units' time included), not only
    # this run's
    assert resumed["compute_seconds"] > resumed["seed_run_seconds"][0]
    assert not list(out.glob(".partial/finetune/*/seed0"))  # unit files cleaned up
