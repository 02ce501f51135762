"""docs/inspect.md's Diagrams section: its Python runs, its commands parse, its images are valid and small."""

import pathlib
import re
import shlex
import xml.etree.ElementTree as ET

from blox_inspect.cli import build_parser

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _section() -> str:
    text = (ROOT / "docs" / "inspect.md").read_text(encoding="utf-8")
    return next(s for s in re.split(r"\n(?=## )", text) if s.startswith("## Diagrams"))


def test_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", _section(), re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/inspect.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "['<input:0>', 'net/rng', 'net/mlp/l1', 'net/mlp/l2', '<output:0>']"
    assert out[1] == "['<input:0>', 'net/mlp/l1', 'net/mlp/l2', '<output:0>']" and out[2] == "1 1"


def test_every_graph_command_shown_parses():
    commands = re.findall(r"blox-inspect (graph [^`#\n]*)", _section())
    assert len(commands) >= 8
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(shlex.split(command))
        assert args.command == "graph", command


def test_images_exist_are_svg_and_small():
    images = re.findall(r"!\[[^\]]*\]\((img/[^)]+)\)", _section())
    assert len(images) == 3
    for image in images:
        path = ROOT / "docs" / image
        assert path.stat().st_size < 1_000_000, image
        assert ET.parse(path).getroot().tag == "{http://www.w3.org/2000/svg}svg"
