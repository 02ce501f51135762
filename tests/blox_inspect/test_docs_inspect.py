"""The Python blocks in docs/inspect.md's summary sections run."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTIONS = ("## Python API",)


def _blocks():
    text = open(os.path.join(ROOT, "docs", "inspect.md"), encoding="utf-8").read()
    for section in re.split(r"\n(?=## )", text):
        if section.startswith(SECTIONS):
            yield from re.findall(r"```python\n(.*?)```", section, re.S)


def test_python_api_example_runs(capsys):
    blocks = list(_blocks())
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/inspect.md", "exec"), {})
    assert "Forward FLOPs" in capsys.readouterr().out
