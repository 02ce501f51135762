"""BX102: a scan applies noise with a key drawn once outside the loop: every step gets the same noise."""

import jax
from _common import Scaled, make


class Noisy(Scaled):
    def __call__(self, params, x, *, is_training):
        key, params = self.rng(params)

        def step(h, _):
            return h + 0.1 * jax.random.normal(key, h.shape), None

        h, _ = jax.lax.scan(step, x, None, length=4)
        return self.lin(params, h)


def build():
    return make(Noisy, is_training=True)
