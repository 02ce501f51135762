"""BX201: a projection layer is built but the forward pass forgets to call it."""

from _common import Scaled, make

import blox as bx


class Block(Scaled):
    def __init__(self, graph, rng):
        super().__init__(graph, rng)
        self.proj = bx.Linear(graph / "proj", 8, rng)

    def __call__(self, params, x):
        h, params = self.lin(params, x)
        return self.scale(params, h)


def build():
    return make(Block)
