"""Twin of rng_shared_key_bad: the key is split, one half per dropout."""

import jax
import jax.numpy as jnp
from _common import Scaled, make


def dropout(key, x, rate):
    return jnp.where(jax.random.bernoulli(key, 1.0 - rate, x.shape), x / (1.0 - rate), 0.0)


class Block(Scaled):
    def __call__(self, params, x, *, is_training):
        key, params = self.rng(params)
        k1, k2 = jax.random.split(key)
        h, params = self.lin(params, dropout(k1, x, 0.1))
        return dropout(k2, h, 0.1), params


def build():
    return make(Block, is_training=True)
