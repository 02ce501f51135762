"""Shared pieces of the check corpus: a tiny dense block and the usual factory inputs."""

import jax
import jax.numpy as jnp

import blox as bx

X = jax.ShapeDtypeStruct((4, 8), jnp.float32)


class Scaled(bx.Module):
    """A Linear followed by a learned scale; subclasses break one thing."""

    def __init__(self, graph, rng):
        super().__init__(graph)
        self.rng = rng
        self.lin = bx.Linear(graph / "lin", 8, rng)

    def scale(self, params, h):
        s, params = self.get_param(params, "scale", (8,), jax.nn.initializers.ones)
        return h * bx._module.lead(s, h.ndim), params


def make(cls, **call):
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    return cls(graph / "block", rng), (X,), call
