import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import blox as bx


def _ref_pool(x, window, strides, padding, kind):
    """Window-by-window jnp reference over (*batch, *spatial, C), counting only real elements."""
    n = len(window)
    spatial = x.shape[-n - 1 : -1]
    strides = window if strides is None else (strides,) * n if isinstance(strides, int) else strides
    if padding == "VALID":
        pads = [(0, 0)] * n
    else:
        pads = []
        for size, w, s in zip(spatial, window, strides):
            total = max((-(-size // s) - 1) * s + w - size, 0)
            pads.append((total // 2, total - total // 2))
    outs = [range(-lo, size + hi - w + 1, s) for size, w, s, (lo, hi) in zip(spatial, window, strides, pads)]
    values = []
    for starts in itertools.product(*outs):
        index = (
            [Ellipsis]
            + [slice(max(a, 0), min(a + w, size)) for a, w, size in zip(starts, window, spatial)]
            + [slice(None)]
        )
        patch = x[tuple(index)]
        axes = tuple(range(patch.ndim - n - 1, patch.ndim - 1))
        reduce = {"max": jnp.max, "min": jnp.min, "avg": jnp.mean}[kind]
        values.append(reduce(patch, axis=axes))
    out_shape = tuple(len(r) for r in outs)
    stacked = jnp.stack(values, axis=-2)
    return stacked.reshape(x.shape[: -n - 1] + out_shape + x.shape[-1:])


POOLS = {"max": bx.max_pool, "min": bx.min_pool, "avg": bx.avg_pool}


@pytest.mark.parametrize("kind", ["max", "min", "avg"])
@pytest.mark.parametrize(
    "shape,window,strides,padding",
    [((2, 3, 5, 6, 2), (2, 3), None, "VALID"), ((5, 7, 3), (3, 2), (2, 2), "SAME"), ((2, 9, 1), (4,), 3, "SAME")],
)
def test_pools_match_reference(kind, shape, window, strides, padding):
    x = jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)
    got = POOLS[kind](x, window, strides, padding)
    np.testing.assert_allclose(got, _ref_pool(x, window, strides, padding, kind), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_gradients_match_reference(kind):
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 5, 4, 3)), jnp.float32)
    # Under jit too: a regression test for max_pool failing to linearise inside a jitted grad.
    got = jax.jit(jax.grad(lambda x: jnp.sum(jnp.sin(POOLS[kind](x, (2, 2), 1, "SAME")))))(x)
    want = jax.jit(jax.grad(lambda x: jnp.sum(jnp.sin(_ref_pool(x, (2, 2), (1, 1), "SAME", kind)))))(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_avg_pool_same_counts_only_real_elements():
    x = jnp.ones((1, 3, 3, 1))
    np.testing.assert_allclose(bx.avg_pool(x, (2, 2), 2, "SAME"), jnp.ones((1, 2, 2, 1)))
    got = bx.avg_pool(jnp.arange(1.0, 4.0)[:, None], (2,), 2, ((0, 1),))
    assert got[:, 0].tolist() == [1.5, 3.0]


def test_pool_errors():
    with pytest.raises(bx.ShapeError, match=r"max_pool: a 2-D window \(2, 2\) needs input .* got shape \(4, 4\)"):
        bx.max_pool(jnp.ones((4, 4)), (2, 2))
    with pytest.raises(bx.ShapeError, match=r"avg_pool: the window spans 5 positions along spatial axis 0 .* only 4"):
        bx.avg_pool(jnp.ones((1, 4, 4, 2)), (5, 1))
