"""Twin of rng_loop_bad: the step index is folded into the key."""

import jax
import jax.numpy as jnp
from _common import Scaled, make


class Noisy(Scaled):
    def __call__(self, params, x, *, is_training):
        key, params = self.rng(params)

        def step(h, i):
            return h + 0.1 * jax.random.normal(jax.random.fold_in(key, i), h.shape), None

        h, _ = jax.lax.scan(step, x, jnp.arange(4))
        return self.lin(params, h)


def build():
    return make(Noisy, is_training=True)
