"""blox_inspect.analysis.program_text: per-module jaxpr and HLO slices."""

import jax
import jax.numpy as jnp

import blox as bx
from blox_inspect.analysis.program_text import hlo_lines_for, jaxpr_lines_by_module, model_jaxpr_lines
from blox_inspect.load.model_file import LoadedModel


def _mlp():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    node = g / "mlp"
    mlp = bx.Sequential(node, [bx.Linear(node / "l1", 8, rng), jax.nn.relu, bx.Linear(node / "l2", 2, rng)])
    return LoadedModel(model=mlp, inputs=(jax.ShapeDtypeStruct((3, 4), jnp.float32),))


def test_jaxpr_lines_follow_the_name_stack():
    lines = model_jaxpr_lines(_mlp())
    assert set(lines) >= {"net/mlp", "net/mlp/l1", "net/mlp/l2"}
    # each Linear: matmul, bias reshape, add; the parent holds its children's lines plus relu's
    assert [line.split(" = ")[1].split("[")[0].split()[0] for line in lines["net/mlp/l1"]] == [
        "dot_general",
        "reshape",
        "add",
    ]
    assert lines["net/mlp/l1"][0].startswith("a:f32[3,8] = dot_general")
    assert set(lines["net/mlp/l1"]) | set(lines["net/mlp/l2"]) < set(lines["net/mlp"])
    assert any(" max " in line for line in lines["net/mlp"])  # relu, expanded out of its custom_jvp


def test_nested_jit_keeps_the_outer_scope():
    g = bx.Graph("net")
    lin = bx.Linear(g / "out", 2, kernel_init=jax.nn.initializers.ones)
    x = jnp.ones((1, 3))
    params = lin(bx.Params(), x)[1]
    jaxpr = jax.make_jaxpr(lambda p, x: jax.jit(lambda p, x: lin(p, x)[0])(p, x))(params, x)
    assert len(jaxpr_lines_by_module(jaxpr)["net/out"]) == 3


def test_hlo_slices_by_op_name():
    model = _mlp()
    params = model.abstract_params()
    hlo = jax.jit(lambda p, x: model.apply(p, x)[0]).lower(params, *model.abstract_inputs()).compile().as_text()
    l1 = hlo_lines_for(hlo, "net/mlp/l1")
    ops = [line for line in l1 if "op_name=" in line]
    assert ops and all("net/mlp/l1/" in line for line in ops)
    assert all(line.startswith(("%", "ENTRY")) for line in l1 if "op_name=" not in line)  # computation headers
    assert set(ops) <= set(hlo_lines_for(hlo, "net/mlp"))
    assert hlo_lines_for(hlo, "net/ml") == []  # whole names only
