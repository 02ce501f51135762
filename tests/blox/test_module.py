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


def test_initializers_traced_inside_jit_give_the_eager_values():
    # Inside a trace blox calls initializers through a cached jax.jit: the values must not change.
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    layers = [bx.Linear(graph / f"l{i}", 3, rng) for i in range(3)]
    model = bx.Sequential(graph / "seq", layers)

    def init(x):
        return model(rng.seed(bx.Params(), 4), x)[1]

    eager, jitted = init(jnp.ones((2, 5))), jax.jit(init)(jnp.ones((2, 5)))
    base = jax.random.key(4)
    for i in range(3):
        kernel = jax.nn.initializers.lecun_normal()(jax.random.fold_in(base, 2 * i), (5 if i == 0 else 3, 3))
        np.testing.assert_allclose(eager[f"net/l{i}/kernel"].value, kernel, rtol=1e-6)
        np.testing.assert_allclose(jitted[f"net/l{i}/kernel"].value, kernel, rtol=1e-6)
        np.testing.assert_array_equal(jitted[f"net/l{i}/bias"].value, np.zeros(3, np.float32))


def test_a_traced_initializer_is_traced_once_per_shape_and_closures_keep_their_values():
    calls = []

    def counted(key, shape, dtype):
        calls.append(shape)
        return jax.random.normal(key, shape, dtype)

    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    same = [Scale(graph / f"s{i}", rng=rng, init=counted) for i in range(4)]
    consts = [Scale(graph / f"c{i}", rng=rng, init=lambda k, s, d, v=float(i): jnp.full(s, v, d)) for i in range(3)]

    def init(x):
        params = rng.seed(bx.Params(), 0)
        for m in same + consts:
            x, params = m(params, x)
        return params

    params = jax.jit(init)(jnp.ones(2))
    assert calls == [(2,)]  # four params of one shape: one trace of the initializer
    for i in range(3):
        np.testing.assert_array_equal(params[f"net/c{i}/s"].value, np.full(2, float(i), np.float32))


class _UnhashableInit:
    __hash__ = None  # a static jit argument must be hashable: this one is called directly

    def __call__(self, key, shape, dtype):
        return jax.random.uniform(key, shape, dtype)


def test_an_unhashable_initializer_works_inside_a_trace():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    m = Scale(graph / "scale", rng=rng, init=_UnhashableInit())
    _, params = jax.jit(lambda x: m(rng.seed(bx.Params(), 3), x))(jnp.ones(4))
    expected = jax.random.uniform(jax.random.fold_in(jax.random.key(3), 0), (4,))
    np.testing.assert_allclose(params["net/scale/s"].value, expected, rtol=1e-6)


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


def _mlp():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    node = graph / "mlp"
    mlp = bx.Sequential(node, [bx.Linear(node / "a", 2, rng), bx.Linear(node / "b", 2, rng)])
    return rng, mlp


def test_observe_calls_sees_every_call_with_its_caller_and_is_restored():
    rng, mlp = _mlp()
    seen = []

    def spy(call, proceed):
        seen.append((call.module.scope_name, call.method, call.caller and call.caller.scope_name))
        return proceed(call.params, *call.args, **call.kwargs)

    with bx.observe_calls(spy):
        jax.eval_shape(lambda: mlp(rng.seed(bx.Params(), 0), jnp.ones((1, 2))))
    assert ("net/mlp", "__call__", None) in seen
    assert ("net/mlp/a", "__call__", "net/mlp") in seen
    assert ("net/rng", "__call__", "net/mlp/a") in seen
    n = len(seen)
    jax.eval_shape(lambda: mlp(rng.seed(bx.Params(), 0), jnp.ones((1, 2))))
    assert len(seen) == n  # the observer is gone after the block


