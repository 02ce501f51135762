"""BX302: a projection kernel is created trainable=False by mistake, in the middle of a trained net."""

import jax
from _common import Scaled, make


class Block(Scaled):
    def __call__(self, params, x):
        w, params = self.get_param(
            params, "w", (8, 8), jax.nn.initializers.lecun_normal(), trainable=False, rng=self.rng
        )
        h, params = self.lin(params, x @ w)
        return self.scale(params, h)


def build():
    return make(Block)
