"""Two Linears whose kernels carry 'sharding' metadata (Megatron style: column- then row-parallel)."""

import jax
import jax.numpy as jnp

import blox as bx


class Block(bx.Module):
    def __init__(self, graph, hidden, rng):
        super().__init__(graph)
        self.up = bx.Linear(
            graph / "up",
            hidden,
            rng,
            kernel_metadata={"sharding": (None, "model")},
            bias_metadata={"sharding": ("model",)},
        )
        self.down = bx.Linear(graph / "down", 16, rng, kernel_metadata={"sharding": ("model", None)})

    def __call__(self, params, x):
        h, params = self.up(params, x)
        return self.down(params, jax.nn.gelu(h))


def _build(hidden):
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    return Block(graph / "block", hidden, rng), (jax.ShapeDtypeStruct((16, 16), jnp.float32),)


def build():
    return _build(64)


def build_odd():
    """hidden=30 does not divide over a model axis of 4."""
    return _build(30)
