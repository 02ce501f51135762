"""The Python block of docs/inspect.md's "Costs and sharding" section runs."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_costs_section_python_block_runs(capsys):
    text = open(os.path.join(ROOT, "docs", "inspect.md"), encoding="utf-8").read()
    section = next(s for s in re.split(r"\n(?=## )", text) if s.startswith("## Costs and sharding"))
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/inspect.md", "exec"), {})
    assert "memory" in capsys.readouterr().out
