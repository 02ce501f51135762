"""BX103: a per-example model meant for jax.vmap with shared params: every lane draws the same mask."""

from _common import Scaled, make

import blox as bx

BLOX_CHECK_VMAP = True


class PerExample(Scaled):
    def __init__(self, graph, rng):
        super().__init__(graph, rng)
        self.drop = bx.Dropout(graph / "drop", 0.1, rng)

    def __call__(self, params, x, *, is_training):
        h, params = self.lin(params, x)
        return self.drop(params, h, is_training=is_training)


def build():
    return make(PerExample, is_training=True)
