"""Twin of frozen_weight_bad: the projection kernel is trainable."""

import jax
from _common import Scaled, make


class Block(Scaled):
    def __call__(self, params, x):
        w, params = self.get_param(params, "w", (8, 8), jax.nn.initializers.lecun_normal(), rng=self.rng)
        h, params = self.lin(params, x @ w)
        return self.scale(params, h)


def build():
    return make(Block)
