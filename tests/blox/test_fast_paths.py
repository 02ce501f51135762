"""blox's fast paths for ops every layer stages (``matmul``, ``add_lead``): the same program as plain ``jnp``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blox._module import add_lead, matmul

CASES = [
    ((2, 3, 4), (4, 5), "float32", "float32", None),
    ((4,), (4, 5), "float32", "float32", "highest"),
    ((3, 4), (4, 5), "bfloat16", "bfloat16", None),
    ((3, 4), (4, 5), "float32", "bfloat16", None),  # mixed: jnp's promotion
    ((3, 4), (4, 5), "int32", "int32", None),
    ((2, 3, 4), (2, 4, 5), "float32", "float32", None),  # a batched kernel: jnp's broadcasting
]


@pytest.mark.parametrize("xs, ks, xdt, kdt, precision", CASES)
def test_matmul_stages_what_jnp_matmul_stages(xs, ks, xdt, kdt, precision):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=xs)).astype(xdt)
    k = jnp.asarray(rng.normal(size=ks)).astype(kdt)
    ours = jax.make_jaxpr(lambda x, k: matmul(x, k, precision))(x, k)
    reference = jax.make_jaxpr(lambda x, k: jnp.matmul(x, k, precision=precision))(x, k)
    assert str(ours) == str(reference)
    want = np.matmul(np.asarray(x, np.float64), np.asarray(k, np.float64))
    np.testing.assert_allclose(np.asarray(matmul(x, k, precision), np.float64), want, rtol=2e-2, atol=2e-2)


def test_matmul_of_weak_typed_input_keeps_jnp_types():
    k = jnp.ones((4, 5))
    ours = jax.eval_shape(lambda x: matmul(x, k), jax.ShapeDtypeStruct((3, 4), jnp.float32, weak_type=True))
    reference = jax.eval_shape(lambda x: jnp.matmul(x, k), jax.ShapeDtypeStruct((3, 4), jnp.float32, weak_type=True))
    assert (ours.shape, ours.dtype, ours.weak_type) == (reference.shape, reference.dtype, reference.weak_type)


@pytest.mark.parametrize("ys, bs", [((2, 3, 5), (5,)), ((5,), (5,)), ((4, 5), (4, 5))])
def test_add_lead_is_a_broadcast_add(ys, bs):
    rng = np.random.default_rng(1)
    y, b = rng.normal(size=ys).astype(np.float32), rng.normal(size=bs).astype(np.float32)
    np.testing.assert_allclose(np.asarray(add_lead(jnp.asarray(y), jnp.asarray(b))), y + b, rtol=1e-6)
