"""What `blox-inspect graph` draws: folding, --depth, --focus, edges, colours; the SVG it produces."""

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import graph_reports as gr
import pytest

from blox_inspect import InspectError
from blox_inspect.analysis.diagram import plan
from blox_inspect.analysis.folds import find_folds
from blox_inspect.renderers import _layout
from blox_inspect.renderers.graphviz import build_graph, to_dot

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


def _edges(p):
    return {(e.src, e.dst): [str(t) for t in e.tensors] for e in p.edges}


def _svg(source: str) -> bytes:
    engine = _layout.find_engine()
    if engine is None:
        pytest.skip("no Graphviz layout engine (dot or graphviz-pure) installed")
    return _layout.layout(engine, source, "svg", "test.svg")


def _svg_names(svg: bytes) -> set[str]:
    """Module paths named by the SVG: node/cluster <title>s and the first line of tooltips."""
    root = ET.fromstring(svg)
    names = {t.text.removeprefix("cluster_") for t in root.iter(SVG + "title") if t.text}
    names |= {
        a.get(XLINK + "title").split("\n")[0].split(",")[0] for a in root.iter(SVG + "a") if a.get(XLINK + "title")
    }
    return names


def test_tiny_plan_nests_clusters_and_draws_io_and_shared_once():
    p = plan(gr.tiny())
    assert p.top == "net" and p.items["net"].cluster and p.items["net/enc"].cluster
    assert p.items["net"].children == ["net/enc", "net/proj", "net/head"]
    assert [i.path for i in p.boxes() if i.kind == "module"] == ["net/enc/l1", "net/enc/l2", "net/proj", "net/head"]
    assert p.io == ["<input:0>", "<output:0>"]
    # proj is called twice but is one box; its two calls' edges into head merge into one drawn edge.
    assert _edges(p) == {
        ("<input:0>", "net/enc/l1"): ["float32[4,8]"],
        ("net/enc/l1", "net/enc/l2"): ["float32[4,16]"],
        ("net/enc/l2", "net/proj"): ["float32[4,8]"],
        ("<input:0>", "net/proj"): ["float32[4,8]"],
        ("net/proj", "net/head"): ["float32[4,8]"],
        ("net/head", "<output:0>"): ["float32[4,2]"],
    }


def test_depth_collapses_and_reattaches_edges_deduplicated():
    p = plan(gr.tiny(), depth=1)
    enc = p.items["net/enc"]
    assert not enc.cluster and enc.hidden == 2 and enc.params == 280
    assert "net/enc/l1" not in p.items
    # input->l1 and l1->l2 (now internal) are re-attached to / dropped at the collapsed box.
    assert _edges(p)[("<input:0>", "net/enc")] == ["float32[4,8]"]
    assert ("net/enc", "net/enc") not in _edges(p)
    whole = plan(gr.tiny(), depth=0)
    assert [i.path for i in whole.boxes()] == ["net", "<input:0>", "<output:0>"]
    assert _edges(whole) == {("<input:0>", "net"): ["float32[4,8]"], ("net", "<output:0>"): ["float32[4,2]"]}


def test_nested_edges_join_through_cluster_ports_into_box_to_box_flow():
    r = gr.nested(n_blocks=3)
    x = ["float32[4,16]"]
    assert _edges(plan(r, expand=True)) == {
        ("<input:0>", "lm/wte"): ["int32[4]"],
        ("lm/wte", "lm/h/0/ln"): x, ("lm/h/0/ln", "lm/h/0/attn/q"): x, ("lm/h/0/attn/q", "lm/h/0/attn/o"): x,
        ("lm/h/0/attn/o", "lm/h/1/ln"): x, ("lm/wte", "lm/h/1/ln"): x,  # h/0's output: attn + residual
        ("lm/h/1/ln", "lm/h/1/attn/q"): x, ("lm/h/1/attn/q", "lm/h/1/attn/o"): x,
        ("lm/h/1/attn/o", "lm/h/2/ln"): x, ("lm/h/0/attn/o", "lm/h/2/ln"): x, ("lm/wte", "lm/h/2/ln"): x,
        ("lm/h/2/ln", "lm/h/2/attn/q"): x, ("lm/h/2/attn/q", "lm/h/2/attn/o"): x,
        ("lm/h/2/attn/o", "lm/ln_f"): x, ("lm/h/1/attn/o", "lm/ln_f"): x, ("lm/h/0/attn/o", "lm/ln_f"): x,
        ("lm/wte", "lm/ln_f"): x, ("lm/ln_f", "<output:0>"): x,
    }  # fmt: skip
    # Folded: one block drawn; flow between its copies is left to the xN mark; flow out of the last copy stays.
    assert _edges(plan(r)) == {
        ("<input:0>", "lm/wte"): ["int32[4]"],
        ("lm/wte", "lm/h/0/ln"): x, ("lm/h/0/ln", "lm/h/0/attn/q"): x, ("lm/h/0/attn/q", "lm/h/0/attn/o"): x,
        ("lm/h/0/attn/o", "lm/ln_f"): x, ("lm/wte", "lm/ln_f"): x, ("lm/ln_f", "<output:0>"): x,
    }  # fmt: skip
    assert _edges(plan(r, depth=1)) == {
        ("<input:0>", "lm/wte"): ["int32[4]"],
        ("lm/wte", "lm/h/0"): x,
        ("lm/h/0", "lm/ln_f"): x,
        ("lm/ln_f", "<output:0>"): x,
    }  # fmt: skip  (the residual now runs inside the block boxes)
    assert _edges(plan(r, depth=0)) == {("<input:0>", "lm"): ["int32[4]"], ("lm", "<output:0>"): x}


