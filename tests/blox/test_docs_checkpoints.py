"""Runs the ```python blocks of docs/checkpoints.md in order, in one namespace (later blocks use earlier ones)."""

import pathlib

from test_docs import python_blocks

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "checkpoints.md"


def test_docs_checkpoints_blocks_run():
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    namespace: dict = {"__name__": "docs_checkpoints"}
    for line, code in blocks:
        exec(compile("\n" * (line - 1) + code, str(DOC), "exec"), namespace)
