"""BX202: a gate param is created but its value is never used."""

import jax
from _common import Scaled, make


class Block(Scaled):
    def __call__(self, params, x):
        h, params = self.lin(params, x)
        gate, params = self.get_param(params, "gate", (8,), jax.nn.initializers.ones)
        return self.scale(params, h)


def build():
    return make(Block)
