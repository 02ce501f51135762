import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import blox as bx


def _graph():
    graph = bx.Graph("net")
    return graph, bx.Rng(graph / "rng")


def _init(module, *inputs, **kwargs):
    rng = next(m for _, m in module.graph.root.walk() if isinstance(m, bx.Rng))
    return jax.jit(lambda *xs: module(rng.seed(bx.Params(), 0), *xs, **kwargs))(*inputs)


def test_linear_matches_numpy_for_any_leading_axes():
    graph, rng = _graph()
    lin = bx.Linear(graph / "lin", 5, rng, bias_init=jax.nn.initializers.ones)
    x = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4) / 10
    y, params = _init(lin, x)
    k, b = params["net/lin/kernel"].value, params["net/lin/bias"].value
    assert k.shape == (4, 5) and b.shape == (5,)
    np.testing.assert_allclose(y, x @ np.asarray(k) + np.asarray(b), rtol=1e-5)
    no_bias = bx.Linear(graph / "nb", 5, rng, use_bias=False)
    _, params = _init(no_bias, x)
    assert list(params.subtree("net/nb")) == [("net", "nb", "kernel")]


def test_linear_stores_metadata_and_rejects_scalars():
    graph, rng = _graph()
    lin = bx.Linear(
        graph / "lin", 4, rng, kernel_metadata={"sharding": (None, "model")}, bias_metadata={"sharding": ("model",)}
    )
    params = jax.eval_shape(lambda: lin(rng.seed(bx.Params(), 0), jnp.ones((2, 3)))[1])
    assert params["net/lin/kernel"].sharding == (None, "model") and params["net/lin/bias"].sharding == ("model",)
    with pytest.raises(
        bx.ShapeError, match=r"net/lin \(Linear\): expected an input with at least one axis.*x\[\.\.\., None\]"
    ):
        lin(params, jnp.float32(1.0))


def test_embed_lookup_and_tied_attend():
    graph, rng = _graph()
    emb = bx.Embed(graph / "tok", 10, 4, rng)
    ids = jnp.array([[1, 2, 9]])

    def f(params, ids):
        h, params = emb(params, ids)
        logits, params = emb.attend(params, h)
        return h, logits, params

    h, logits, params = jax.jit(lambda ids: f(rng.seed(bx.Params(), 0), ids))(ids)
    table = np.asarray(params["net/tok/embedding"].value)
    assert list(params.subtree("net/tok")) == [("net", "tok", "embedding")]  # one table, used twice
    np.testing.assert_array_equal(h, table[np.array([[1, 2, 9]])])
    np.testing.assert_allclose(logits, np.asarray(h) @ table.T, rtol=1e-5, atol=1e-7)
    with pytest.raises(
        bx.ShapeError, match=r"net/tok \(Embed\): expected integer ids, got dtype float32.*astype\(jnp.int32\)"
    ):
        emb(params, jnp.ones(2))
    with pytest.raises(
        bx.ShapeError, match=r"net/tok \(Embed.attend\): expected last axis 4, got input shape \(2, 3\)"
    ):
        emb.attend(params, jnp.ones((2, 3)))


def test_sequential_runs_modules_and_functions_and_forwards_flags():
    graph, rng = _graph()
    node = graph / "mlp"
    l1, l2 = bx.Linear(node / "l1", 8, rng), bx.Linear(node / "l2", 2, rng)
    mlp = bx.Sequential(node, [l1, jax.nn.relu, bx.Dropout(node / "drop", 0.5, rng), lambda x: 2 * x, l2])
    x = jnp.linspace(-1, 1, 12).reshape(3, 4)
    y, params = _init(mlp, x, is_training=False)
    p = {k[-2:]: np.asarray(v.value) for k, v in params.subtree("net/mlp").items()}
    h = np.maximum(np.asarray(x) @ p[("l1", "kernel")] + p[("l1", "bias")], 0) * 2
    np.testing.assert_allclose(y, h @ p[("l2", "kernel")] + p[("l2", "bias")], rtol=1e-5, atol=1e-6)
    y_train, after = jax.jit(lambda p, x: mlp(p, x, is_training=True))(params, x)
    assert int(rng.get_counter(after)) == int(rng.get_counter(params)) + 1 and not np.allclose(y_train, y)


