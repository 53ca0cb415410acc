"""The README's Python example runs as written, and its commands are what CI reads."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs(capsys):
    text = README.read_text()
    (example,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    exec(compile(example, "README example", "exec"), {})
    accuracy = float(capsys.readouterr().out.strip())
    assert 0.5 < accuracy <= 1.0


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