def test_identical_numbered_blocks_fold_into_one_marked_run():
    r = gr.gpt2(n_layer=48, d=64, vocab=100, seq=8)
    folds = find_folds(r)
    fold = folds["gpt2/h/0"]
    assert fold.members == [f"gpt2/h/{i}" for i in range(48)] and fold.label == "h/0..h/47"
    p = plan(r, depth=1)
    h = p.items["gpt2/h/0"]
    assert h.times == 48 and not h.cluster
    assert h.params == sum(r.module(f"gpt2/h/{i}").params for i in range(48))
    assert not any(k.startswith("gpt2/h/1") for k in p.items)
    edges = _edges(p)
    assert ("gpt2/drop", "gpt2/h/0") in edges and ("gpt2/h/0", "gpt2/ln_f") in edges
    assert ("gpt2/h/0", "gpt2/h/0") not in edges
    # Opened up, the run is the first block's cluster; block-to-block edges are not drawn back into it.
    full = plan(r)
    assert full.items["gpt2/h/0"].cluster and full.items["gpt2/h/0"].times == 48
    assert ("gpt2/h/0/mlp/c_proj", "gpt2/ln_f") in _edges(full)  # h/47's output, drawn from the first block
    assert ("gpt2/h/0/mlp/c_proj", "gpt2/h/0/ln_1") not in _edges(full)
    assert ("gpt2/drop", "gpt2/h/0/ln_1") in _edges(full)


def test_expand_draws_every_block():
    p = plan(gr.gpt2(n_layer=3, d=64, vocab=100, seq=8), depth=1, expand=True)
    assert [p.items[f"gpt2/h/{i}"].times for i in range(3)] == [1, 1, 1]
    assert ("gpt2/h/0", "gpt2/h/1") in _edges(p) and ("gpt2/h/1", "gpt2/h/2") in _edges(p)


def test_parallel_lookalikes_and_unequal_blocks_do_not_fold():
    r = gr.llama(n_layers=3, d=64, hidden=128, heads=4, kv_heads=4, vocab=100, seq=8)
    folds = find_folds(r)
    # q, k, v are identical Linears side by side (all fed by attn_norm): not a run. gate/up likewise.
    assert "llama/layers/0/attn/q" not in folds and "llama/layers/0/mlp/gate" not in folds
    assert folds["llama/layers/2"].members == [f"llama/layers/{i}" for i in range(3)]
    res = find_folds(gr.resnet50())
    # A stage's first block has a downsample, so only the blocks after it fold.
    assert "resnet/layer1/0" not in res and res["resnet/layer1/1"].members == ["resnet/layer1/1", "resnet/layer1/2"]
    assert res["resnet/layer3/1"].label == "1..5"