def test_dropout_masks_and_rescales_only_in_training():
    graph, rng = _graph()
    drop = bx.Dropout(graph / "drop", 0.25, rng)
    params = rng.seed(bx.Params(), 0)
    x = jnp.ones((1000,))
    y, same = drop(params, x, is_training=False)
    assert y is x and same is params
    y, after = jax.jit(lambda p: drop(p, x, is_training=True))(params)
    kept = np.asarray(y) != 0
    np.testing.assert_allclose(np.asarray(y)[kept], 1 / 0.75, rtol=1e-6)
    assert 0.65 < kept.mean() < 0.85 and int(rng.get_counter(after)) == 1
    with pytest.raises(TypeError, match="is_training"):
        drop(params, x)


def _ref_norm(x, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


def test_layernorm_and_rmsnorm_match_numpy():
    graph, _ = _graph()
    x = np.random.default_rng(0).normal(size=(2, 3, 6)).astype(np.float32)
    ln = bx.LayerNorm(graph / "ln")
    y, params = jax.jit(lambda x: ln(bx.Params(), x))(x)
    np.testing.assert_allclose(y, _ref_norm(x, -1, 1e-5), rtol=1e-4, atol=1e-5)
    assert sorted(k[-1] for k in params) == ["bias", "scale"]
    bare = bx.LayerNorm(graph / "bare", epsilon=1e-3, use_scale=False, use_bias=False)
    y, params = bare(bx.Params(), x)
    assert len(params) == 0
    np.testing.assert_allclose(y, _ref_norm(x, -1, 1e-3), rtol=1e-4, atol=1e-5)
    rms = bx.RMSNorm(graph / "rms")
    y, params = jax.jit(lambda x: rms(bx.Params(), x))(x)
    np.testing.assert_allclose(y, x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-6), rtol=1e-4, atol=1e-5)
    assert list(params) == [("net", "rms", "scale")]


def test_batchnorm_training_and_eval():
    graph, _ = _graph()
    bn = bx.BatchNorm(graph / "bn", momentum=0.8)
    x = np.random.default_rng(1).normal(2.0, 3.0, size=(16, 4)).astype(np.float32)
    y, params = jax.jit(lambda x: bn(bx.Params(), x, is_training=True))(x)
    np.testing.assert_allclose(y, _ref_norm(x, 0, 1e-5), rtol=1e-3, atol=1e-4)
    mean, var = params["net/bn/mean"], params["net/bn/var"]
    assert not mean.trainable and not var.trainable and params["net/bn/scale"].trainable
    np.testing.assert_allclose(mean.value, 0.2 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(var.value, 0.8 + 0.2 * x.var(0), rtol=1e-4)
    y_eval, same = jax.jit(lambda p, x: bn(p, x, is_training=False))(params, x)
    np.testing.assert_allclose(y_eval, (x - 0.2 * x.mean(0)) / np.sqrt(np.asarray(var.value) + 1e-5), rtol=1e-4)
    np.testing.assert_array_equal(same["net/bn/mean"].value, mean.value)


# Sizes and the rng are the only constructor arguments (after graph) allowed to lack a default.
REQUIRED_OK = {"output_size", "num_embeddings", "embedding_size", "rng", "rate", "layers"}


@pytest.mark.parametrize(
    "cls", [bx.Linear, bx.Embed, bx.Sequential, bx.Dropout, bx.LayerNorm, bx.RMSNorm, bx.BatchNorm, bx.Rng]
)
def test_constructor_arguments_have_defaults_except_sizes_and_rng(cls):
    sig = inspect.signature(cls.__init__)
    names = list(sig.parameters)[1:]
    assert names[0] == "graph"
    required = {n for n in names[1:] if sig.parameters[n].default is inspect.Parameter.empty}
    assert required <= REQUIRED_OK
