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


# --- shape_only_result: a layer's arithmetic as one placeholder --------------------------------


def test_a_linear_stages_one_op_for_its_arithmetic():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    layer = bx.Linear(g / "l", 4, rng)

    def run(x):
        return layer(rng.seed(bx.Params(), 0), x)

    x = jax.ShapeDtypeStruct((2, 3), jnp.float32)
    with bx.shape_only():
        jaxpr = jax.make_jaxpr(run)(x)
    names = [e.primitive.name for e in jaxpr.eqns]  # seeding the Rng first, then the layer
    assert names.count("blox_shape_only_param") == 3  # kernel, bias, then x @ kernel + bias
    assert not {"dot_general", "reshape", "add"} & set(names)
    assert "dot_general" in {e.primitive.name for e in jax.make_jaxpr(run)(x).eqns}  # the real init computes


@pytest.mark.parametrize(
    ("x", "param_dtype", "use_bias"),
    [
        (jax.ShapeDtypeStruct((2, 3), jnp.float32), jnp.float32, True),
        (jax.ShapeDtypeStruct((2, 7, 3), jnp.bfloat16), jnp.float32, True),  # jnp.matmul promotes
        (jax.ShapeDtypeStruct((3,), jnp.float32, weak_type=True), jnp.float32, False),
        (jax.ShapeDtypeStruct((2, 3), jnp.int32), jnp.float16, True),
    ],
)
def test_the_output_type_is_the_real_one(x, param_dtype, use_bias):
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    layer = bx.Linear(g / "l", 5, rng, param_dtype=param_dtype, use_bias=use_bias)

    def run(x):
        return layer(rng.seed(bx.Params(), 0), x)

    real_y, real_params = jax.eval_shape(run, x)
    with bx.shape_only():
        y, params = jax.eval_shape(run, x)
    assert (y.shape, y.dtype, y.weak_type) == (real_y.shape, real_y.dtype, real_y.weak_type)
    assert facts(params) == facts(real_params)


def test_errors_of_the_arithmetic_surface_and_statics_key_the_cache():
    def scale(x, factor):
        if factor == 0:
            raise ValueError("factor must be nonzero")
        return x * factor

    x = jax.ShapeDtypeStruct((2,), jnp.float32)
    with bx.shape_only():
        with pytest.raises(ValueError, match="nonzero"):
            jax.eval_shape(lambda x: bx._module.shape_only_result(scale, x, 0), x)
        # True and 1 are equal but not the same argument: float32 * True stays float32, as * 1 does,
        # and each is traced for itself.
        as_int = jax.eval_shape(lambda x: bx._module.shape_only_result(scale, x, 1), x)
        as_bool = jax.eval_shape(lambda x: bx._module.shape_only_result(scale, x, True), x)
        as_float = jax.eval_shape(lambda x: bx._module.shape_only_result(scale, x.astype(jnp.int32), 1.5), x)
    assert as_int.dtype == as_bool.dtype == jnp.float32
    assert as_float.dtype == jnp.float32  # int32 * 1.5 (weak) is float32, as jnp says
    assert as_float.dtype == jnp.result_type(jnp.int32, 1.5)


def test_unhashable_arguments_run_the_function_itself():
    calls = []

    def add_all(x, extra):
        calls.append(1)
        return x + sum(extra)

    x = jax.ShapeDtypeStruct((2,), jnp.float32)
    with bx.shape_only():
        jaxpr = jax.make_jaxpr(lambda x: bx._module.shape_only_result(add_all, x, [1.0, 2.0]))(x)
    assert calls and "blox_shape_only_param" not in {e.primitive.name for e in jaxpr.eqns}


def test_outside_shape_only_it_is_the_function():
    y = bx._module.shape_only_result(lambda x, k: x * k, jnp.arange(3.0), 2.0)
    assert y.tolist() == [0.0, 2.0, 4.0]


def test_a_jitted_init_traced_inside_is_traced_afresh_outside():
    # JAX caches traces by function and argument types; the mode is part of that key, so the real
    # init does not reuse the jaxpr of placeholders traced for eval_shape.
    g, model = mlp()
    jitted = jax.jit(lambda x: init(g, model, x))
    x = jnp.ones((2, 5))
    with bx.shape_only():
        shapes = jax.eval_shape(jitted, x)
    out, params = jitted(x)
    assert out.shape == shapes[0].shape and facts(params) == facts(shapes[1])
    assert float(jnp.abs(params["net/seq/b/kernel"].value).sum()) > 0
    assert "dot_general" in {e.primitive.name for e in jax.make_jaxpr(jitted)(x).eqns[0].params["jaxpr"].eqns}
