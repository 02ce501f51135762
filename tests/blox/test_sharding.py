"""Sharding on the 8 fake CPU devices configured in the root conftest.py."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import blox as bx

AUTO = jax.sharding.AxisType.Auto


def _mesh(*axes):
    sizes = {1: (8,), 2: (2, 4)}[len(axes)]
    return jax.make_mesh(sizes, axes, axis_types=(AUTO,) * len(axes))


def _mlp(graph, hidden, rng):
    # Megatron-style: l1 splits its outputs over 'model', l2 splits its inputs.
    node = graph / "mlp"
    l1 = bx.Linear(
        node / "l1", hidden, rng, kernel_metadata={"sharding": (None, "model")}, bias_metadata={"sharding": ("model",)}
    )
    l2 = bx.Linear(node / "l2", 4, rng, use_bias=False, kernel_metadata={"sharding": ("model", None)})
    return l1, l2


def _build(hidden=32):
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    return rng, *_mlp(graph, hidden, rng)


def _forward(l1, l2, params, x):
    h, params = l1(params, x)
    return l2(params, jax.nn.relu(h))


def test_params_are_created_directly_sharded_from_metadata():
    mesh = _mesh("data", "model")
    rng, l1, l2 = _build()
    x = jnp.ones((8, 6))

    def init(x):
        return _forward(l1, l2, rng.seed(bx.Params(), 0), x)[1]

    abstract = jax.eval_shape(init, x)
    shardings = bx.param_shardings(abstract, mesh)
    assert shardings["net/mlp/l1/kernel"].value == NamedSharding(mesh, P(None, "model"))
    assert bx.param_specs(abstract)["net/rng/seed"].value == P()
    params = jax.jit(init, out_shardings=shardings)(x)
    kernel = params["net/mlp/l1/kernel"].value
    assert kernel.sharding.spec == P(None, "model") and kernel.addressable_shards[0].data.shape == (6, 8)
    assert params["net/mlp/l2/kernel"].value.sharding.spec == P("model", None)
    assert params["net/rng/seed"].value.sharding.spec == P()
    np.testing.assert_array_equal(kernel, jax.jit(init)(x)["net/mlp/l1/kernel"].value)  # same values as unsharded


def test_shard_map_data_parallel_matches_unsharded():
    mesh = _mesh("data")
    rng, l1, l2 = _build()
    x = jax.random.normal(jax.random.key(0), (16, 6))
    params = jax.jit(lambda x: _forward(l1, l2, rng.seed(bx.Params(), 0), x)[1])(x).locked()
    trainable, rest = params.split()

    def loss(t, x):
        out, _ = _forward(l1, l2, t.merge(rest), x)
        return jnp.mean(out**2)

    def per_device(t, x):
        # The loss is the global mean; gradients of the replicated params then come back
        # already reduced over 'data' (shard_map transposes the implicit broadcast to a psum).
        return jax.value_and_grad(lambda t: jax.lax.pmean(loss(t, x), "data"))(t)

    sharded = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P("data")), out_specs=P()))
    value, grads = sharded(trainable, x)
    ref_value, ref_grads = jax.jit(jax.value_and_grad(loss))(trainable, x)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_shard_map_tensor_parallel_linear_matches_unsharded():
    mesh = _mesh("model")
    rng, l1, l2 = _build(hidden=32)
    x = jax.random.normal(jax.random.key(0), (4, 6))
    init = lambda x: _forward(l1, l2, rng.seed(bx.Params(), 0), x)[1]
    params = jax.jit(init, out_shardings=bx.param_shardings(jax.eval_shape(init, x), mesh))(x).locked()
    # Inside shard_map each device sees its slice, so it runs a model built with the local
    # width on an identically named graph: same paths, the Params are shared.
    _, local1, local2 = _build(hidden=32 // 8)

    def per_device(params, x):
        partial, _ = _forward(local1, local2, params, x)
        return jax.lax.psum(partial, "model")

    specs = bx.param_specs(params)
    out = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(specs, P()), out_specs=P()))(params, x)
    ref, _ = jax.jit(lambda p, x: _forward(l1, l2, p, x))(params, x)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_batchnorm_axis_name_gives_the_global_mean():
    mesh = _mesh("data")
    bn = bx.BatchNorm(bx.Graph("net") / "bn", momentum=0.0, axis_name="data")
    x = jax.random.normal(jax.random.key(0), (16, 3)) * 2 + jnp.arange(16.0)[:, None]
    params = jax.jit(lambda x: bn(bx.Params(), x, is_training=False)[1])(x)
    train = lambda p, x: bn(p, x, is_training=True)
    y, new = jax.jit(jax.shard_map(train, mesh=mesh, in_specs=(P(), P("data")), out_specs=(P("data"), P())))(params, x)
    np.testing.assert_allclose(new["net/bn/mean"].value, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(new["net/bn/var"].value, x.var(0), rtol=1e-4)
    np.testing.assert_allclose(
        y, (x - x.mean(0, keepdims=True)) / jnp.sqrt(x.var(0, keepdims=True) + 1e-5), rtol=1e-3, atol=1e-4
    )
    # vmap with the same axis name: each lane is one example, the mean is over all lanes.
    y_v, new_v = jax.jit(jax.vmap(train, in_axes=(None, 0), out_axes=(0, None), axis_name="data"))(
        params, x[:, None, :]
    )
    np.testing.assert_allclose(new_v["net/bn/mean"].value, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(y_v[:, 0], y, rtol=1e-4, atol=1e-4)
