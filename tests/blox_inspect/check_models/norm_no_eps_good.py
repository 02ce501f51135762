"""Twin of norm_no_eps_bad: epsilon added before the rsqrt."""

import jax
import jax.numpy as jnp
from _common import Scaled, make


class Block(Scaled):
    def __call__(self, params, x):
        h, params = self.lin(params, x)
        h = h * jax.lax.rsqrt(jnp.mean(jnp.square(h), axis=-1, keepdims=True) + 1e-6)
        return self.scale(params, h)


def build():
    return make(Block)
