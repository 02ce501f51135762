import jax
import jax.numpy as jnp
import pytest

import blox as bx


def test_child_paths_and_navigation():
    graph = bx.Graph("net")
    mlp = graph.child("mlp")
    hidden = mlp / "hidden"
    assert mlp.path == ("net", "mlp")
    assert hidden.path == ("net", "mlp", "hidden")
    assert hidden.parent is mlp and mlp.parent is graph and graph.parent is None
    assert hidden.root is graph and graph.root is graph
    assert graph.module is None and hidden.module is None


def test_names_may_hold_any_character():
    graph = bx.Graph("n/et")
    node = graph / "a/b" / "with space" / "ünï ☃" / "back\\slash"
    assert node.path == ("n/et", "a/b", "with space", "ünï ☃", "back\\slash")
    assert bx.parse_path(bx.path_str(node.path)) == node.path
    assert graph.find(node.path) is node


def test_walk_yields_bound_modules_in_creation_order():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    outer = graph / "outer"
    late = bx.Linear(graph / "z_late", 2, rng)  # created after 'outer' but before its children
    inner = bx.Linear(outer / "inner", 3, rng)
    seq = bx.Sequential(outer, [inner])
    walked = list(graph.walk())
    assert [p for p, _ in walked] == [("net", "rng"), ("net", "outer"), ("net", "z_late"), ("net", "outer", "inner")]
    assert [m for _, m in walked] == [rng, seq, late, inner]
    assert seq.graph.module is seq


def test_duplicate_child_is_an_error():
    graph = bx.Graph("net")
    graph.child("mlp")
    with pytest.raises(ValueError, match=r"net: a child named 'mlp' already exists.*pick another name"):
        graph / "mlp"


def test_module_cannot_bind_to_root():
    with pytest.raises(bx.GraphError, match=r"net: cannot bind Linear to the root node.*graph.child\('name'\)"):
        bx.Linear(bx.Graph("net"), 3)


def test_module_cannot_bind_to_an_occupied_node():
    node = bx.Graph("net") / "a"
    bx.LayerNorm(node)
    with pytest.raises(
        bx.GraphError, match=r"net/a: node already holds LayerNorm; cannot also bind RMSNorm.*new child node"
    ):
        bx.RMSNorm(node)


def test_failed_constructor_leaves_its_node_free():
    # Regression: a constructor raising after binding used to leave the node occupied.
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    node = graph / "drop"
    with pytest.raises(ValueError, match=r"net/drop \(Dropout\): rate must be in \[0, 1\), got 1.5"):
        bx.Dropout(node, 1.5, rng)
    assert node.module is None
    drop = bx.Dropout(node, 0.5, rng)
    assert node.module is drop


def test_graph_name_must_be_str():
    with pytest.raises(TypeError, match="Graph names must be str"):
        bx.Graph("net") / 3


def test_module_config_records_explicit_arguments():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    lin = bx.Linear(graph / "out", 32, rng, use_bias=False)
    assert lin.config == {"output_size": 32, "rng": rng, "use_bias": False}
    assert repr(lin) == "Linear(output_size=32, rng=<Rng net/rng>, use_bias=False) at 'net/out'"
    ln = bx.LayerNorm(graph / "ln", epsilon=1e-3)
    assert ln.config == {"epsilon": 1e-3}
    assert lin.graph.path == lin.path == ("net", "out") and lin.param_path("kernel") == ("net", "out", "kernel")


def test_module_first_argument_must_be_a_graph():
    with pytest.raises(TypeError, match="first argument must be a blox Graph node"):
        bx.LayerNorm("net/ln")


def test_every_call_runs_in_a_named_scope_that_spells_its_path_once():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    node = graph / "mlp"
    mlp = bx.Sequential(node, [bx.Linear(node / "l/1", 4, rng), jax.nn.relu])
    _, params = mlp(rng.seed(bx.Params(), 0), jnp.ones((2, 3)))
    jaxpr = jax.make_jaxpr(lambda p, x: mlp(p, x)[0])(params, jnp.ones((2, 3)))
    stacks = {tuple(s.name for s in e.source_info.name_stack.stack) for e in jaxpr.jaxpr.eqns}
    assert ("net/mlp", "l\\/1") in stacks  # the dot_general of the Linear: its path relative to the caller
    assert ("net/mlp",) in stacks  # relu, outside the Linear
