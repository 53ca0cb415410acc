"""Executors: the same JSON from a local Ray instance, a process pool and one process; an
interrupted run resumes under either."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from transferkit.claims.executors import create_executor, list_executors
from transferkit.claims.runner import run_claim

from . import toy_claim

TIMING = {"seconds", "compute_seconds", "seed_seconds", "seed_run_seconds", "cached_seeds",
          "cached_units"}


def numbers(result: dict) -> dict:
    """A result without what may differ between equal runs (times, what came from a cache)."""
    return {k: v for k, v in result.items() if k not in TIMING}


def _reproduce(out, *extra, wait=True):
    cmd = [sys.executable, "-m", "transferkit", "reproduce", "bbse-correction", "--quick",
           "--quiet", "--out", str(out), *extra]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _load(out):
    return json.loads((out / "bbse-correction.json").read_text())


def test_the_executors_are_registered_and_check_their_arguments():
    assert {"serial", "process", "ray"} <= set(list_executors())
    with pytest.raises(ValueError, match="no address"):
        create_executor("process", address="host:6379")
    with pytest.raises(KeyError):
        create_executor("nowhere")


def test_serial_and_process_executors_give_the_same_json(tmp_path):
    claim = toy_claim.make()
    serial = run_claim(claim, "quick", 4, tmp_path / "a", executor=create_executor("serial"))
    pool = run_claim(claim, "quick", 4, tmp_path / "b",
                     executor=create_executor("process", jobs=2))
    assert numbers(serial) == numbers(pool)


def _quiet_flag(claim, cfg, seed, threads, units, on_unit=None):
    import os

    return {"seed": seed, "quiet": os.environ.get("TRANSFERKIT_QUIET")}


def test_pool_workers_draw_no_progress_bars_of_their_own(tmp_path, monkeypatch):
    # bars from several workers would overwrite each other on one terminal line: the
    # parent's per-seed lines are the one display, whatever the parent's own setting
    monkeypatch.delenv("TRANSFERKIT_QUIET", raising=False)
    with create_executor("process", jobs=2) as pool:
        got = list(pool.map(_quiet_flag, None, None, [0, 1], tmp_path, 1))
    assert sorted(r["seed"] for r in got) == [0, 1]
    assert {r["quiet"] for r in got} == {"1"}


@pytest.mark.slow
@pytest.mark.ci_slow
def test_a_claim_through_a_local_ray_instance_matches_jobs_1(tmp_path):
    pytest.importorskip("ray")
    one = _reproduce(tmp_path / "one", "--jobs", "1")
    assert one.returncode == 0, one.stderr
    ray = _reproduce(tmp_path / "ray", "--executor", "ray", "--jobs", "2")
    assert ray.returncode == 0, ray.stderr
    assert numbers(_load(tmp_path / "ray")) == numbers(_load(tmp_path / "one"))


@pytest.mark.slow
@pytest.mark.ci_slow
def test_a_ray_run_killed_between_seeds_resumes_without_redoing_them(tmp_path):
    pytest.importorskip("ray")
    full = _reproduce(tmp_path / "full", "--jobs", "1")
    assert full.returncode == 0, full.stderr
    out = tmp_path / "killed"
    proc = _reproduce(out, "--executor", "ray", "--jobs", "1", wait=False)
    deadline, done = time.monotonic() + 300, []
    while time.monotonic() < deadline and not done and proc.poll() is None:
        time.sleep(0.2)
        done = list(out.glob(".partial/bbse-correction/*/seed*.json"))
    assert done and proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "bbse-correction.json").exists()
    rerun = _reproduce(out, "--executor", "ray", "--jobs", "1")
    assert rerun.returncode == 0, rerun.stderr
    resumed = _load(out)
    assert numbers(resumed) == numbers(_load(tmp_path / "full"))
    assert len(resumed["cached_seeds"]) >= 1  # finished seeds were not run again
