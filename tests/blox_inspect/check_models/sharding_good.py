"""Twin of sharding_bad: every large param is sharded over 'model' with divisible dimensions."""

import jax
import jax.numpy as jnp

import blox as bx


class Block(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.embed = bx.Embed(graph / "embed", 1024, 512, rng, metadata={"sharding": (None, "model")})
        self.up = bx.Linear(
            graph / "up", 16, rng, kernel_metadata={"sharding": (None, "model")}, bias_metadata={"sharding": ("model",)}
        )
        self.down = bx.Linear(graph / "down", 512, rng, kernel_metadata={"sharding": ("model", None)})

    def __call__(self, params, ids):
        h, params = self.embed(params, ids)
        h, params = self.up(params, h)
        return self.down(params, h)


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    return Block(graph / "block", rng), (jax.ShapeDtypeStruct((4, 8), jnp.int32),)
