import jax
import jax.numpy as jnp
import numpy as np
import pytest

import blox as bx


class Scale(bx.Module):
    def __init__(self, graph, rng=None, init=jax.nn.initializers.ones):
        super().__init__(graph)
        self.rng = rng
        self.init = init

    def __call__(self, params, x):
        s, params = self.get_param(params, "s", (x.shape[-1],), self.init, rng=self.rng)
        return x * s, params


def test_lazy_creation_then_reuse():
    graph = bx.Graph("net")
    m = Scale(graph / "scale")
    y, params = m(bx.Params(), jnp.arange(3.0))
    assert list(params) == [("net", "scale", "s")]
    np.testing.assert_array_equal(y, np.arange(3.0))
    params = params.set(("net", "scale", "s"), bx.Param(jnp.full(3, 2.0)))
    y, again = m(params.locked(), jnp.arange(3.0))
    np.testing.assert_array_equal(y, 2 * np.arange(3.0))
    assert again is not None and list(again) == list(params)


def test_get_param_reads_existing_without_shape_or_init():
    graph = bx.Graph("net")
    m = Scale(graph / "scale")
    _, params = m(bx.Params(), jnp.ones(2))
    value, same = m.get_param(params, "s")
    assert value.shape == (2,) and same is params


def test_creating_a_param_on_locked_params_is_an_error():
    m = Scale(bx.Graph("net") / "scale")
    with pytest.raises(
        bx.LockedParamsError,
        match=r"net/scale \(Scale\): param 's' does not exist and Params are locked.*params.unlocked\(\)",
    ):
        m(bx.Params().locked(), jnp.ones(2))


def test_reusing_a_param_with_another_shape_is_an_error():
    m = Scale(bx.Graph("net") / "scale")
    _, params = m(bx.Params(), jnp.ones(2))
    with pytest.raises(
        bx.ParamError,
        match=r"net/scale \(Scale\): s exists with shape \(2,\) but this call needs \(5,\).*Rebuild params or rename the layer",
    ):
        m(params, jnp.ones(5))


def test_reusing_a_param_with_another_dtype_is_an_error():
    m = Scale(bx.Graph("net") / "scale")
    _, params = m(bx.Params(), jnp.ones(2))
    with pytest.raises(
        bx.ParamError,
        match=r"net/scale \(Scale\): s exists with dtype float32 but this call needs bfloat16.*Cast the stored params",
    ):
        m.get_param(params, "s", (2,), jax.nn.initializers.ones, jnp.bfloat16)


def test_get_param_of_a_missing_param_without_shape_or_init_is_an_error():
    m = Scale(bx.Graph("net") / "scale")
    with pytest.raises(
        bx.ParamError,
        match=r"net/scale \(Scale\): param 'w' does not exist.*without shape= and init=.*Pass shape and init",
    ):
        m.get_param(bx.Params(), "w")


def test_random_init_without_rng_is_a_clear_error():
    m = Scale(bx.Graph("net") / "scale", init=jax.nn.initializers.normal())
    with pytest.raises(
        bx.ParamError, match=r"net/scale \(Scale\): the initializer of param 's' needs a PRNG key.*Pass rng="
    ):
        m(bx.Params(), jnp.ones(2))


def test_init_draws_its_key_from_the_rng():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    m = Scale(graph / "scale", rng=rng, init=jax.nn.initializers.normal())
    _, params = jax.jit(lambda x: m(rng.seed(bx.Params(), 3), x))(jnp.ones(4))
    expected = jax.jit(lambda: jax.nn.initializers.normal()(jax.random.fold_in(jax.random.key(3), 0), (4,)))()
    np.testing.assert_array_equal(params["net/scale/s"].value, expected)
    assert int(rng.get_counter(params)) == 1


def test_set_param_keeps_flags_and_checks_shape():
    m = Scale(bx.Graph("net") / "scale")
    params = m.set_param(bx.Params(), "stat", jnp.zeros(2), trainable=False, metadata={"k": 1})
    params = m.set_param(params, "stat", jnp.ones(2))
    p = params["net/scale/stat"]
    assert not p.trainable and p.metadata == {"k": 1}
    np.testing.assert_array_equal(p.value, np.ones(2))
    with pytest.raises(bx.ParamError, match=r"stat exists with shape \(2,\) but this call needs \(3,\)"):
        m.set_param(params, "stat", jnp.ones(3))
    with pytest.raises(bx.ParamError, match=r"stat exists with dtype float32 but this call needs int32"):
        m.set_param(params, "stat", jnp.ones(2, jnp.int32))
    with pytest.raises(bx.LockedParamsError, match=r"param 'new' does not exist and Params are locked"):
        m.set_param(params.locked(), "new", 1.0)
    assert m.set_param(params, "py", 2.0)["net/scale/py"].value.shape == ()


def test_modules_must_be_called_with_params():
    m = Scale(bx.Graph("net") / "scale")
    with pytest.raises(TypeError, match=r"net/scale \(Scale\): expected blox Params as the first argument, got dict"):
        m({}, jnp.ones(2))


def test_call_module_hook_sees_every_call_and_is_restorable():
    import blox._module as bm

    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    node = graph / "mlp"
    mlp = bx.Sequential(node, [bx.Linear(node / "a", 2, rng), bx.Linear(node / "b", 2, rng)])
    seen = []
    original = bm._call_module

    def spy(module, method, params, args, kwargs):
        seen.append((module.scope_name, method.__name__))
        return original(module, method, params, args, kwargs)

    bm._call_module = spy
    try:
        jax.eval_shape(lambda: mlp(rng.seed(bx.Params(), 0), jnp.ones((1, 2))))
    finally:
        bm._call_module = original
    assert ("net/mlp", "__call__") in seen and ("net/mlp/a", "__call__") in seen and ("net/rng", "__call__") in seen
