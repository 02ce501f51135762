"""Twin of weak_param_bad: the init gives a strongly typed float32 array."""

import jax.numpy as jnp
from _common import Scaled, make

import blox as bx


class Block(Scaled):
    def __call__(self, params, x):
        t, params = self.get_param(params, "temperature", (), lambda key, shape, dtype: jnp.ones(shape, dtype))
        h, params = self.lin(params, x)
        return h * bx._module.lead(t, h.ndim), params


def build():
    return make(Block)
