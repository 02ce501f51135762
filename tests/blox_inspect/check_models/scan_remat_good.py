"""One block applied 4 times with lax.scan and jax.checkpoint, Rng state threaded through the carry.

Rematerialisation replays dropout's draws in the backward pass; the checks must not call that key reuse.
"""

import jax
import jax.numpy as jnp

import blox as bx


class Block(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.norm = bx.RMSNorm(graph / "norm")
        self.lin = bx.Linear(graph / "lin", 16, rng)
        self.drop = bx.Dropout(graph / "drop", 0.1, rng)

    def __call__(self, params, x, *, is_training):
        h, params = self.norm(params, x)
        h, params = self.lin(params, h)
        h, params = self.drop(params, jax.nn.silu(h), is_training=is_training)
        return x + h, params


class Looped(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.block = Block(graph / "block", rng)

    def __call__(self, params, x, *, is_training):
        x, params = self.block(params, x, is_training=is_training)  # creates the params on first use

        @jax.checkpoint
        def step(carry, _):
            h, p = carry
            h, p = self.block(p, h, is_training=is_training)
            return (h, p), None

        (x, params), _ = jax.lax.scan(step, (x, params), None, length=4)
        return x, params


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    return Looped(graph / "looped", rng), (jax.ShapeDtypeStruct((4, 16), jnp.float32),), {"is_training": True}
