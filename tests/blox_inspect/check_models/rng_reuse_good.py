"""Twin of rng_reuse_bad: each call of the Rng keeps the Params it returns."""

import jax
import jax.numpy as jnp
from _common import Scaled, make


class TwoMasks(Scaled):
    def __call__(self, params, x, *, is_training):
        h, params = self.lin(params, x)
        key_a, params = self.rng(params)
        key_b, params = self.rng(params)
        h = jnp.where(jax.random.bernoulli(key_a, 0.9, h.shape), h, 0.0)
        return jnp.where(jax.random.bernoulli(key_b, 0.9, h.shape), h, 0.0), params


def build():
    return make(TwoMasks, is_training=True)
