"""BX402 (BX401 with jax_enable_x64): a residual accumulator is created as float64."""

import jax.numpy as jnp
from _common import Scaled, make


class Block(Scaled):
    def __call__(self, params, x):
        acc = jnp.zeros(x.shape, jnp.float64)
        h, params = self.lin(params, x)
        return self.scale(params, (acc + h).astype(x.dtype))


def build():
    return make(Block)
