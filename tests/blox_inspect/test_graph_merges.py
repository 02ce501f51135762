"""Merge points: where module outputs meet in plain JAX (residual adds, gates, attention matmuls) the diagram
draws a small function node, so no edge skips past the merge and reads as wrong dataflow."""

from __future__ import annotations

import re
import struct

import pytest

import blox_inspect
from blox_inspect import cli
from blox_inspect.analysis.diagram import plan
from blox_inspect.load.model_file import load_model
from blox_inspect.renderers import _layout
from blox_inspect.renderers.graphviz import to_dot

RESIDUAL = """
import jax, jax.numpy as jnp, blox as bx

class Block(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.norm = bx.LayerNorm(graph / "norm")
        self.a = bx.Linear(graph / "a", 8, rng)
        self.b = bx.Linear(graph / "b", 8, rng)
        self.out = bx.Linear(graph / "out", 8, rng)

    def __call__(self, params, x):
        h, params = self.norm(params, x)        # x - mean(x) inside: one source, no merge
        a, params = self.a(params, h)
        b, params = self.b(params, h)
        g, params = self.out(params, a * jax.nn.sigmoid(b))   # a gate: a merge of a and b
        return x + g, params                    # the residual: a merge of the block's input and out

def build():
    g = bx.Graph("net"); rng = bx.Rng(g / "rng")
    return Block(g / "block", rng), jnp.zeros((2, 8))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    f = tmp_path_factory.mktemp("m") / "residual.py"
    f.write_text(RESIDUAL)
    return blox_inspect.summarize_loaded(load_model(str(f)), xla=False)


def test_merges_are_found_where_different_outputs_meet(report):
    ops = sorted((m.scope, m.op) for m in report.merges)
    assert ops == [("net/block", "add"), ("net/block", "mul")]
    edges = {(e.src, e.dst) for e in report.edges}
    gate = "<merge:net/block#0:mul>"
    residual = "<merge:net/block#1:add>"
    assert {("net/block/a", gate), ("net/block/b", gate), (gate, "net/block/out")} <= edges
    assert {("net/block", residual), ("net/block/out", residual), (residual, "net/block")} <= edges
    # No edge skips a merge: a and b reach out only through the gate.
    assert ("net/block/a", "net/block/out") not in edges and ("net/block/b", "net/block/out") not in edges
    again = blox_inspect.Report.from_json(report.to_json())
    assert again.merges == report.merges


def test_merges_are_drawn_as_small_function_nodes(report):
    p = plan(report)
    merges = [i for i in p.items.values() if i.kind == "merge"]
    assert sorted(m.op for m in merges) == ["add", "mul"]
    assert all(m.path in p.items["net/block"].children for m in merges)
    source = to_dot(report)
    assert re.search(r'merge_\d+ \[label="×".*shape=circle', source)
    assert re.search(r'merge_\d+ \[label="\+".*shape=circle', source)
    assert "circle: outputs meeting in plain JAX" in source  # the legend says what they are
    # Collapsed (--depth 0): the merges are inside the block's box, and no merge node is drawn.
    assert "merge_" not in to_dot(report, depth=0)


def test_gpt2_residuals_and_the_folded_double_border():
    r = blox_inspect.summarize_loaded(load_model("examples/gpt2.py"), xla=False)
    source = to_dot(r)
    # The block's residual adds: drop_1 feeds a merge, which feeds ln_2 (no drop -> ln_2 edge any more).
    p = plan(r)
    edges = {(e.src, e.dst) for e in p.edges}
    adds = [i.path for i in p.items.values() if i.kind == "merge" and i.op == "add" and "/h/0#" in i.path]
    assert len(adds) == 2
    assert ("gpt2/transformer/h/0/drop_1", adds[0]) in edges and (adds[0], "gpt2/transformer/h/0/ln_2") in edges
    assert ("gpt2/transformer/drop", "gpt2/transformer/h/0/ln_2") not in edges
    # The legend promises a double border for folded blocks: a cluster drawn right around the folded one.
    assert "double border: identical blocks folded" in source
    assert re.search(r'subgraph "cluster_fold_gpt2/transformer/h/0" \{\s*color="#555555" label=""', source)
    assert "rounded,filled,bold" not in source


ENGINE = _layout.find_engine()


@pytest.mark.skipif(ENGINE is None, reason="no Graphviz layout engine (dot or graphviz-pure)")
def test_dpi_sets_png_resolution_and_gpt2_svg_fits_1600px(tmp_path):
    sizes = {}
    for dpi in (72, 144):
        out = tmp_path / f"g{dpi}.png"
        assert cli.main(["graph", "tests/blox_inspect/models/mlp.py", "--dpi", str(dpi), "-o", str(out)]) == 0
        sizes[dpi] = struct.unpack(">II", out.read_bytes()[16:24])
    assert 1.9 < sizes[144][0] / sizes[72][0] < 2.1
    with pytest.raises(SystemExit) as bad:  # argparse's own error, exit 2
        cli.main(["graph", "tests/blox_inspect/models/mlp.py", "--dpi", "0", "-o", str(tmp_path / "x.png")])
    assert bad.value.code == 2
    svg = tmp_path / "gpt2.svg"
    assert cli.main(["graph", "examples/gpt2.py", "-o", str(svg)]) == 0
    width_pt = float(re.search(r'<svg width="([\d.]+)pt"', svg.read_text()).group(1))
    assert width_pt * 96 / 72 <= 1600  # CSS pixels in a browser window
