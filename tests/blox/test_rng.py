import jax
import jax.numpy as jnp
import numpy as np
import pytest

import blox as bx


def test_seed_stores_a_typed_key_and_a_uint32_counter_both_non_trainable():
    rng = bx.Rng(bx.Graph("net") / "rng")
    params = rng.seed(bx.Params(), seed=0)
    seed, counter = params["net/rng/seed"], params["net/rng/counter"]
    assert jnp.issubdtype(seed.value.dtype, jax.dtypes.prng_key) and not seed.trainable
    assert counter.value.dtype == jnp.uint32 and int(counter.value) == 0 and not counter.trainable
    assert rng.get_seed(params) is seed.value and rng.get_counter(params) is counter.value
    trainable, _ = params.split()
    assert len(trainable) == 0


def test_each_call_is_fold_in_of_seed_and_counter():
    rng = bx.Rng(bx.Graph("net") / "rng")
    params = rng.seed(bx.Params(), seed=7)
    k0, params = rng(params)
    k1, params = rng(params)
    base = jax.random.key(7)
    np.testing.assert_array_equal(jax.random.key_data(k0), jax.random.key_data(jax.random.fold_in(base, 0)))
    np.testing.assert_array_equal(jax.random.key_data(k1), jax.random.key_data(jax.random.fold_in(base, 1)))
    assert int(rng.get_counter(params)) == 2


def test_seed_accepts_a_typed_key_and_works_under_jit():
    rng = bx.Rng(bx.Graph("net") / "rng")
    key = jax.random.key(5)
    a = rng.seed(bx.Params(), key)
    b = jax.jit(lambda k: rng.seed(bx.Params(), k))(key)
    np.testing.assert_array_equal(jax.random.key_data(rng.get_seed(a)), jax.random.key_data(rng.get_seed(b)))
    draw = jax.jit(lambda p: rng(p))
    k, b = draw(b)
    assert int(rng.get_counter(b)) == 1


def test_unseeded_rng_is_an_error():
    rng = bx.Rng(bx.Graph("net") / "rng")
    with pytest.raises(
        bx.RngError,
        match=r"net/rng \(Rng\): not seeded in these Params \(no 'seed' param\).*rng.seed\(params, seed=0\)",
    ):
        rng(bx.Params())
    with pytest.raises(bx.RngError, match=r"net/rng \(Rng\): not seeded"):
        rng.get_counter(bx.Params())


def test_seeding_locked_params_that_lack_the_rng_is_an_error():
    rng = bx.Rng(bx.Graph("net") / "rng")
    with pytest.raises(
        bx.LockedParamsError, match=r"net/rng \(Rng\): param 'seed' does not exist and Params are locked"
    ):
        rng.seed(bx.Params().locked(), 0)
    reseeded = rng.seed(rng.seed(bx.Params(), 0).locked(), 1)  # re-seeding existing state is fine
    assert reseeded.is_locked


def test_seed_all_gives_each_rng_its_own_stream():
    graph = bx.Graph("net")
    a, b = bx.Rng(graph / "a"), bx.Rng(graph / "b")
    params = bx.seed_all(graph, bx.Params(), 3)
    ka, params = a(params)
    kb, params = b(params)
    assert not np.array_equal(jax.random.key_data(ka), jax.random.key_data(kb))
    np.testing.assert_array_equal(jax.random.key_data(a.get_seed(params)), jax.random.key_data(jax.random.key(3)))


def _model():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    return rng, bx.Linear(graph / "lin", 3, rng), bx.Dropout(graph / "drop", 0.5, rng)


def test_vmap_with_replicated_params_gives_identical_lanes():
    rng, lin, _ = _model()
    _, params = jax.jit(lambda x: lin(rng.seed(bx.Params(), 0), x))(jnp.ones((1, 4)))
    xs = jnp.arange(8.0).reshape(2, 4)
    ys = jax.jit(jax.vmap(lambda x: lin(params, x)[0], in_axes=0))(xs)
    np.testing.assert_allclose(ys, xs @ params["net/lin/kernel"].value, rtol=1e-6)

    # Initialising inside vmap with the same seed gives identical params in every lane.
    def init(x):
        return lin(rng.seed(bx.Params(), 0), x)[1]

    lanes = jax.jit(jax.vmap(init))(jnp.ones((4, 1, 4)))
    kernels = lanes["net/lin/kernel"].value
    assert kernels.shape == (4, 4, 3)
    for i in range(4):
        np.testing.assert_array_equal(kernels[i], params["net/lin/kernel"].value)


def _lane_masks(drop, rng, params, x, lane):
    # The fold-in pattern: one key from the shared stream, the lane index folded in,
    # and a lane-local copy of the Rng seeded with it.
    key, params = rng(params)
    local = rng.seed(params, jax.random.fold_in(key, lane))
    y, _ = drop(local, x, is_training=True)
    return y


def test_vmap_per_lane_randomness_with_an_explicit_index():
    rng, _, drop = _model()
    params = rng.seed(bx.Params(), 0)
    x = jnp.ones((64,))
    one = jax.jit(lambda i: _lane_masks(drop, rng, params, x, i))
    ys = jax.vmap(one)(jnp.arange(4))
    assert len({tuple(np.asarray(y)) for y in ys}) == 4
    # Lane i equals running that lane alone: randomness depends on the index, not on vmap.
    np.testing.assert_array_equal(ys[2], one(2))


def test_vmap_per_lane_randomness_with_axis_index():
    rng, _, drop = _model()
    params = rng.seed(bx.Params(), 0)
    x = jnp.ones((64,))
    f = jax.vmap(lambda x: _lane_masks(drop, rng, params, x, jax.lax.axis_index("lane")), axis_name="lane")
    ys = jax.jit(f)(jnp.broadcast_to(x, (4, 64)))
    explicit = jax.jit(jax.vmap(lambda i: _lane_masks(drop, rng, params, x, i)))(jnp.arange(4))
    np.testing.assert_array_equal(ys, explicit)
    # Without the fold-in every lane draws the same mask: replicated params mean replicated randomness.
    same = jax.jit(jax.vmap(lambda x: drop(params, x, is_training=True)[0]))(jnp.broadcast_to(x, (4, 64)))
    assert len({tuple(np.asarray(y)) for y in same}) == 1
