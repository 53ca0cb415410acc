"""What importing a piece may pull in: the layering rule of DESIGN.md, checked."""

import ast
import json
import pathlib
import subprocess
import sys

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "transferkit"
PIECES = ["data", "nets", "train", "finetune", "multitask", "adaptation", "labelshift", "testing",
          "heterogeneous", "meta", "curriculum", "l2t"]
# never pulled in by importing transferkit or a piece: recipes, the CLI, plotting, extras
FORBIDDEN = ["transferkit.claims", "transferkit.cli", "transferkit.workflows", "matplotlib",
             "pyarrow", "tsfresh", "neurokit2", "mlflow", "ray", "efficientnet_lite_pytorch",
             "skada", "quapy"]
# and the light pieces load none of the heavy scientific stack at import
SLOW = {"labelshift": ["scipy.optimize", "scipy.stats", "scipy.linalg", "sklearn", "pandas"]}


def _modules_after_import(module: str) -> list[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout)


def _hits(loaded: list[str], names: list[str]) -> list[str]:
    return [m for m in loaded if any(m == n or m.startswith(n + ".") for n in names)]


@pytest.mark.parametrize("piece", ["transferkit"] + [f"transferkit.{p}" for p in PIECES])
def test_importing_a_piece_pulls_in_nothing_it_should_not(piece):
    loaded = _modules_after_import(piece)
    assert _hits(loaded, FORBIDDEN) == []
    assert _hits(loaded, SLOW.get(piece.rpartition(".")[2], [])) == []


def _imports_of(path: pathlib.Path) -> list[str]:
    """Absolute names of the transferkit modules a source file imports."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.append(mod)
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    return [n for n in names if n.startswith("transferkit")]


# a method whose authors' schedule is part of it drives the loop itself (DESIGN.md, layers)
DRIVES_THE_LOOP = {"multitask/dsmt_fit.py"}


@pytest.mark.parametrize("piece", [p for p in PIECES if p != "train"])
def test_pieces_use_only_the_loops_published_interface(piece):
    bad = []
    for path in sorted((SRC / piece).rglob("*.py")):
        loop_ok = str(path.relative_to(SRC)) in DRIVES_THE_LOOP
        for mod in _imports_of(path):
            if mod.startswith("transferkit.train") and mod != "transferkit.train.interface" \
                    and not loop_ok:
                bad.append(f"{path.relative_to(SRC)} imports {mod}")
            if mod.startswith(("transferkit.claims", "transferkit.cli", "transferkit.workflows")):
                bad.append(f"{path.relative_to(SRC)} imports {mod}")
    assert bad == []


def test_the_shipped_checks_are_public_and_run_in_one_line():
    import transferkit.testing as testing

    assert set(testing.__all__) == {"check_adaptation_objective", "check_label_shift_estimator",
                                    "check_weighting", "synthetic_label_shift",
                                    "synthetic_transfer_pair"}
    from transferkit.testing import check_weighting

    check_weighting("equal", n_steps=3)  # a registered method, checked in one line
