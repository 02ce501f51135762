import jax
import jax.numpy as jnp
import numpy as np
import pytest

import blox as bx


def _sig(v):
    return 1.0 / (1.0 + jnp.exp(-v))


@jax.jit
def _ref_lstm(p, xs, h, c, reset):
    """Plain-JAX LSTM over (T, B, F) from explicit weights; reset re-zeroes the state first."""
    ys = []
    for t in range(xs.shape[0]):
        if reset is not None:
            keep = 1.0 - reset[t].astype(xs.dtype)[:, None]
            h, c = h * keep, c * keep
        z = xs[t] @ p["kernel_i"] + h @ p["kernel_h"] + p["bias"][None]
        hs = h.shape[-1]
        i, f, g, o = (z[:, k * hs : (k + 1) * hs] for k in range(4))
        c = _sig(f) * c + _sig(i) * jnp.tanh(g)
        h = _sig(o) * jnp.tanh(c)
        ys.append(h)
    return jnp.stack(ys), h, c


@jax.jit
def _ref_gru(p, xs, h, reset):
    ys = []
    hs = h.shape[-1]
    for t in range(xs.shape[0]):
        if reset is not None:
            h = h * (1.0 - reset[t].astype(xs.dtype)[:, None])
        gi = xs[t] @ p["kernel_i"] + p["bias_i"][None]
        gh = h @ p["kernel_h"] + p["bias_h"][None]
        r = _sig(gi[:, :hs] + gh[:, :hs])
        z = _sig(gi[:, hs : 2 * hs] + gh[:, hs : 2 * hs])
        n = jnp.tanh(gi[:, 2 * hs :] + r * gh[:, 2 * hs :])
        h = (1.0 - z) * n + z * h
        ys.append(h)
    return jnp.stack(ys), h


def np_init(seed):
    # numpy draws keep these tests free of PRNG compilation, which dominates their run time on CPU.
    gen = np.random.default_rng(seed)
    return lambda key, shape, dtype=jnp.float32: jnp.asarray(gen.normal(0.0, 0.5, shape), dtype)


def _make(cls, hidden=5):
    inits = {"kernel_init": np_init(0), "recurrent_init": np_init(1), "bias_init": np_init(2)}
    return cls(bx.Graph("net") / "rnn", hidden, **inits), bx.Params()


def _weights(params):
    return {k[-1]: v.value for k, v in params.items() if k[:2] == ("net", "rnn")}


def _data(t, b, f=3, seed=0):
    gen = np.random.default_rng(seed)
    return jnp.asarray(gen.normal(size=(t, b, f)), jnp.float32), jnp.asarray(gen.random((t, b)) < 0.3)


@pytest.mark.parametrize("batch", [1, 3])
def test_lstm_matches_reference_with_resets_static_and_dynamic(batch):
    lstm, params = _make(bx.LSTM)
    xs, reset = _data(6, batch)
    (ys, state), params = lstm.apply(params, xs, reset=reset)
    (ys_static, state_static), params_static = lstm.apply(params, xs, reset=reset, dynamic=False)
    p = _weights(params)
    assert p["kernel_i"].shape == (3, 20) and p["kernel_h"].shape == (5, 20)
    zeros = jnp.zeros((batch, 5))
    want, h, c = _ref_lstm(p, xs, zeros, zeros, reset)
    np.testing.assert_allclose(ys, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.hidden, h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.cell, c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ys_static, ys, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(state_static.cell, state.cell, rtol=1e-6, atol=1e-7)
    assert set(params_static) == set(params)
    # Compiled, both paths are the same computation, so the results are bitwise equal.
    run = jax.jit(lambda p, dynamic: lstm.apply(p, xs, reset=reset, dynamic=dynamic)[0][0], static_argnums=1)
    np.testing.assert_array_equal(run(params, True), run(params, False))


def test_reset_only_touches_its_own_example():
    lstm, params = _make(bx.LSTM)
    xs, _ = _data(4, 2)
    reset = jnp.zeros((4, 2), bool).at[2, 1].set(True)
    (ys, _), params = lstm.apply(params, xs, reset=reset)
    (plain, _), _ = lstm.apply(params, xs)
    np.testing.assert_allclose(ys[:, 0], plain[:, 0], rtol=1e-6)
    np.testing.assert_allclose(ys[:2, 1], plain[:2, 1], rtol=1e-6)
    # Example 1 restarts at t=2: the same as running its tail from a fresh state.
    (tail, _), _ = lstm.apply(params, xs[2:, 1:2])
    np.testing.assert_allclose(ys[2:, 1], tail[:, 0], rtol=1e-5, atol=1e-6)


def test_gru_matches_reference_and_supports_many_or_no_batch_axes():
    gru, params = _make(bx.GRU)
    xs, reset = _data(5, 6)
    (ys, h), params = gru.apply(params, xs.reshape(5, 2, 3, 3), reset=reset.reshape(5, 2, 3))
    p = _weights(params)
    want, h_want = _ref_gru(p, xs, jnp.zeros((6, 5)), reset)
    np.testing.assert_allclose(ys, want.reshape(5, 2, 3, 5), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, h_want.reshape(2, 3, 5), rtol=1e-5, atol=1e-6)
    (single, _), _ = gru.apply(params, xs[:, 0], reset=reset[:, 0], dynamic=False)
    np.testing.assert_allclose(single, want[:, 0], rtol=1e-5, atol=1e-6)


def test_gru_gradients_match_reference():
    gru, params = _make(bx.GRU)
    xs, reset = _data(4, 2)
    _, params = gru.apply(params, xs)
    trainable, rest = params.split()
    ours = lambda tr: jnp.sum(jnp.sin(gru.apply(tr.merge(rest), xs, reset=reset)[0][0]))
    ref = lambda p: jnp.sum(jnp.sin(_ref_gru(p, xs, jnp.zeros((2, 5)), reset)[0]))
    got = _weights(jax.jit(jax.grad(ours))(trainable))
    want = jax.jit(jax.grad(ref))(_weights(params))
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-6)


