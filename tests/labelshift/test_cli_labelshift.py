"""``transferkit labelshift``: a good run writes its files; each bad input is one line."""

import json
import subprocess
import sys

import numpy as np
import pytest

from transferkit.cli import main
from transferkit.testing.labelshift import synthetic_label_shift

NAMES = ["cat", "dog", "eel"]


def _write(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.fixture
def files(tmp_path):
    hp, hy, tp, _ = synthetic_label_shift(np.full(3, 1 / 3), np.array([0.6, 0.3, 0.1]), 400, 500)
    pcols = [f"p_{n}" for n in NAMES]
    hold = _write(tmp_path / "holdout.csv", ["label", *pcols],
                  [[NAMES[y], *(f"{v:.8f}" for v in p)] for p, y in zip(hp, hy, strict=True)])
    targ = _write(tmp_path / "target.csv", pcols, [[f"{v:.8f}" for v in p] for p in tp])
    return {"dir": tmp_path, "holdout": hold, "target": targ, "hp": hp, "hy": hy, "tp": tp}


def _args(f, hold=None, targ=None, *extra):
    return ["labelshift", "--holdout", str(hold or f["holdout"]), "--target",
            str(targ or f["target"]), "--out", str(f["dir"] / "out"), *extra]


@pytest.mark.parametrize("method", ["bbse", "rlls", "mlls"])
def test_good_run_prints_and_writes(files, capsys, method):
    assert main(_args(files, None, None, "--method", method)) == 0
    out = capsys.readouterr().out
    assert "shift detected" in out and "cat" in out and "95% interval" in out
    summary = json.loads((files["dir"] / "out" / "labelshift.json").read_text())
    assert summary["shift_test"]["reject"] is True
    assert abs(summary["target_prior"][0] - 0.6) < 0.08
    corrected = np.loadtxt(files["dir"] / "out" / "corrected_target.csv", delimiter=",",
                           skiprows=1)
    assert corrected.shape == (500, 3)
    np.testing.assert_allclose(corrected.sum(1), 1, atol=1e-6)


def test_hard_predictions_and_npy(files, capsys, tmp_path):
    hp, hy, tp = files["hp"], files["hy"], files["tp"]
    hold = _write(tmp_path / "h.csv", ["label", "pred"],
                  [[NAMES[y], NAMES[p.argmax()]] for p, y in zip(hp, hy, strict=True)])
    targ = _write(tmp_path / "t.csv", ["pred"], [[NAMES[p.argmax()]] for p in tp])
    assert main(_args(files, hold, targ)) == 0
    corrected = np.loadtxt(files["dir"] / "out" / "corrected_target.csv", delimiter=",",
                           skiprows=1)
    assert corrected.shape == (500, 3)
    np.save(tmp_path / "h.npy", np.column_stack([hy, hp]))
    np.save(tmp_path / "t.npy", tp)
    assert main(_args(files, tmp_path / "h.npy", tmp_path / "t.npy", "--method", "mlls")) == 0
    assert np.load(files["dir"] / "out" / "corrected_target.npy").shape == (500, 3)


def _corrupt(files, which, edit):
    path = files[which]
    lines = path.read_text().splitlines()
    edit(lines)
    bad = path.with_name("bad_" + path.name)
    bad.write_text("\n".join(lines) + "\n")
    return bad


def _set(lines, row, col, value):
    cells = lines[row].split(",")
    cells[col] = value
    lines[row] = ",".join(cells)


CASES = {
    "nan": ("target", lambda ls: _set(ls, 3, 0, "nan"), "NaN"),
    "not-a-number": ("holdout", lambda ls: _set(ls, 2, 1, "abc"), "not a number"),
    "wrong-column-count": ("target", lambda ls: ls.__setitem__(4, ls[4] + ",0.1"), "columns"),
    "not-summing-to-one": ("target", lambda ls: _set(ls, 5, 0, "0.9"), "sum to"),
    "unknown-label": ("holdout", lambda ls: _set(ls, 2, 0, "fox"), "unknown label 'fox'"),
    "class-missing": ("holdout", lambda ls: ls.__setitem__(
        slice(1, None), [x for x in ls[1:] if not x.startswith("eel,")]),
        "missing from the holdout"),
    "target-columns": ("target", lambda ls: ls.__setitem__(0, "p_cat,p_dog,p_fox"),
                       "class columns"),
    "no-label-column": ("holdout", lambda ls: ls.__setitem__(0, ls[0].replace("label", "lab")),
                        "'label' column"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_writes_nothing(files, capsys, case):
    which, edit, message = CASES[case]
    bad = _corrupt(files, which, edit)
    args = _args(files, bad if which == "holdout" else None, bad if which == "target" else None)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("transferkit: error:"), err
    assert message in err[0], err
    assert not (files["dir"] / "out").exists()


def test_mlls_with_hard_predictions_is_an_error(files, capsys, tmp_path):
    hold = _write(tmp_path / "h.csv", ["label", "pred"], [["a", "a"], ["b", "b"]])
    targ = _write(tmp_path / "t.csv", ["pred"], [["a"]])
    assert main(_args(files, hold, targ, "--method", "mlls")) == 2
    assert "needs predicted probabilities" in capsys.readouterr().err


def test_subprocess_missing_file(tmp_path):
    r = subprocess.run([sys.executable, "-m", "transferkit", "labelshift", "--holdout",
                        str(tmp_path / "nope.csv"), "--target", str(tmp_path / "t.csv")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    expected = f"transferkit: error: {tmp_path / 'nope.csv'}: no such file"
    assert r.stderr.strip().splitlines() == [expected]


def test_parquet_input_or_clear_message(files, capsys, tmp_path):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        bad = tmp_path / "h.parquet"
        bad.write_bytes(b"PAR1")
        assert main(_args(files, bad)) == 2
        assert "transferkit[parquet]" in capsys.readouterr().err
        return
    hp, hy, tp = files["hp"], files["hy"], files["tp"]
    cols = {f"p_{n}": hp[:, j] for j, n in enumerate(NAMES)}
    pq.write_table(pa.table({"label": [NAMES[y] for y in hy], **cols}), tmp_path / "h.parquet")
    pq.write_table(pa.table({f"p_{n}": tp[:, j] for j, n in enumerate(NAMES)}),
                   tmp_path / "t.parquet")
    assert main(_args(files, tmp_path / "h.parquet", tmp_path / "t.parquet")) == 0
    assert (files["dir"] / "out" / "corrected_target.csv").exists()


def test_the_workflow_is_library_code_on_arrays():
    import numpy as np

    from transferkit.workflows import InputError, correct_label_shift

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 900)
    hp = np.eye(3)[y] * 0.7 + 0.1
    ty = rng.choice(3, 900, p=[0.6, 0.3, 0.1])
    tp = np.eye(3)[ty] * 0.7 + 0.1
    report = correct_label_shift(hp, y, tp, "mlls", classes=["a", "b", "c"])
    assert report.chi2.reject and report.corrected.shape == (900, 3)
    assert report.estimate.prior[0] > report.estimate.prior[2]
    assert report.summary()["classes"] == ["a", "b", "c"]
    assert any("target" in line for line in report.lines())
    with pytest.raises(InputError, match="has no option 'soft'"):
        correct_label_shift(hp, y, tp, "mlls", soft=True)
    with pytest.raises(InputError, match="unknown method"):
        correct_label_shift(hp, y, tp, "nope")


def test_the_cli_offers_every_registered_estimator():
    from transferkit.cli import build_parser
    from transferkit.labelshift import list_estimators

    sub = next(a for a in build_parser()._subparsers._group_actions if a.choices)
    method = next(a for a in sub.choices["labelshift"]._actions if a.dest == "method")
    assert list(method.choices) == list_estimators()


def _never_predicts_eel(files, tmp_path):
    """The same holdout with 'eel' never the argmax: its probability kept below another's."""
    hp = files["hp"].copy()
    hp[:, 2] = np.minimum(hp[:, 2], 0.9 * hp[:, :2].max(1))  # below the larger of the others
    hp /= hp.sum(1, keepdims=True)
    assert (hp.argmax(1) != 2).all()
    pcols = [f"p_{n}" for n in NAMES]
    return _write(tmp_path / "h_never.csv", ["label", *pcols],
                  [[NAMES[y], *(f"{v:.10f}" for v in p)]
                   for p, y in zip(hp, files["hy"], strict=True)])


def test_a_class_never_predicted_stops_only_the_estimators_it_blinds(files, capsys, tmp_path):
    hold = _never_predicts_eel(files, tmp_path)
    assert main(_args(files, hold, None)) == 2  # hard BBSE: its confusion has an empty row
    err = capsys.readouterr().err
    assert "never predicted" in err and "--force" in err and "--soft" in err
    assert "--method mlls" in err
    for extra in (["--method", "mlls"], ["--method", "rlls"]):
        assert main(_args(files, hold, None, *extra)) == 0, extra  # they see probabilities
    capsys.readouterr()


def test_no_shift_is_said_and_paths_are_kept(files, capsys, tmp_path):
    hp, hy = files["hp"], files["hy"]
    pcols = [f"p_{n}" for n in NAMES]
    same = _write(tmp_path / "t_same.csv", ["path", *pcols],  # the holdout's own distribution
                  [[f"img/{i}.png", *(f"{v:.8f}" for v in p)] for i, p in enumerate(hp)])
    assert main(_args(files, None, same)) == 0
    out = capsys.readouterr().out
    summary = json.loads((files["dir"] / "out" / "labelshift.json").read_text())
    assert any("consistent with no shift" in w for w in summary["warnings"])
    assert "consistent with no shift" in out
    lines = (files["dir"] / "out" / "corrected_target.csv").read_text().splitlines()
    assert lines[0].startswith("path,p_cat") and lines[1].startswith("img/0.png,")
    del hy