def test_named_lookalikes_never_fold_and_prefixed_numbers_fold_only_when_chained():
    b = gr.ReportBuilder("net", "Net", inputs=[((2, 4), "float32")])
    for name in ("a", "b", "c", "block1", "block2", "block3", "bn1", "bn2"):
        gr.linear(b, f"net/{name}", 4, 4, 2)
    chain = ["<input:0>", "net/a", "net/b", "net/c", "net/block1", "net/block2", "net/block3", "net/bn1", "net/bn2"]
    for src, dst in zip(chain, chain[1:]):
        b.edge(src, dst, (2, 4))
    assert {f.label for f in find_folds(b.build()).values()} == {"block1..block3", "bn1..bn2"}
    b.edges = [e for e in b.edges if e.dst != "net/bn2"]  # bn1 and bn2 no longer chained (a conv between)
    b.edge("net/bn1", "<output:0>", (2, 4))
    b.edge("<input:0>", "net/bn2", (2, 4))
    assert {f.label for f in find_folds(b.build()).values()} == {"block1..block3"}


def test_focus_draws_subtree_with_boundary_edges():
    r = gr.gpt2(n_layer=4, d=64, vocab=100, seq=8)
    p = plan(r, focus="gpt2/h/2")
    assert p.top == "gpt2/h/2" and p.items["gpt2/h/2"].times == 1
    assert "gpt2/h/1" not in p.items and "gpt2/ln_f" not in p.items
    # Outside endpoints are the outside modules where they branch off, deduplicated.
    assert p.io == ["<outside:gpt2/h/1>", "<outside:gpt2/h/3>"]
    assert ("<outside:gpt2/h/1>", "gpt2/h/2/ln_1") in _edges(p) and ("<outside:gpt2/h/1>", "gpt2/h/2/ln_2") in _edges(p)
    assert ("gpt2/h/2/mlp/c_proj", "<outside:gpt2/h/3>") in _edges(p)
    # Paths may leave out the root's name.
    assert plan(r, focus="h/2", depth=1).top == "gpt2/h/2"
    first = plan(r, focus="gpt2/wte")
    assert first.io == ["<input:0>", "<outside:gpt2/drop>", "<outside:gpt2/ln_f>", "<output:0>"]


def test_unknown_focus_suggests_nearest_paths():
    with pytest.raises(InspectError, match=r"--focus 'gpt2/h/2/atn': no module .* Nearest: gpt2/h/2/attn"):
        plan(gr.gpt2(n_layer=4, d=64, vocab=100, seq=8), focus="gpt2/h/2/atn")


def test_bad_options_are_errors():
    r = gr.tiny()
    with pytest.raises(InspectError, match=r"--depth -1: expected 0 or more"):
        plan(r, depth=-1)
    with pytest.raises(InspectError, match=r"--rankdir 'XY': expected one of TB, LR, BT, RL"):
        to_dot(r, rankdir="XY")
    with pytest.raises(InspectError, match=r"--color 'size': expected one of type, params, flops"):
        to_dot(r, color="size")


def test_dot_labels_show_type_config_params_flops_shapes_and_marks():
    source = to_dot(gr.gpt2(n_layer=4, d=64, vocab=100, seq=8), depth=1, rankdir="LR")
    assert "rankdir=LR" in source
    box = next(line for line in source.splitlines() if line.strip().startswith('"gpt2/h/0"'))
    assert "h/0..h/3</b> &#215;4" in box and "Block" in box and "n_head=12" in box and "peripheries=2" in box
    assert "params 4 &#215; 50.0K = 199.9K" in box and "FLOPs" in box
    wte = next(line for line in source.splitlines() if line.strip().startswith('"gpt2/wte"'))
    assert "shared</b>: 2 calls" in wte and "penwidth=2" in wte
    assert 'label="i32[1,8]"' in source  # edges carry dtype and shape
    assert "input 0" in source and "output 0" in source
    assert "colour: module type" in source and "LayerNorm" in source


def test_color_by_params_uses_a_scale_with_a_legend():
    source = to_dot(gr.llama(n_layers=2, d=64, hidden=128, heads=4, kv_heads=4, vocab=100, seq=8), color="params")
    assert "colour: parameters (box total)" in source
    assert "#993404" in source  # the darkest bin is used by the largest box
    assert "up to 169 params" in source
    assert "3.1K to 8.2K params" in source
    assert "colour: FLOPs (box total)" in to_dot(gr.tiny(), color="flops")


def test_cluster_endpoints_attach_with_lhead_and_unsafe_paths_get_ids():
    b = gr.ReportBuilder("net", "Net", inputs=[((2, 4), "float32")])
    b.add("net/odd name:1", "Block")
    gr.linear(b, "net/odd name:1/inner", 4, 4, 2)
    gr.linear(b, "net/out", 4, 4, 2)
    b.edge("<input:0>", "net/odd name:1", (2, 4))  # an edge into a container drawn as a cluster
    b.edge("net/odd name:1", "net/out", (2, 4))
    source = to_dot(b.build())
    assert re.search(r"input_0 -> m\d+ \[label=\"f32\[2,4\]\" lhead=cluster_m\d+\]", source)
    assert 'tooltip="net/odd name:1' in source


