"""A 10-step scan of h <- h @ w: our loop-aware count is 10x what XLA's cost analysis sees."""

import jax
import jax.numpy as jnp

import blox as bx

STEPS, B, D = 10, 8, 32


class Loop(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.rng = rng

    def __call__(self, params, h):
        w, params = self.get_param(params, "w", (D, D), jax.nn.initializers.lecun_normal(), rng=self.rng)
        h, _ = jax.lax.scan(lambda c, _: (c @ w, None), h, None, length=STEPS)
        return h, params


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    return Loop(graph / "loop", rng), (jax.ShapeDtypeStruct((B, D), jnp.float32),)
