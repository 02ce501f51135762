"""Every ```python block of the README and the core docs runs (```python no-run blocks are skipped).

Blocks of one file run in order in one namespace, so later blocks build on earlier ones.
"""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FILES = ["README.md", "docs/design.md", "docs/comparison.md"]
BLOCK = re.compile(r"^```(?P<info>[^\n]*)\n(?P<code>.*?)^```[ \t]*$", re.S | re.M)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of each block whose info string is exactly ``python``."""
    found = []
    for m in BLOCK.finditer(text):
        if m.group("info").strip() == "python":
            found.append((text.count("\n", 0, m.start("code")) + 1, m.group("code")))
    return found


def test_block_extraction_skips_no_run_and_other_languages():
    text = "a\n```python\nx = 1\n```\n```python no-run\nboom()\n```\n```bash\nmake\n```\n```python\ny = x\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n"), (12, "y = x\n")]


@pytest.mark.parametrize("name", FILES)
def test_markdown_python_blocks_run(name):
    path = ROOT / name
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    assert blocks, f"{name} has no ```python blocks"
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    for line, code in blocks:
        # Pad with newlines so tracebacks point at the real line of the markdown file.
        exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)
