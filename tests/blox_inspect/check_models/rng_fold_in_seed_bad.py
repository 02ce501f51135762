"""BX101: a module folds the Rng's counter into the seed itself, twice, without advancing it."""

import jax
from _common import Scaled, make


class Noisy(Scaled):
    def __call__(self, params, x, *, is_training):
        seed, counter = self.rng.get_seed(params), self.rng.get_counter(params)
        noise_in = jax.random.normal(jax.random.fold_in(seed, counter), x.shape)
        h, params = self.lin(params, x + 0.1 * noise_in)
        noise_out = jax.random.normal(jax.random.fold_in(seed, counter), h.shape)  # same key again
        return h + 0.1 * noise_out, params


def build():
    return make(Noisy, is_training=True)
