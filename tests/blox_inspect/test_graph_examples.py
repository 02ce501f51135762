"""Diagrams of the example models, end to end: analysis -> Report -> DOT -> SVG."""

import pathlib
import xml.etree.ElementTree as ET

import pytest

import blox_inspect
from blox_inspect import longest_path, topological_order
from blox_inspect.analysis.diagram import plan
from blox_inspect.analysis.folds import find_folds
from blox_inspect.analysis.summary import summarize_loaded
from blox_inspect.cli import main
from blox_inspect.load.model_file import load_model
from blox_inspect.renderers import _layout
from blox_inspect.renderers.graphviz import to_dot

REPO = pathlib.Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


def _report(spec: str):
    return summarize_loaded(load_model(str(REPO / spec)), xla=False)


@pytest.fixture(scope="module")
def gpt2():
    return _report("examples/gpt2.py")


def _titles(source: str) -> set[str]:
    svg = _layout.layout(_layout.find_engine(), source, "svg", "test.svg")
    return {t.text.removeprefix("cluster_") for t in ET.fromstring(svg).iter(SVG + "title") if t.text}


def test_gpt2_svg_names_every_module_or_its_folded_representative(gpt2):
    folds = find_folds(gpt2)
    assert {f.label for f in folds.values()} == {"h/0..h/11"}
    titles = _titles(to_dot(gpt2))
    for m in gpt2.modules:
        rep = m.path
        for member, fold in folds.items():
            if rep == member or rep.startswith(member + "/"):
                rep = fold.rep + rep[len(member) :]
        assert rep in titles, m.path
    assert {m.path for m in gpt2.modules} <= _titles(to_dot(gpt2, expand=True))


def test_gpt2_drawing_shows_the_tied_embedding_once_and_the_folded_blocks(gpt2):
    p = plan(gpt2)
    wte = p.items["gpt2/transformer/wte"]
    assert wte.module.calls == 2 and not wte.cluster
    edges = {(e.src, e.dst) for e in p.edges}
    # One box, two roles: embedding the tokens and producing the logits (attend).
    assert ("<input:0>", "gpt2/transformer/wte") in edges and ("gpt2/transformer/wte", "<output:0>") in edges
    assert ("gpt2/transformer/ln_f", "gpt2/transformer/wte") in edges
    block = p.items["gpt2/transformer/h/0"]
    assert block.cluster and block.times == 12 and block.params == 12 * gpt2.module("gpt2/transformer/h/0").params
    source = to_dot(gpt2)
    assert "h/0..h/11</b> &#215;12" in source and "2 calls (__call__, attend)" in source
    assert 'label="f32[1,1024,768]"' in source


def test_gpt2_dataflow_graph_runs_from_tokens_to_logits(gpt2):
    g = blox_inspect.to_networkx(gpt2, depth=1)  # the blocks as boxes
    order = topological_order(g)
    assert order.index("gpt2/transformer/h/0") < order.index("gpt2/transformer/h/11") < order.index("<output:0>")
    path = longest_path(g)
    assert path[0] == "<input:0>" and path[-1] == "<output:0>"
    assert [f"gpt2/transformer/h/{i}" for i in range(12)] == [n for n in path if "/h/" in n]


def test_resnet50_folds_the_identical_bottlenecks_of_each_stage(tmp_path):
    r = _report("examples/resnet50.py")
    labels = sorted({f.label for f in find_folds(r).values()})
    assert labels == ["block1..block2", "block1..block3", "block1..block5"]
    p = plan(r, depth=2)
    stage3 = p.items["net/resnet50/stage3"]
    assert stage3.cluster and [p.items[c].times for c in stage3.children] == [1, 5]
    assert ("net/resnet50/stage3/block0", "net/resnet50/stage3/block1") in {(e.src, e.dst) for e in p.edges}
    saved = tmp_path / "resnet.json"
    saved.write_text(r.to_json())
    out = tmp_path / "resnet.svg"
    assert main(["graph", "--load", str(saved), "--depth", "2", "--color", "flops", "-o", str(out)]) == 0
    assert "block1..block5" in out.read_text()


def test_llama_focus_on_one_layer_shows_its_boundary(tmp_path):
    out = tmp_path / "layer.dot"
    assert main(["graph", str(REPO / "examples/llama.py"), "--focus", "model/layers/1", "-o", str(out)]) == 0
    source = out.read_text()
    assert "outside: llama/model/layers/0" in source and "outside: llama/model/norm" in source
    assert '"llama/model/layers/1/attn/query"' in source and "layers/0/attn" not in source.replace("outside: ", "")
