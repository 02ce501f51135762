"""Twin of dead_param_bad: the gate multiplies the output."""

import jax
from _common import Scaled, make

import blox as bx


class Block(Scaled):
    def __call__(self, params, x):
        h, params = self.lin(params, x)
        gate, params = self.get_param(params, "gate", (8,), jax.nn.initializers.ones)
        h, params = self.scale(params, h)
        return h * bx._module.lead(gate, h.ndim), params


def build():
    return make(Block)