def test_observe_calls_is_restored_when_the_block_raises():
    rng, mlp = _mlp()
    seen = []

    def spy(call, proceed):
        seen.append(call.module.scope_name)
        return proceed(call.params, *call.args, **call.kwargs)

    with pytest.raises(ZeroDivisionError):
        with bx.observe_calls(spy):
            raise ZeroDivisionError("inside the block")
    mlp(rng.seed(bx.Params(), 0), jnp.ones((1, 2)))
    assert seen == []


def test_observers_stack_inner_runs_closer_to_the_call_and_may_change_results():
    rng, mlp = _mlp()
    order = []

    def outer(call, proceed):
        order.append(("outer", call.module.name))
        out = proceed(call.params, *call.args, **call.kwargs)
        return out

    def inner(call, proceed):
        order.append(("inner", call.module.name))
        y, params = proceed(call.params, *call.args, **call.kwargs)
        if call.module.name == "b":
            y = y * 0.0
        return y, params

    params = rng.seed(bx.Params(), 0)
    with bx.observe_calls(outer), bx.observe_calls(inner):
        y, _ = mlp(params, jnp.ones((1, 2)))
    assert order[:2] == [("outer", "mlp"), ("inner", "mlp")]
    assert ("outer", "b") in order and order.index(("outer", "b")) + 1 == order.index(("inner", "b"))
    assert jnp.all(y == 0.0)


def test_observe_calls_is_private_to_its_thread():
    import threading

    rng, mlp = _mlp()
    _, params = mlp(rng.seed(bx.Params(), 0), jnp.ones((1, 2)))
    seen_main, seen_thread = [], []

    def spy(call, proceed):
        seen_main.append(call.module.scope_name)
        return proceed(call.params, *call.args, **call.kwargs)

    def other():
        def spy2(call, proceed):
            seen_thread.append(call.module.scope_name)
            return proceed(call.params, *call.args, **call.kwargs)

        with bx.observe_calls(spy2):
            mlp(params, jnp.ones((1, 2)))

    with bx.observe_calls(spy):
        t = threading.Thread(target=other)
        t.start()
        t.join(timeout=60)
    assert seen_main == [] and "net/mlp/a" in seen_thread


def test_super_call_is_one_observed_call():
    class Base(bx.Module):
        def __call__(self, params, x):
            return x + 1, params

    class Child(Base):
        def __call__(self, params, x):
            y, params = super().__call__(params, x)
            return y * 2, params

    m = Child(bx.Graph("net") / "c")
    seen = []

    def spy(call, proceed):
        seen.append(call.module.scope_name)
        return proceed(call.params, *call.args, **call.kwargs)

    with bx.observe_calls(spy):
        y, _ = m(bx.Params(), jnp.ones(2))
    assert seen == ["net/c"] and jnp.allclose(y, 4.0)
    assert "_active" not in vars(m)


def test_named_scopes_spell_each_path_once():
    rng, mlp = _mlp()
    params = rng.seed(bx.Params(), 0)
    hlo = jax.jit(lambda p, x: mlp(p, x)[0]).lower(params, jnp.ones((1, 2))).as_text(debug_info=True)
    assert "net/mlp/a/dot_general" in hlo and "net/mlp/b/dot_general" in hlo
    assert "net/mlp/net" not in hlo and "mlp/mlp" not in hlo


def test_injected_module_opens_its_full_path():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    shared = bx.Linear(graph / "shared", 2, rng)

    class User(bx.Module):
        def __init__(self, graph, inner):
            super().__init__(graph)
            self.inner = inner

        def __call__(self, params, x):
            return self.inner(params, x)

    user = User(graph / "user", shared)
    params = jax.eval_shape(lambda: user(rng.seed(bx.Params(), 0), jnp.ones((1, 3)))[1])
    jaxpr = jax.make_jaxpr(lambda p, x: user(p, x)[0])(params, jnp.ones((1, 3)))
    stacks = [str(e.source_info.name_stack) for e in jaxpr.jaxpr.eqns if e.primitive.name == "dot_general"]
    assert stacks == ["net/user/net/shared"]
    assert bx.scope_for(("net", "shared"), ("net", "user")) == "net/shared"
