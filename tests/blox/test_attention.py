import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _fill_params import filled

import blox as bx


@functools.partial(jax.jit, static_argnums=(3, 4, 5), static_argnames=("causal",))
@jax.numpy_rank_promotion("allow")
def ref_attention(w, query, kv, num_heads, num_kv_heads, head_size, mask=None, causal=False):
    """Plain-JAX multi-head attention with repeated kv heads (head n reads kv head n // group)."""
    b, t, _ = query.shape
    s = kv.shape[1]
    q = (query @ w["query/kernel"] + w["query/bias"]).reshape(b, t, num_heads, head_size)
    k = (kv @ w["key/kernel"] + w["key/bias"]).reshape(b, s, num_kv_heads, head_size)
    v = (kv @ w["value/kernel"] + w["value/bias"]).reshape(b, s, num_kv_heads, head_size)
    k = jnp.repeat(k, num_heads // num_kv_heads, axis=2)
    v = jnp.repeat(v, num_heads // num_kv_heads, axis=2)
    logits = jnp.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(head_size)
    keep = jnp.ones((b, num_heads, t, s), bool)
    if mask is not None:
        keep = keep & jnp.broadcast_to(mask, keep.shape)
    if causal:
        keep = keep & jnp.tril(jnp.ones((t, s), bool))
    logits = jnp.where(keep, logits, -1e30)
    y = jnp.einsum("bnts,bsnh->btnh", jax.nn.softmax(logits, axis=-1), v).reshape(b, t, num_heads * head_size)
    return y @ w["out/kernel"] + w["out/bias"]


def weights(params, prefix="net/attn/"):
    return {bx.path_str(k)[len(prefix) :]: p.value for k, p in params.items() if bx.path_str(k).startswith(prefix)}


def make(num_heads=4, head_size=8, num_kv_heads=None, **kw):
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    attn = bx.MultiHeadAttention(g / "attn", num_heads, head_size, rng, num_kv_heads=num_kv_heads, **kw)
    return attn, rng.seed(bx.Params(), 0)


def randn(seed, shape):
    return np.random.RandomState(seed).normal(size=shape).astype(np.float32)


def bernoulli(seed, p, shape):
    return np.random.RandomState(seed).uniform(size=shape) < p


def test_self_attention_with_gqa_mask_and_causal_matches_reference():
    attn, p0 = make(num_heads=4, head_size=8, num_kv_heads=2)
    x = randn(1, (2, 6, 16))
    mask = bernoulli(2, 0.7, (2, 1, 6, 6))
    mask[..., 0] = True  # every query keeps one key, so no row is empty
    params = filled(attn, p0, x)
    y, _ = jax.jit(functools.partial(attn, mask=mask, causal=True))(params, x)
    assert y.shape == (2, 6, 16)
    assert params["net/attn/key/kernel"].value.shape == (16, 16)  # 2 kv heads * 8
    want = ref_attention(weights(params), x, x, 4, 2, 8, mask=mask, causal=True)
    np.testing.assert_allclose(y, want, atol=1e-5)


def test_cross_attention_with_other_widths_matches_reference():
    attn, p0 = make(num_heads=2, head_size=4, output_size=5)
    q, kv = randn(1, (3, 4, 6)), randn(2, (3, 7, 10))
    mask = np.arange(7)[None, None, :] < np.array([3, 7, 5])[:, None, None]  # (B, 1, S) padding mask
    params = filled(attn, p0, q, kv)
    y, _ = jax.jit(functools.partial(attn, mask=mask))(params, q, kv)
    assert y.shape == (3, 4, 5)
    want = ref_attention(weights(params), q, kv, 2, 2, 4, mask=mask[:, None])
    np.testing.assert_allclose(y, want, atol=1e-5)


def test_unbatched_inputs_match_batched():
    attn, p0 = make(num_heads=2, head_size=4)
    x = randn(1, (5, 8))
    params = filled(attn, p0, x)
    y1, _ = jax.jit(functools.partial(attn, causal=True))(params, x)
    y2, _ = jax.jit(functools.partial(attn, causal=True))(params, x[None])
    np.testing.assert_allclose(y1, y2[0], atol=1e-6)


def test_gradients_match_reference():
    attn, p0 = make(num_heads=4, head_size=4, num_kv_heads=1)
    x = randn(3, (2, 5, 12))
    params = filled(attn, p0, x)
    trainable, rest = params.split()

    def loss(tr):
        y, _ = attn(tr.merge(rest), x, causal=True)
        return jnp.sum(jnp.sin(y))

    def ref_loss(w):
        return jnp.sum(jnp.sin(ref_attention(w, x, x, 4, 1, 4, causal=True)))

    grads = jax.jit(jax.grad(loss))(trainable)
    want = jax.jit(jax.grad(ref_loss))(weights(params))
    assert set(weights(grads)) == set(want)
    for name, g in weights(grads).items():
        np.testing.assert_allclose(g, want[name], atol=1e-4, err_msg=name)


@pytest.mark.parametrize("rope", [False, True])
def test_kv_cache_decoding_equals_full_pass(rope):
    attn, p0 = make(num_heads=4, head_size=8, num_kv_heads=2, rope=rope)
    x = randn(4, (2, 7, 16))
    params = filled(attn, p0, x)
    full, _ = jax.jit(functools.partial(attn, causal=True))(params, x)
    step = jax.jit(lambda p, xs, c: attn(p, xs, causal=True, cache=c))
    (prefix, cache), _ = step(params, x[:, :3], attn.init_cache(2, 9))
    outs = [prefix]
    for i in range(3, 7):
        (y, cache), _ = step(params, x[:, i : i + 1], cache)
        outs.append(y)
    assert int(cache.index) == 7 and cache.key.shape == (2, 9, 2, 8)
    np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=1e-5)


def test_rope_matches_complex_rotation_and_is_relative():
    x = randn(5, (2, 6, 3, 8))
    pos = jnp.array([[0, 1, 2, 3, 4, 5], [7, 3, 9, 0, 2, 11]])
    y = jax.jit(functools.partial(bx.apply_rope, base=100.0))(x, pos)
    theta = 100.0 ** (-np.arange(4) / 4)
    x = np.asarray(x)
    z = (x[..., :4] + 1j * x[..., 4:]) * np.exp(1j * np.asarray(pos)[..., None, None] * theta)
    np.testing.assert_allclose(y, np.concatenate([z.real, z.imag], axis=-1), atol=1e-5)
    # A query-key score depends only on the distance between positions.
    q, k = randn(6, (1, 1, 1, 8)), randn(7, (1, 1, 1, 8))
    score = jax.jit(lambda i, j: jnp.sum(bx.apply_rope(q, i[None]) * bx.apply_rope(k, j[None])))
    assert float(score(5, 2)) == pytest.approx(float(score(13, 10)), abs=1e-4)


def test_attention_dropout_train_vs_eval():
    attn, p0 = make(num_heads=2, head_size=4, dropout_rate=0.5)
    x = randn(8, (1, 5, 8))
    params = filled(attn, p0, x, is_training=False)
    y_eval, _ = jax.jit(functools.partial(attn, causal=True, is_training=False))(params, x)
    y_train, params2 = jax.jit(functools.partial(attn, causal=True, is_training=True))(params, x)
    assert not np.allclose(y_eval, y_train)
    assert int(params2["net/rng/counter"].value) == int(params["net/rng/counter"].value) + 1
    with pytest.raises(ValueError, match=r"net/attn \(MultiHeadAttention\): dropout_rate=0.5 needs is_training"):
        attn(params, x)
    with pytest.raises(ValueError, match="rope applies to self-attention only"):
        make(rope=True)[0](p0, x, x, is_training=False)


def test_attention_dropout_path_without_drops_matches_fused_path():
    # A vanishing rate keeps every weight, so the spelled-out path must equal jax.nn.dot_product_attention.
    attn, p0 = make(num_heads=4, head_size=4, num_kv_heads=2, dropout_rate=1e-9)
    x = randn(9, (2, 5, 8))
    mask = bernoulli(3, 0.7, (2, 1, 5, 5)) | np.eye(5, dtype=bool)
    params = filled(attn, p0, x, is_training=False)
    y_eval, _ = jax.jit(functools.partial(attn, mask=mask, causal=True, is_training=False))(params, x)
    y_train, _ = jax.jit(functools.partial(attn, mask=mask, causal=True, is_training=True))(params, x)
    np.testing.assert_allclose(y_train, y_eval, atol=1e-5)


def test_sharding_metadata_on_kernels_and_biases():
    col, row = {"sharding": (None, "model")}, {"sharding": ("model", None)}
    attn, p0 = make(qkv_metadata=col, out_metadata=row)
    params = jax.eval_shape(lambda p: attn(p, jnp.ones((1, 2, 8)))[1], p0)
    assert params["net/attn/query/kernel"].sharding == (None, "model")
    assert params["net/attn/value/bias"].sharding == ("model",)
    assert params["net/attn/out/kernel"].sharding == ("model", None)
    assert params["net/attn/out/bias"].sharding == (None,)


def test_mask_of_wrong_shape_is_an_error():
    attn, p0 = make(num_heads=2, head_size=4)
    x = jnp.ones((2, 3, 8))
    with pytest.raises(
        bx.ShapeError,
        match=r"net/attn \(MultiHeadAttention\): mask of shape \(3, 5\) does not broadcast to .* = \(2, 2, 3, 3\)",
    ):
        attn(p0, x, mask=jnp.ones((3, 5), bool))
    with pytest.raises(bx.ShapeError, match=r"expected a boolean mask .* got dtype float32"):
        attn(p0, x, mask=jnp.ones((3, 3)))
    with pytest.raises(bx.ShapeError, match=r"key_length is the cache's max_len"):
        attn(p0, x, mask=jnp.ones((3, 3), bool), cache=attn.init_cache(2, 6))


def test_key_value_mismatches_are_errors():
    attn, p0 = make(num_heads=2, head_size=4)
    params = filled(attn, p0, jnp.ones((2, 3, 8)), jnp.ones((2, 5, 6)))
    with pytest.raises(
        bx.ShapeError,
        match=r"net/attn \(MultiHeadAttention\): key_value has 7 features .* built for 6 \(kernel shape \(6, 8\)\)",
    ):
        attn(params, jnp.ones((2, 3, 8)), jnp.ones((2, 5, 7)))
    with pytest.raises(bx.ShapeError, match=r"query has batch shape \(2,\) .* key_value has \(3,\)"):
        attn(params, jnp.ones((2, 3, 8)), jnp.ones((3, 5, 6)))
    with pytest.raises(
        bx.ShapeError, match=r"expected query shaped \(batch, length, features\) .* got shape \(1, 2, 3, 8\)"
    ):
        attn(params, jnp.ones((1, 2, 3, 8)))


def test_bad_configurations_are_errors():
    with pytest.raises(
        ValueError, match=r"net/attn \(MultiHeadAttention\): num_heads=6 must be a positive multiple of num_kv_heads=4"
    ):
        make(num_heads=6, head_size=4, num_kv_heads=4)
    with pytest.raises(ValueError, match="rope needs an even head_size, got 5"):
        make(head_size=5, rope=True)
    attn, p0 = make(num_heads=2, head_size=4)
    with pytest.raises(bx.ShapeError, match=r"writes 4 positions into a KV cache of length 3"):
        attn(p0, jnp.ones((1, 4, 8)), cache=attn.init_cache(1, 3))
    with pytest.raises(
        bx.ShapeError, match=r"apply_rope: positions of shape \(4,\) do not match x of shape \(1, 3, 2, 4\)"
    ):
        bx.apply_rope(jnp.ones((1, 3, 2, 4)), jnp.arange(4))


def test_head_size_none_is_inferred_from_the_width():
    inferred, p0 = make(num_heads=4, head_size=None, num_kv_heads=2)
    explicit, _ = make(num_heads=4, head_size=4, num_kv_heads=2)
    x = randn(10, (1, 3, 16))
    params = filled(inferred, p0, x)
    assert params["net/attn/key/kernel"].value.shape == (16, 8)
    y1, _ = jax.jit(functools.partial(inferred, causal=True))(params, x)
    y2, _ = jax.jit(functools.partial(explicit, causal=True))(params, x)
    np.testing.assert_allclose(y1, y2, atol=1e-6)
    with pytest.raises(
        bx.ShapeError,
        match=r"net/attn \(MultiHeadAttention\): num_heads=4 does not divide the query width 10 \(query shape \(1, 3, 10\)\)",
    ):
        inferred(p0, jnp.ones((1, 3, 10)))
    with pytest.raises(ValueError, match="init_cache needs the head size"):
        inferred.init_cache(1, 4)
    assert inferred.init_cache(1, 4, head_size=4).key.shape == (1, 4, 2, 4)


def _vars_snapshot(graph):
    return {path: dict(vars(module)) for path, module in graph.walk()}


@pytest.mark.parametrize(
    ("build", "kernel", "shape"),
    [
        (lambda g, rng: bx.MultiHeadAttention(g / "m", 4, None, rng, num_kv_heads=2), "key", (16, 8)),
        (lambda g, rng: bx.MLP(g / "m", 24, rng), "proj", (24, 16)),
        (lambda g, rng: bx.SwiGLU(g / "m", 24, rng), "down", (24, 16)),
        (lambda g, rng: bx.TransformerBlock(g / "m", 4, None, 24, rng, mlp="swiglu"), "mlp/down", (24, 16)),
    ],
    ids=["attention", "mlp", "swiglu", "block"],
)
def test_width_inference_leaves_every_module_unchanged(build, kernel, shape):
    # Regression: inferred widths were once written into the child Linears' output_size during a call.
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    model = build(g, rng)
    before = _vars_snapshot(g)
    y, params = model(rng.seed(bx.Params(), 0), jnp.ones((2, 3, 16)))
    assert y.shape == (2, 3, 16)
    assert params[f"net/m/{kernel}/kernel"].value.shape == shape
    assert _vars_snapshot(g) == before
    assert len(before) > 2  # the snapshot covers the children, not just the parent


def ref_llama3_frequencies(head_size, base, factor, low, high, context):
    """Llama 3.1's frequency rule written out band by band (short wavelengths kept, long ones divided)."""
    out = []
    for i in range(head_size // 2):
        f = base ** (-2.0 * i / head_size)
        wavelength = 2 * np.pi / f
        if wavelength < context / high:
            out.append(f)
        elif wavelength > context / low:
            out.append(f / factor)
        else:
            s = (context / wavelength - low) / (high - low)
            out.append((1 - s) * f / factor + s * f)
    return np.array(out)


def test_rope_llama3_and_linear_scaling_match_reference_frequencies():
    scaling = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    }
    want = ref_llama3_frequencies(32, 500000.0, 8.0, 1.0, 4.0, 64)
    got = bx.rope_frequencies(32, 500000.0, scaling)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # All three bands occur at these sizes, so the test covers each branch.
    plain = bx.rope_frequencies(32, 500000.0)
    assert (got == plain).any() and np.isclose(got, plain / 8).any() and ((got < plain) & (got > plain / 8)).any()
    np.testing.assert_allclose(
        bx.rope_frequencies(8, 100.0, {"type": "linear", "factor": 2.0}), 100.0 ** (-np.arange(4) / 4) / 2
    )
    # apply_rope rotates by position * frequency with the scaled frequencies.
    x = randn(9, (1, 5, 2, 32))
    pos = np.arange(5) * 7
    y = bx.apply_rope(x, pos, 500000.0, scaling)
    z = (x[..., :16] + 1j * x[..., 16:]) * np.exp(1j * pos[:, None, None] * want)
    np.testing.assert_allclose(y, np.concatenate([z.real, z.imag], -1), atol=1e-5)


def test_rope_scaling_errors_name_the_supported_schemes():
    with pytest.raises(ValueError, match=r"rope scaling \{'rope_type': 'yarn', 'factor': 4\.0\} is not supported"):
        bx.rope_frequencies(8, 10000.0, {"rope_type": "yarn", "factor": 4.0})
    with pytest.raises(ValueError, match=r"llama3: factor, low_freq_factor, high_freq_factor"):
        make(num_heads=2, head_size=4, rope=True, rope_scaling={"rope_type": "llama3", "factor": 8.0})
