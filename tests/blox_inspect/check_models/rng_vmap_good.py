"""Twin of rng_vmap_bad: each example's id is folded into the key, so lanes draw different masks."""

import jax
import jax.numpy as jnp
from _common import Scaled, X

import blox as bx

BLOX_CHECK_VMAP = True


class PerExample(Scaled):
    def __call__(self, params, x, example_id):
        h, params = self.lin(params, x)
        key, params = self.rng(params)
        key = jax.random.fold_in(key, example_id)
        return jnp.where(jax.random.bernoulli(key, 0.9, h.shape), h / 0.9, 0.0), params


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    return PerExample(graph / "block", rng), (X, jax.ShapeDtypeStruct((), jnp.int32))
