"""``--jobs`` changes the wall time only: the numbers, and what happens when the parent dies."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .small import run_small


@pytest.mark.slow
@pytest.mark.ci_slow
def test_jobs_1_and_2_give_identical_arms(tmp_path):
    serial, _ = run_small("finetune", tmp_path / "serial", 2, jobs=1, steps=60)
    parallel, _ = run_small("finetune", tmp_path / "parallel", 2, jobs=2, steps=60)
    assert serial["arms"] == parallel["arms"]
    saved = [json.loads((tmp_path / d / "finetune.json").read_text())["arms"]
             for d in ("serial", "parallel")]
    assert saved[0] == saved[1]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.ci_slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_reproduce_is_killed(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "transferkit", "reproduce", "finetune", "--jobs", "2", "--quiet",
         "--out", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(workers) < 2:
        time.sleep(0.5)
        # the spawned workers, not the resource tracker (which exits by itself)
        workers = [c for c in _children(proc.pid)
                   if b"spawn_main" in open(f"/proc/{c}/cmdline", "rb").read()]
    assert len(workers) >= 1, "no worker process started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(5)
    assert [w for w in workers if _alive(w)] == []
