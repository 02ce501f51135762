"""BX406: a temperature param initialised from a Python float is weak-typed."""

import jax.numpy as jnp
from _common import Scaled, make

import blox as bx


class Block(Scaled):
    def __call__(self, params, x):
        t, params = self.get_param(params, "temperature", (), lambda key, shape, dtype: jnp.asarray(1.0))
        h, params = self.lin(params, x)
        return h * bx._module.lead(t, h.ndim), params


def build():
    return make(Block)
