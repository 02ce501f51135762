"""A small fixture model file for blox-inspect tests."""

import jax
import jax.numpy as jnp

import blox as bx


class MLP(bx.Module):
    def __init__(self, graph, hidden, out, rng):
        super().__init__(graph)
        self.l1 = bx.Linear(graph / "l1", hidden, rng)
        self.drop = bx.Dropout(graph / "drop", 0.1, rng)
        self.l2 = bx.Linear(graph / "l2", out, rng)

    def __call__(self, params, x, *, is_training):
        h, params = self.l1(params, x)
        h, params = self.drop(params, jax.nn.relu(h), is_training=is_training)
        return self.l2(params, h)


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    model = MLP(graph / "mlp", 32, 10, rng)
    return model, (jax.ShapeDtypeStruct((4, 16), jnp.float32),), {"is_training": False}
