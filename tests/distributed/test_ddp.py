"""Two processes with gloo and per-rank batch B/2 train exactly as one process with batch B
(plain training, GradNorm, MSTN, a NaN step skipped on every rank when one rank has it),
and BBSE fitted on the ranks' gathered shares matches."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch

from . import ddp_programs

HERE = pathlib.Path(__file__).resolve().parent


def _torchrun(mode: str, out: pathlib.Path, nproc: int = 2) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRANSFERKIT_QUIET": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc_per_node={nproc}", str(HERE / "ddp_programs.py"), mode, str(out)],
        capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
@pytest.mark.parametrize("mode", sorted(ddp_programs.PROGRAMS))
def test_two_ranks_with_half_batches_match_one_process(mode, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = ddp_programs.state(ddp_programs.PROGRAMS[mode]())
    finally:
        torch.set_num_threads(threads)
    _torchrun(mode, tmp_path / "ddp.pt")
    together = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert together.keys() == alone.keys()
    initial = ddp_programs.state(_fresh(mode))
    for name, value in alone.items():
        if value.is_floating_point():
            torch.testing.assert_close(together[name], value, rtol=1e-5, atol=1e-6,
                                       msg=lambda m, name=name: f"{mode}: {name}: {m}")
        else:
            assert torch.equal(together[name], value), name
    if mode == "bbse":
        return
    # the run really trained (a test that cannot fail would compare untrained models)
    moved = [n for n, v in alone.items() if v.is_floating_point() and n in initial
             and not torch.equal(v, initial[n])]
    assert moved, "training changed nothing"


def _fresh(mode: str) -> torch.nn.Module:
    """The same model before training (STEPS = 0)."""
    steps = ddp_programs.STEPS
    ddp_programs.STEPS = 0
    try:
        return ddp_programs.PROGRAMS[mode]()
    finally:
        ddp_programs.STEPS = steps


@pytest.mark.slow
@pytest.mark.ci_slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_reproduce_runs_unchanged_under_torchrun(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "transferkit", "reproduce", "finetune", "--seeds", "1", "--set", "steps=30",
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("wrote 1 result file(s)") == 1  # rank 0 alone reports
    assert proc.stderr.count("running (quick, 1 seeds, 2 ranks under torch.distributed)") == 1
    result = json.loads((tmp_path / "finetune.json").read_text())
    assert result["error"] is None and len(result["arms"]) == 10
    assert (tmp_path / "report.md").exists()
