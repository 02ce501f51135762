"""One renderer registry: every command writes through it, and `-o FILE` behaves the same on each."""

from __future__ import annotations

import json
import pathlib
import re

import numpy as np
import pytest
from safetensors.numpy import save_file

from blox_inspect import cli
from blox_inspect.renderers import REGISTRY, guess_format, render

HERE = pathlib.Path(__file__).parent
MLP = str(HERE / "models" / "mlp.py")


def _checkpoints(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(a))
    save_file({"w": np.ones(3, np.float32)}, str(b))
    return str(a), str(b)


@pytest.mark.parametrize(
    "argv, name, code",
    [
        (["summary", MLP, "--no-xla"], "s.md", 0),
        (["cost", MLP, "--device", "none"], "c.json", 0),
        (["check", MLP], "f.json", None),
        (["graph", MLP], "g.dot", 0),
        (["hlo", MLP, "--stage", "stablehlo"], "p.mlir", 0),
        (["diff", "A", "B"], "d.csv", 1),
    ],
)
def test_every_command_writes_o_file_the_same_way(argv, name, code, tmp_path, capsys):
    a, b = _checkpoints(tmp_path)
    argv = [a if x == "A" else b if x == "B" else x for x in argv]
    out = tmp_path / name
    got = cli.main([*argv, "-o", str(out)])
    if code is not None:
        assert got == code
    err = capsys.readouterr().err
    data = out.read_bytes()
    # The same line on every command, with the exact size of what was written.
    assert f"wrote {out} ({len(data):,} bytes)" in err
    assert len(re.findall(r"^wrote ", err, re.M)) == 1
    if name.endswith(".json"):
        json.loads(data)  # the extension chose the format
    if name == "s.md":
        assert data.startswith(b"#")
    if name == "d.csv":
        assert data.decode().splitlines()[0].startswith("status,path")
    if name == "g.dot":
        assert data.lstrip().startswith(b"digraph")


def test_the_extension_picks_the_format_per_kind():
    assert guess_format("x.json", kind="findings") == "json"
    assert guess_format("x.md", kind="cost") == "markdown"
    assert guess_format("x.csv", kind="diff") == "csv"
    assert guess_format("x.unknown", kind="summary") == "table"
    assert guess_format(None, default="text", kind="findings") == "text"
    # Every renderer resolves to a real function.
    for kind, table in REGISTRY.items():
        for fmt, r in table.items():
            module, func = r.target.split(":")
            assert callable(getattr(__import__(module, fromlist=[func]), func)), (kind, fmt)


def test_render_infers_the_kind_and_refuses_unknown_data():
    from blox_inspect.common.errors import InspectError

    with pytest.raises(InspectError, match="cannot render a dict; pass kind="):
        render({}, "json")
    with pytest.raises(InspectError, match="unknown format 'svg' for cost; expected one of: table, json, markdown"):
        render(object(), "svg", kind="cost")
