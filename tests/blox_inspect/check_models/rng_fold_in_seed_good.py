"""Twin of rng_fold_in_seed_bad: each draw asks the Rng for a key, which advances the counter."""

import jax
from _common import Scaled, make


class Noisy(Scaled):
    def __call__(self, params, x, *, is_training):
        key, params = self.rng(params)
        h, params = self.lin(params, x + 0.1 * jax.random.normal(key, x.shape))
        key, params = self.rng(params)
        return h + 0.1 * jax.random.normal(key, h.shape), params


def build():
    return make(Noisy, is_training=True)
