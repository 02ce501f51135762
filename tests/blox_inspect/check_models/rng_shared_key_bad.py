"""BX101: one key handed to two dropout layers."""

import jax
import jax.numpy as jnp
from _common import Scaled, make


def dropout(key, x, rate):
    return jnp.where(jax.random.bernoulli(key, 1.0 - rate, x.shape), x / (1.0 - rate), 0.0)


class Block(Scaled):
    def __call__(self, params, x, *, is_training):
        key, params = self.rng(params)
        h, params = self.lin(params, dropout(key, x, 0.1))
        return dropout(key, h, 0.1), params


def build():
    return make(Block, is_training=True)
