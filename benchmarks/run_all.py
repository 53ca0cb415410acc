"""Run every benchmark and print one table of the ratios they measure.

Each benchmark measures its ratios side by side in its own process (ours against a peer
library or a floor such as a plain loop); this runs them one after another, collects
every printed line that holds a ratio (``1.23x``) into one table, and then prints every
speed target (:data:`TARGETS`: issue 35's table and the targets met before it) with what
was measured and whether it is met. Peers are optional (the
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
from dataclasses import dataclass
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
                      "--workers", "0", "--freeze", "2", "--freeze-epochs", "1"]),
    "text": ([], ["--steps", "2", "--rounds", "1", "--texts", "32", "--probe-epochs", "1"]),
    "cpu_precision": ([], ["--backbones", "mobilenet-v2", "--sizes", "32", "--rounds", "1",
                           "--steps", "1"]),
    "alpha_search": (["--seeds", "5", "--workflow"],
                     ["--settings", "l2sp", "--seeds", "1", "--steps", "8"]),
}
RATIO = re.compile(r"\d+(\.\d+)?x\b")


@dataclass(frozen=True)
class Target:
    """A speed target: the number ``pattern``'s group captures in a benchmark's output,
    to be ``<=`` or ``>=`` ``value``. Where the pattern matches several lines (several
    sizes), the worst match is the one judged."""

    bench: str
    workload: str
    pattern: str
    goal: str
    value: float

    def judge(self, output: str) -> tuple[str, str]:
        """(measured, "met" / "not met" / "not measured")."""
        found = [float(m) for m in re.findall(self.pattern, output, flags=re.S)]
        if not found:
            return "-", "not measured"
        worst = max(found) if self.goal == "<=" else min(found)
        ok = worst <= self.value if self.goal == "<=" else worst >= self.value
        shown = (f"{worst:+.4f}" if self.value == 0
                 else f"{worst:.2f}x" if len(found) == 1
                 else f"{worst:.2f}x (worst of {len(found)})")
        return shown, "met" if ok else "not met"


F = r"([-+]?\d+\.\d+)"
# Issue 35's table (and the targets met before it), in the order of the issue
TARGETS = [
    Target("labelshift", "BBSE hard from probabilities vs a numpy sum (K=10, kernels)",
           rf"K=10: BBSE hard {F}x the sum", "<=", 1.5),
    Target("labelshift", "BBSE soft vs the sum (K=10)",
           rf"K=10: BBSE hard [\d.]+x the sum \(target <= 3x\); BBSE soft {F}x", "<=", 2.0),
    Target("labelshift", "MLLS, one EM pass vs the sum (K=10)",
           rf"K=10: MLLS \d+ EM passes, [\d.]+ ms per pass = {F}x", "<=", 2.0),
    Target("labelshift", "MLLS per element per pass, 1e7 rows / 1e4 rows (flat: <= 1.2x)",
           rf"K=10: MLLS per element per pass [^\n]*?: {F}x \(the sum", "<=", 1.2),
    Target("labelshift", "BBSE hard: times faster than QuaPy PACC (K=10)",
           rf"K=10: BBSE hard {F}x faster than quapy PACC", ">=", 4.0),
    Target("labelshift", "BBSE soft (PACC's estimator): times faster than QuaPy PACC",
           rf"K=10: BBSE hard [^\n]*BBSE soft \(PACC's own estimator: the mean posterior\) "
           rf"{F}x faster", ">=", 4.0),
    Target("labelshift", "MLLS: times faster than QuaPy EMQ at equal error (K=10)",
           rf"K=10: MLLS calibration=None {F}x faster than quapy EMQ", ">=", 10.0),
    Target("gradnorm", "GradNorm step vs a raw equal-weights step, T=10",
           rf"T=10: gradnorm step {F}x the raw step", "<=", 1.3),
    Target("gradnorm", "GradNorm step vs a raw equal-weights step, T=40",
           rf"T=40: gradnorm step {F}x the raw step", "<=", 1.5),
    Target("gradnorm", "equal weighting vs the raw step (T=2, 10, 40)",
           rf"T=\d+: gradnorm step [^\n]*equal weighting {F}x", "<=", 1.05),
    Target("gradnorm", "GradNorm: times faster than gradnorm-pytorch",
           rf"gradnorm {F}x faster than gradnorm-pytorch", ">=", 1.0),
    Target("regularizers", "L2-SP add_grad_ step vs a plain step (claim's MLP, batch 32)",
           rf"the claim's net\)[^\n]*\n(?:[^\n]*\n)*?\s+L2SP add_grad_ \(no node\)\s+\d+\s+"
           rf"{F}x", "<=", 1.05),
    Target("adaptation", "DANN per sample seen vs skada's DANN (float32)",
           rf"per sample seen: {F}x \(target <= 0.5x\)", "<=", 0.5),
    Target("adaptation", "DANN target accuracy minus skada's (float32)",
           rf"target accuracy, ours - skada \(paired by seed\): {F}", ">=", 0.0),
    Target("adaptation", "DANN per sample seen vs skada's DANN (--precision bf16)",
           rf"\(--precision bf16\):[^\n]*per sample seen {F}x", "<=", 0.5),
    Target("adaptation", "DANN target accuracy minus skada's (--precision bf16)",
           rf"\(--precision bf16\):[^\n]*accuracy - skada's {F}", ">=", 0.0),
    Target("adaptation", "MSTN step vs DANN step", rf"MSTN / DANN step time: {F}", "<=", 1.25),
    Target("detection", "chi-squared test vs the scipy call alibi-detect makes",
           rf"chi2, n=\s*[\d,]+: ours [^\n]*alibi's call\)\s+[\d.]+ ms: {F}x", "<=", 1.0),
    Target("detection", "KS test vs the scipy calls alibi-detect makes",
           rf"KS,\s+n=\s*[\d,]+: ours [^\n]*call\)\s+[\d.]+ ms: {F}x", "<=", 1.0),
    Target("finetune", "transferkit finetune vs a hand-written loop (images/s)",
           rf"= {F}x \(target >= 0.9x\)", ">=", 0.9),
    Target("text", "MiniLM fine-tuning vs a hand-written transformers loop",
           rf"ours at {F}x the hand-written loop's speed", ">=", 0.9),
    Target("maml", "MAML meta-batch: higher's time / ours",
           rf"higher\s+[\d.]+ ms/meta-batch\s+{F}x ours", ">=", 1.0),
    Target("reform", "ReForm's transport vs POT's Sinkhorn alone",
           rf"transferkit-transport\s+[\d.]+ ms\s+{F}x POT", "<=", 1.05),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: check that all run")
    ap.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="a subset")
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []
    outputs: dict[str, str] = {}
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
        outputs[name] = proc.stdout
        rows += [(name, line.strip()) for line in proc.stdout.splitlines()
                 if RATIO.search(line)]
    print("\n| benchmark | measured (ratios side by side in one process) |\n|---|---|")
    for name, line in rows:
        print(f"| {name} | {line.replace('|', '/')} |")
    print("\n| workload | measured | target | |\n|---|---|---|---|")
    for t in TARGETS:
        if t.bench in outputs:
            measured, verdict = t.judge(outputs[t.bench])
            shown = f"{t.goal} {t.value:g}" + ("" if t.value == 0 else "x")
            print(f"| {t.workload} | {measured} | {shown} | {verdict} |")
    if args.smoke:
        print("(--smoke sizes: the verdicts above say nothing about the targets)")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
