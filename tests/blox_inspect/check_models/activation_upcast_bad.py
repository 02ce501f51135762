"""BX404: bfloat16 inputs hit float32 kernels, so the matmuls upcast the activations and run in float32."""

import jax
import jax.numpy as jnp

import blox as bx


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    node = graph / "mlp"
    model = bx.Sequential(node, [bx.Linear(node / "l1", 8, rng), jax.nn.relu, bx.Linear(node / "l2", 8, rng)])
    return model, (jax.ShapeDtypeStruct((4, 8), jnp.bfloat16),)
