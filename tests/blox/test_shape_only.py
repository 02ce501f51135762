"""``bx.shape_only``: an init under ``jax.eval_shape`` that stages placeholders, against the plain init."""

import jax
import jax.numpy as jnp
import pytest

import blox as bx


def facts(params: bx.Params) -> dict:
    return {path: (p.value.shape, p.value.dtype, p.trainable, p.metadata) for path, p in params.items()}


def mlp():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    seq = g / "seq"
    model = bx.Sequential(
        seq,
        [
            bx.Linear(seq / "a", 8, rng, param_dtype=jnp.bfloat16),
            bx.LayerNorm(seq / "norm"),
            bx.Linear(seq / "b", 3, rng, use_bias=False, kernel_metadata={"axes": ("in", "out")}),
        ],
    )
    return g, model


def init(g, model, x):
    params = bx.seed_all(g, bx.Params(), 0)
    return model(params, x)


def test_the_params_match_the_real_init_under_eval_shape():
    g, model = mlp()
    x = jax.ShapeDtypeStruct((2, 5), jnp.float32)
    reference = jax.eval_shape(lambda x: init(g, model, x), x)
    with bx.shape_only():
        fast = jax.eval_shape(lambda x: init(g, model, x), x)
    assert facts(fast[1]) == facts(reference[1])
    assert (fast[0].shape, fast[0].dtype) == (reference[0].shape, reference[0].dtype)


def test_an_rng_draw_is_the_seed_and_leaves_the_counter():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    params = rng.seed(bx.Params(), 3)

    def draw(params):
        with bx.shape_only():
            return rng(params)

    key, after = jax.eval_shape(draw, params)
    real_key, real_after = jax.eval_shape(rng, params)
    assert (key.shape, key.dtype) == (real_key.shape, real_key.dtype)
    assert facts(after) == facts(real_after)


def test_a_placeholder_cannot_be_computed():
    g, model = mlp()
    with bx.shape_only(), pytest.raises(bx.ParamError, match=r"shape_only\(\) placeholder .*eval_shape"):
        init(g, model, jnp.ones((2, 5)))  # eager: the placeholder's value is asked for
    g, model = mlp()
    with bx.shape_only(), pytest.raises(Exception, match="blox_shape_only_param"):
        jax.jit(lambda x: init(g, model, x)[0]).lower(jnp.ones((2, 5)))


def test_initializer_errors_still_surface():
    g = bx.Graph("net")
    layer = bx.Linear(g / "l", 4)  # no rng: the default kernel initializer needs a key

    with bx.shape_only(), pytest.raises(bx.ParamError, match="needs a PRNG key"):
        jax.eval_shape(lambda x: layer(bx.Params(), x), jax.ShapeDtypeStruct((2, 3), jnp.float32))

    def bad(key, shape, dtype):
        return jnp.zeros(shape[:-1], dtype)  # the wrong shape

    g = bx.Graph("net")
    layer = bx.Linear(g / "l", 4, bias_init=bad, kernel_init=jax.nn.initializers.zeros)
    with bx.shape_only(), pytest.raises(bx.ParamError, match="returned shape"):
        jax.eval_shape(lambda x: layer(bx.Params(), x), jax.ShapeDtypeStruct((2, 3), jnp.float32))


def test_the_mode_ends_with_the_context():
    g, model = mlp()
    with bx.shape_only():
        pass
    params = init(g, model, jnp.ones((2, 5)))[1]  # a real, eager init afterwards
    assert float(jnp.abs(params["net/seq/a/kernel"].value.astype(jnp.float32)).sum()) > 0
