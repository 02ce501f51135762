import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _fill_params import filled

import blox as bx


def randn(seed, shape):
    return np.random.RandomState(seed).normal(size=shape).astype(np.float32)


def sub(params, prefix):
    """The weights under ``prefix`` as a plain dict keyed by the rest of the path."""
    n = len(prefix)
    return {bx.path_str(k)[n:]: p.value for k, p in params.items() if bx.path_str(k).startswith(prefix)}


def ref_rope(x, pos):
    half = x.shape[-1] // 2
    theta = 10000.0 ** (-np.arange(half) / half)
    z = (x[..., :half] + 1j * x[..., half:]) * jnp.exp(1j * pos[:, None, None] * theta)
    return jnp.concatenate([z.real, z.imag], axis=-1).astype(x.dtype)


@jax.numpy_rank_promotion("allow")
def ref_block(w, x, heads, kv_heads, head_size, norm, mlp, rope, bias, post=False, causal=True):
    """Plain-JAX pre-norm (or post-norm) block with causal (or full) attention."""

    def dense(name, h):
        return h @ w[f"{name}/kernel"] + (w[f"{name}/bias"] if bias else 0.0)

    def normalise(name, h):
        if norm == "rms":
            return h / jnp.sqrt(jnp.mean(h**2, -1, keepdims=True) + 1e-6) * w[f"{name}/scale"]
        mu = jnp.mean(h, -1, keepdims=True)
        var = jnp.mean((h - mu) ** 2, -1, keepdims=True)
        return (h - mu) / jnp.sqrt(var + 1e-5) * w[f"{name}/scale"] + w[f"{name}/bias"]

    b, t, _ = x.shape
    h = x if post else normalise("ln_1", x)
    q = dense("attn/query", h).reshape(b, t, heads, head_size)
    k = dense("attn/key", h).reshape(b, t, kv_heads, head_size)
    v = dense("attn/value", h).reshape(b, t, kv_heads, head_size)
    if rope:
        q, k = ref_rope(q, jnp.arange(t)), ref_rope(k, jnp.arange(t))
    k, v = jnp.repeat(k, heads // kv_heads, 2), jnp.repeat(v, heads // kv_heads, 2)
    logits = jnp.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(head_size)
    if causal:
        logits = jnp.where(jnp.tril(jnp.ones((t, t), bool)), logits, -1e30)
    a = jnp.einsum("bnts,bsnh->btnh", jax.nn.softmax(logits, -1), v).reshape(b, t, heads * head_size)
    x = x + dense("attn/out", a)
    if post:
        x = normalise("ln_1", x)
    h = x if post else normalise("ln_2", x)
    if mlp == "swiglu":
        m = dense("mlp/down", jax.nn.silu(dense("mlp/gate", h)) * dense("mlp/up", h))
    else:
        m = dense("mlp/proj", jax.nn.gelu(dense("mlp/fc", h)))
    return normalise("ln_2", x + m) if post else x + m


CONFIGS = {
    "gpt": dict(heads=4, kv_heads=4, head_size=4, norm="layer", mlp="gelu", rope=False, bias=True),
    "llama": dict(heads=4, kv_heads=2, head_size=4, norm="rms", mlp="swiglu", rope=True, bias=False),
}


def make_block(c, **kw):
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    block = bx.TransformerBlock(
        g / "block",
        c["heads"],
        c["head_size"],
        24,
        rng,
        norm=c["norm"],
        mlp=c["mlp"],
        num_kv_heads=c["kv_heads"],
        rope=c["rope"],
        use_bias=c["bias"],
        **kw,
    )
    return block, rng.seed(bx.Params(), 0)


@pytest.mark.parametrize("name", ["gpt", "llama"])
def test_block_forward_and_gradients_match_reference(name):
    c = CONFIGS[name]
    block, p0 = make_block(c)
    x = randn(1, (2, 5, 12))
    params = filled(block, p0, x, causal=True)
    trainable, rest = params.split()

    def loss(tr):
        y, _ = block(tr.merge(rest), x, causal=True)
        return jnp.sum(jnp.sin(y)), y

    (_, y), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(trainable)
    ref = jax.jit(jax.value_and_grad(lambda w: jnp.sum(jnp.sin(ref_block(w, x, **c)))))
    _, want_grads = ref(sub(params, "net/block/"))
    np.testing.assert_allclose(y, ref_block(sub(params, "net/block/"), x, **c), atol=1e-4)
    got = sub(grads, "net/block/")
    assert set(got) == set(want_grads)
    for k, g in got.items():
        np.testing.assert_allclose(g, want_grads[k], atol=1e-4, err_msg=k)


def test_post_norm_block_matches_reference():
    c = CONFIGS["gpt"]
    block, p0 = make_block(c, norm_position="post")
    x = randn(4, (2, 5, 12))
    params = filled(block, p0, x)
    y, _ = jax.jit(block)(params, x)
    want = ref_block(sub(params, "net/block/"), x, **c, post=True, causal=False)
    np.testing.assert_allclose(y, want, atol=1e-4)
    with pytest.raises(ValueError, match=r"net/b \(TransformerBlock\): norm_position must be 'pre' or 'post'"):
        bx.TransformerBlock(bx.Graph("net") / "b", 2, 4, 8, norm_position="middle")


def test_block_kv_cache_equals_full_pass():
    block, p0 = make_block(CONFIGS["llama"])
    x = randn(2, (1, 6, 12))
    params = filled(block, p0, x, causal=True)
    full, _ = jax.jit(functools.partial(block, causal=True))(params, x)
    step = jax.jit(lambda p, xs, c: block(p, xs, causal=True, cache=c)[0])
    y1, cache = step(params, x[:, :4], block.init_cache(1, 6))
    y2, cache = step(params, x[:, 4:], cache)
    np.testing.assert_allclose(jnp.concatenate([y1, y2], 1), full, atol=1e-5)


def test_mlp_and_swiglu_match_reference():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    mlp = bx.MLP(g / "mlp", 16, rng, output_size=3, activation=jax.nn.relu)
    glu = bx.SwiGLU(g / "glu", 16, rng)
    x = randn(3, (4, 6))
    params = filled(lambda p, x: (None, mlp(p, x)[1]), rng.seed(bx.Params(), 0), x)
    params = filled(lambda p, x: (None, glu(p, x)[1]), params, x)
    y, _ = jax.jit(mlp)(params, x)
    w = {k: np.asarray(v) for k, v in sub(params, "net/mlp/").items()}
    np.testing.assert_allclose(
        y, np.maximum(x @ w["fc/kernel"] + w["fc/bias"], 0) @ w["proj/kernel"] + w["proj/bias"], atol=1e-5
    )
    y, _ = jax.jit(glu)(params, x)
    w = {k: np.asarray(v) for k, v in sub(params, "net/glu/").items()}
    np.testing.assert_allclose(
        y, np.asarray(jax.nn.silu(x @ w["gate/kernel"])) * (x @ w["up/kernel"]) @ w["down/kernel"], atol=1e-5
    )
    assert y.shape == (4, 6) and "net/glu/up/bias" not in params


def test_block_dropout_needs_is_training_and_model_axis_sets_sharding():
    block, p0 = make_block(CONFIGS["gpt"], dropout_rate=0.1, model_axis="model")
    x = jnp.ones((1, 3, 12))
    with pytest.raises(
        ValueError, match=r"net/block \(TransformerBlock\): dropout is on, so the call needs is_training"
    ):
        block(p0, x)
    params = jax.eval_shape(lambda p: block(p, x, is_training=True)[1], p0)
    assert params["net/block/attn/key/kernel"].sharding == (None, "model")
    assert params["net/block/attn/out/kernel"].sharding == ("model", None)
    assert params["net/block/mlp/fc/bias"].sharding == ("model",)
    assert params["net/block/mlp/proj/kernel"].sharding == ("model", None)
    assert "drop_1" in block.graph.children
    with pytest.raises(
        ValueError, match=r"net/b \(TransformerBlock\): norm must be one of \['layer', 'rms'\], got 'batch'"
    ):
        bx.TransformerBlock(bx.Graph("net") / "b", 2, 4, 8, norm="batch")
