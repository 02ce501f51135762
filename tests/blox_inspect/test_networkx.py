"""to_networkx(report) and the dataflow helpers on it."""

import graph_reports as gr
import networkx as nx

import blox_inspect
from blox_inspect.analysis.dataflow import fan_in, fan_out, longest_path, topological_order


def test_nodes_carry_module_attributes_and_edges_their_tensors():
    g = blox_inspect.to_networkx(gr.tiny())
    assert isinstance(g, nx.DiGraph)
    assert g.nodes["net/proj"] == {
        "kind": "module", "type": "Linear", "config": {"features": "8"}, "depth": 1, "parent": "net",
        "params": 64, "flops": 1024, "flops_own": 1024, "shared": True, "calls": 2,
    }  # fmt: skip
    assert g.nodes["<input:0>"] == {"kind": "input", "tensor": "float32[4,8]"}
    assert g.edges["net/proj", "net/head"]["tensors"] == ["float32[4,8]"]  # two calls, one edge
    assert set(g.edges) == {
        ("<input:0>", "net/enc/l1"), ("net/enc/l1", "net/enc/l2"), ("net/enc/l2", "net/proj"),
        ("<input:0>", "net/proj"), ("net/proj", "net/head"), ("net/head", "<output:0>"),
    }  # fmt: skip


def test_order_longest_path_and_fans_match_a_hand_count():
    g = blox_inspect.to_networkx(gr.tiny())
    order = topological_order(g)
    for u, v in g.edges:
        assert order.index(u) < order.index(v)
    assert longest_path(g) == ["<input:0>", "net/enc/l1", "net/enc/l2", "net/proj", "net/head", "<output:0>"]
    assert fan_out(g)["<input:0>"] == 2 and fan_in(g)["net/proj"] == 2 and fan_in(g)["<input:0>"] == 0
    assert next(iter(fan_in(g))) == "net/proj"  # largest first


def test_flops_weighted_longest_path_is_the_critical_path():
    r = gr.llama(n_layers=2, d=64, hidden=128, heads=4, kv_heads=4, vocab=100, seq=8)
    g = blox_inspect.to_networkx(r)
    path = longest_path(g, weight="flops")
    assert "llama/layers/0/attn/q" in path  # q is wider than k and v, so it is on the critical path
    assert "llama/layers/0/attn/k" not in path
    assert path[0] == "<input:0>" and path[-1] == "<output:0>"


def test_depth_collapses_like_the_diagram():
    g = blox_inspect.to_networkx(gr.gpt2(n_layer=3, d=64, vocab=100, seq=8), depth=1)
    assert "gpt2/h/0/ln_1" not in g and "gpt2" not in g
    assert g.has_edge("gpt2/h/0", "gpt2/h/1") and g.has_edge("gpt2/ln_f", "gpt2/wte")
    assert g.edges["gpt2/h/2", "gpt2/ln_f"]["tensors"] == ["float32[1,8,64]"]


def test_a_shared_module_closes_a_cycle_that_is_kept_as_one_step():
    # GPT-2's tied embedding: wte embeds the tokens and later turns ln_f's output into logits.
    g = blox_inspect.to_networkx(gr.gpt2(n_layer=3, d=64, vocab=100, seq=8), depth=1)
    order = topological_order(g)
    assert order == [
        "<input:0>", "gpt2/wpe", "gpt2/wte", "gpt2/drop", "gpt2/h/0", "gpt2/h/1", "gpt2/h/2", "gpt2/ln_f", "<output:0>",
    ]  # fmt: skip
    # The cycle is one step, so the longest chain runs from an input through it to the output.
    assert longest_path(g) == ["<input:0>", *order[2:]]


def test_on_a_summarised_model():
    import jax
    import jax.numpy as jnp

    import blox as bx
    import blox_inspect

    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    node = g / "mlp"
    mlp = bx.Sequential(node, [bx.Linear(node / "l1", 8, rng), jax.nn.relu, bx.Linear(node / "l2", 2, rng)])
    report = blox_inspect.summary(mlp, jax.ShapeDtypeStruct((3, 4), jnp.float32), xla=False)
    dag = blox_inspect.to_networkx(report)
    assert topological_order(dag) == ["<input:0>", "net/rng", "net/mlp/l1", "net/mlp/l2", "<output:0>"]
    assert longest_path(dag) == ["<input:0>", "net/mlp/l1", "net/mlp/l2", "<output:0>"]
    assert dag.edges["net/mlp/l1", "net/mlp/l2"]["tensors"] == ["float32[3,8]"]
    assert dag.nodes["net/mlp/l1"]["params"] == 4 * 8 + 8
