"""BX101: the Rng is called twice on the same Params, so both dropout masks use one key."""

import jax
import jax.numpy as jnp
from _common import Scaled, make


class TwoMasks(Scaled):
    def __call__(self, params, x, *, is_training):
        h, params = self.lin(params, x)
        key_a, _ = self.rng(params)  # the updated Params are dropped...
        key_b, params = self.rng(params)  # ...so this reads the same counter again
        h = jnp.where(jax.random.bernoulli(key_a, 0.9, h.shape), h, 0.0)
        return jnp.where(jax.random.bernoulli(key_b, 0.9, h.shape), h, 0.0), params


def build():
    return make(TwoMasks, is_training=True)
