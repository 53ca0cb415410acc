"""Run every benchmark and print one table of the ratios they measure.

Each benchmark measures its ratios side by side in its own process (ours against a peer
library or a floor such as a plain loop); this runs them one after another and collects
every printed line that holds a ratio (``1.23x``) into one table. Peers are optional (the
``bench`` extra): a missing one is a line in the benchmark's output, not a failure.

    python benchmarks/run_all.py            # the sizes each benchmark documents
    python benchmarks/run_all.py --smoke    # tiny sizes, to check that they all still run
    python benchmarks/run_all.py --only maml reform
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (arguments at full size, arguments for --smoke)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "loop": ([], ["--smoke"]),
    "labelshift": (["--scaling"], ["--rows", "20000", "--repeats", "1", "--classes", "10"]),
    "detection": ([], ["--repeats", "2", "--sizes", "200"]),
    "mlls_defaults": ([], ["--seeds", "1", "--trials", "2"]),
    "gradnorm": (["--tasks", "2", "10", "40"], ["--rounds", "1", "--steps", "2"]),
    "regularizers": ([], ["--steps", "2", "--rounds", "1"]),
    "adaptation": (["--epochs", "30", "--seeds", "3"],
                   ["--width", "16", "--rounds", "1", "--steps", "2", "--epochs", "1"]),
    "reform": ([], ["--smoke"]),
    "maml": ([], ["--smoke"]),
    "finetune": ([], ["--images", "60", "--epochs", "1", "--size", "32", "--rounds", "1",
                      "--workers", "0"]),
    "text": ([], ["--steps", "2", "--rounds", "1", "--texts", "32", "--probe-epochs", "1"]),
}
RATIO = re.compile(r"\d+(\.\d+)?x\b")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: check that all run")
    ap.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="a subset")
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []
    failed: list[str] = []
    for name in args.only or list(BENCHMARKS):
        full, smoke = BENCHMARKS[name]
        cmd = [sys.executable, str(HERE / f"bench_{name}.py"), *(smoke if args.smoke else full)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        print(f"== bench_{name}.py: {status}, {seconds:.1f} s", flush=True)
        print(proc.stdout.rstrip())
        if proc.returncode != 0:
            failed.append(name)
            print(proc.stderr.rstrip()[-4000:])
        rows += [(name, line.strip()) for line in proc.stdout.splitlines()
                 if RATIO.search(line)]
    print("\n| benchmark | measured (ratios side by side in one process) |\n|---|---|")
    for name, line in rows:
        print(f"| {name} | {line.replace('|', '/')} |")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
