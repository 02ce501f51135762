import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _fill_params import filled

import blox as bx

L = 3


def randn(seed, shape):
    return np.random.RandomState(seed).normal(size=shape).astype(np.float32)


def block_fn(rng):
    return lambda node: bx.TransformerBlock(node, 2, 4, 16, rng, num_kv_heads=1, model_axis="model")


def scanned():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    return bx.ScanBlocks(g / "h", block_fn(rng), num_layers=L), rng.seed(bx.Params(), 0)


def unrolled_from(params):
    """An unrolled loop of the same blocks whose layer i holds slice i of the stacked params."""
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    node = g / "h"
    blocks = [block_fn(rng)(node / str(i)) for i in range(L)]
    data = {}
    for path, p in params.items():
        if path[:3] == ("net", "h", "block"):
            for i in range(L):
                data[("net", "h", str(i), *path[3:])] = bx.Param(p.value[i], p.trainable)
        else:
            data[path] = p

    def run(ps, x, **kw):
        for b in blocks:
            x, ps = b(ps, x, **kw)
        return x, ps

    return run, bx.Params(data)


def test_scan_equals_unrolled_loop_forward_and_gradients():
    stack, p0 = scanned()
    x = randn(1, (2, 5, 8))
    params = filled(stack, p0, x, causal=True)
    run, unrolled = unrolled_from(params)

    def loss(module, ps):
        tr, rest = ps.split()
        return jax.value_and_grad(lambda t: jnp.sum(jnp.sin(module(t.merge(rest), x, causal=True)[0])))(tr)

    got, grads = jax.jit(functools.partial(loss, stack))(params)
    want, want_grads = jax.jit(functools.partial(loss, run))(unrolled)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for path, g in grads.items():
        for i in range(L):
            np.testing.assert_allclose(g.value[i], want_grads[("net", "h", str(i), *path[3:])].value, atol=1e-5)


def test_scan_kv_cache_equals_full_pass():
    stack, p0 = scanned()
    x = randn(2, (1, 5, 8))
    params = filled(stack, p0, x, causal=True)
    full, _ = jax.jit(functools.partial(stack, causal=True))(params, x)
    step = jax.jit(lambda p, xs, c: stack(p, xs, cache=c, causal=True)[0])
    cache = stack.init_cache(1, 5)
    assert cache.key.shape == (L, 1, 5, 1, 4)
    y1, cache = step(params, x[:, :3], cache)
    y2, cache = step(params, x[:, 3:], cache)
    np.testing.assert_allclose(jnp.concatenate([y1, y2], 1), full, atol=1e-5)
    assert cache.index.tolist() == [5] * L


def test_stacked_params_keep_block_paths_and_metadata():
    stack, p0 = scanned()
    params = jax.eval_shape(lambda p: stack(p, jnp.ones((1, 4, 8)), causal=True)[1], p0)
    kernel = params["net/h/block/attn/query/kernel"]
    assert kernel.value.shape == (L, 8, 8)
    assert kernel.sharding == (None, None, "model")
    assert kernel.metadata["scan_layers"] == L
    assert params["net/h/block/ln_1/scale"].value.shape == (L, 8)
    assert {p[:3] for p in params} == {("net", "h", "block"), ("net", "rng", "seed"), ("net", "rng", "counter")}


def test_init_gives_each_layer_its_own_values_and_carries_rng_state():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")

    def make(node):
        return bx.Sequential(node, [bx.Linear(node / "lin", 4, rng), bx.Dropout(node / "drop", 0.5, rng)])

    stack = bx.ScanBlocks(g / "h", make, num_layers=L)
    run = jax.jit(lambda p, x: stack(p, x, is_training=True))
    x = jnp.ones((2, 4))
    _, params = run(rng.seed(bx.Params(), 0), x)
    kernel = params["net/h/block/lin/kernel"].value
    assert kernel.shape == (L, 4, 4)
    assert not np.allclose(kernel[0], kernel[1]) and not np.allclose(kernel[1], kernel[2])
    # Init drew one key for the whole stack, then each layer's dropout drew one more.
    assert int(params["net/rng/counter"].value) == 1 + L
    _, again = run(params, x)
    assert int(again["net/rng/counter"].value) == 1 + 2 * L
    np.testing.assert_array_equal(again["net/h/block/lin/kernel"].value, kernel)


def test_scan_errors_name_the_module_and_shapes():
    stack, p0 = scanned()
    x = jnp.ones((1, 4, 8))
    params = filled(stack, p0, x)
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    deeper = bx.ScanBlocks(g / "h", block_fn(rng), num_layers=L + 1)
    with pytest.raises(
        bx.ShapeError,
        match=r"net/h \(ScanBlocks\): param net/h/block/\S+ has leading axis 3 but this stack has num_layers=4",
    ):
        deeper(params, x)
    partial = bx.Params({k: v for k, v in params.items() if k[-2:] != ("out", "bias")})
    with pytest.raises(
        bx.ParamError,
        match=r"net/h \(ScanBlocks\): the block created params inside the scan \(net/h/block/attn/out/bias\)",
    ):
        stack(partial, x)
    with pytest.raises(
        ValueError, match=r"make_block\(node\) must return a blox Module built on the node it is given \(net/s/block\)"
    ):
        bx.ScanBlocks(g / "s", lambda node: bx.Linear(g / "elsewhere", 3), num_layers=2)


def test_a_block_without_params_spends_no_init_key():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    stack = bx.ScanBlocks(g / "h", lambda node: bx.Dropout(node, 0.5, rng), num_layers=L)
    y, params = jax.jit(lambda p, x: stack(p, x, is_training=False))(rng.seed(bx.Params(), 0), jnp.ones(3))
    np.testing.assert_array_equal(y, np.ones(3))
    assert int(params["net/rng/counter"].value) == 0 and len(params) == 2


def test_stacked_sharding_metadata_turns_into_named_shardings():
    stack, p0 = scanned()
    params = jax.eval_shape(lambda p: stack(p, jnp.ones((1, 4, 8)), causal=True)[1], p0)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:8]).reshape(4, 2), ("data", "model"))
    shardings = bx.param_shardings(params, mesh)
    P = jax.sharding.PartitionSpec
    assert shardings["net/h/block/attn/query/kernel"].value.spec == P(None, None, "model")
    assert shardings["net/h/block/mlp/proj/kernel"].value.spec == P(None, "model", None)
    assert shardings["net/h/block/ln_1/scale"].value.spec == P()
