"""Twin of activation_upcast_bad: the params are created in bfloat16 like the inputs."""

import jax
import jax.numpy as jnp

import blox as bx


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    node = graph / "mlp"
    bf16 = jnp.bfloat16
    layers = [
        bx.Linear(node / "l1", 8, rng, param_dtype=bf16),
        jax.nn.relu,
        bx.Linear(node / "l2", 8, rng, param_dtype=bf16),
    ]
    return bx.Sequential(node, layers), (jax.ShapeDtypeStruct((4, 8), bf16),)
