"""Test helper: Params shaped abstractly, then filled from numpy.

Random initialisers compile slowly on XLA:CPU (about a second each), so
numeric tests build their Params with ``jax.eval_shape`` and fill them here.
"""

import jax
import jax.numpy as jnp
import numpy as np

import blox as bx


def filled(call, params: bx.Params, *args, seed: int = 0, scale: float = 0.3, **kwargs) -> bx.Params:
    """Runs ``call(params, *args, **kwargs) -> (out, params)`` abstractly; fills new floats with N(0, scale)."""
    abstract = jax.eval_shape(lambda p, *a: call(p, *a, **kwargs)[1], params, *args)
    rs = np.random.RandomState(seed)

    def fill(path, p):
        if path in params:
            return params[path].value
        v = p.value
        if jnp.issubdtype(v.dtype, jnp.floating):
            return jnp.asarray(rs.normal(size=v.shape) * scale, v.dtype)
        return jnp.zeros(v.shape, v.dtype)

    return abstract.map(fill)
