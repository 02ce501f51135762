"""Twin of unused_input_bad: the mask zeroes masked positions."""

import jax
import jax.numpy as jnp
from _common import Scaled, X

import blox as bx


class Block(Scaled):
    def __call__(self, params, x, mask):
        h, params = self.lin(params, jnp.where(mask, x, 0.0))
        return self.scale(params, h)


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    return Block(graph / "block", rng), (X, jax.ShapeDtypeStruct((4, 8), jnp.bool_))
