"""Runs every ```python block of docs/layers.md, each in a fresh namespace."""

import pathlib
import re

import pytest

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "layers.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_page_has_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_docs_layers_block_runs(index):
    exec(compile(BLOCKS[index], f"{DOC}:block{index}", "exec"), {})