def test_initial_state_is_used_and_jit_works():
    gru, params = _make(bx.GRU)
    xs, _ = _data(3, 2)
    _, params = gru.apply(params, xs)
    start = jnp.full((2, 5), 0.5)
    (ys, _), _ = jax.jit(lambda p, x, s: gru.apply(p, x, initial_state=s))(params.locked(), xs, start)
    want, _ = _ref_gru(_weights(params), xs, start, None)
    np.testing.assert_allclose(ys, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dynamic", [True, False])
def test_gradients_match_reference(dynamic):
    lstm, params = _make(bx.LSTM)
    xs, reset = _data(4, 2)
    _, params = lstm.apply(params, xs)
    trainable, rest = params.split()

    def ours(tr):
        (ys, _), _ = lstm.apply(tr.merge(rest), xs, reset=reset, dynamic=dynamic)
        return jnp.sum(jnp.sin(ys))

    def ref(p):
        zeros = jnp.zeros((2, 5))
        return jnp.sum(jnp.sin(_ref_lstm(p, xs, zeros, zeros, reset)[0]))

    got = _weights(jax.jit(jax.grad(ours))(trainable))
    want = jax.jit(jax.grad(ref))(_weights(params))
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-6)


def test_recurrent_errors_name_the_module_and_shapes():
    lstm, params = _make(bx.LSTM)
    with pytest.raises(bx.ShapeError, match=r"net/rnn \(LSTM\): expected a time-major sequence .* got shape \(7,\)"):
        lstm.apply(params, jnp.ones(7))
    with pytest.raises(
        bx.ShapeError,
        match=r"net/rnn \(LSTM\): the reset mask must have shape \(time, \*batch\) = \(4, 2\) .* got \(4,\)",
    ):
        lstm.apply(params, jnp.ones((4, 2, 3)), reset=jnp.zeros(4, bool))
    _, params = lstm.apply(params, jnp.ones((4, 2, 3)))
    with pytest.raises(
        bx.ShapeError,
        match=r"net/rnn \(LSTM\): the params were built for 3 input features but this input has 6 \(input shape \(2, 6\)\)",
    ):
        lstm.apply(params, jnp.ones((4, 2, 6)))
    with pytest.raises(
        bx.ShapeError,
        match=r"net/rnn \(LSTM\): the state has shape \(3, 5\) but an input of shape \(2, 3\) needs \(2, 5\)",
    ):
        lstm(params, jnp.ones((2, 3)), lstm.initial_state((3,)))
    with pytest.raises(bx.ShapeError, match=r"net/rnn \(LSTM\): expected one step's input"):
        lstm(params, jnp.ones(()), lstm.initial_state(()))