def test_svg_is_xml_and_names_every_module_or_its_representative():
    r = gr.gpt2(n_layer=6, d=64, vocab=100, seq=8)
    names = _svg_names(_svg(to_dot(r)))
    folds = find_folds(r)
    for m in r.modules:
        # A module inside block h/i (i > 0) is drawn as the same place in h/0.
        rep = m.path
        for member, fold in folds.items():
            if rep == member or rep.startswith(member + "/"):
                rep = fold.rep + rep[len(member) :]
        assert rep in names, m.path
    svg = _svg(to_dot(r))
    assert b"<image" not in svg and b"@import" not in svg and b"url(" not in svg  # self-contained
    expanded = _svg_names(_svg(to_dot(r, expand=True)))
    assert {m.path for m in r.modules} <= expanded


def test_folded_70b_renders_svg_quickly_enough_to_be_usable():
    r = gr.llama()  # 80 layers, 964 modules
    graph = build_graph(r)
    assert len(graph.body) < 200  # the fold keeps the drawing small
    root = ET.fromstring(_svg(graph.source))
    assert root.tag == SVG + "svg"
    texts = "".join(t.text or "" for t in root.iter(SVG + "text"))
    assert "layers/0..layers/79" in texts and "×80" in texts


@pytest.mark.skipif(
    not any(shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome")),
    reason="headless Chromium is not installed (looked for chromium, chromium-browser, google-chrome on PATH)",
)
def test_svg_renders_in_headless_chromium(tmp_path):
    browser = next(shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c))
    svg = tmp_path / "tiny.svg"
    svg.write_bytes(_svg(to_dot(gr.tiny())))
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
    ]  # fmt: skip
    dom = subprocess.run([browser, *flags, "--dump-dom", svg.as_uri()], capture_output=True, timeout=60, text=True)
    assert dom.returncode == 0, dom.stderr
    assert "<svg" in dom.stdout and "net/enc" in dom.stdout and "parsererror" not in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=800,900", svg.as_uri()],
        capture_output=True,
        timeout=60,
    )
    assert shot.exists() and os.path.getsize(shot) > 1000


def test_blocks_fold_although_their_config_names_themselves_and_labels_hide_module_references():
    b = gr.ReportBuilder("net", "Net", inputs=[((2, 4), "float32")])
    b.add("net/rng", "Rng")
    for i in range(3):
        b.add(f"net/h/{i}", "Block", {"g": f"Graph('net/h/{i}' -> Block)", "rng": "net/rng", "width": 4})
        gr.linear(b, f"net/h/{i}/fc", 4, 4, 2)
    r = b.build()
    assert find_folds(r)["net/h/2"].members == ["net/h/0", "net/h/1", "net/h/2"]
    box = next(ln for ln in to_dot(r, depth=1).splitlines() if ln.strip().startswith('"net/h/0"'))
    assert "width=4" in box and "Graph(" not in box and "rng=" not in box


def test_a_module_called_twice_is_marked_shared_with_its_methods():
    from blox_inspect.report.model import CallInfo

    r = gr.tiny()
    proj = r.module("net/proj")
    proj.shared = False  # bound once, but called twice: still one box with several edges, marked shared
    spec = r.inputs[0]
    proj.call_info = [CallInfo([spec], [spec], "__call__"), CallInfo([spec], [spec], "attend")]
    box = next(ln for ln in to_dot(r).splitlines() if ln.strip().startswith('"net/proj"'))
    assert "<b>shared</b>: 2 calls (__call__, attend)" in box and "penwidth=2" in box


def test_the_return_edge_into_a_tied_embedding_does_not_constrain_the_layout():
    source = to_dot(gr.gpt2(n_layer=2, d=64, vocab=100, seq=8), depth=1)
    back = next(ln for ln in source.splitlines() if '"gpt2/ln_f" -> "gpt2/wte"' in ln)
    assert "constraint=false" in back
    first = next(ln for ln in source.splitlines() if 'input_0 -> "gpt2/wte"' in ln)
    assert "constraint" not in first
