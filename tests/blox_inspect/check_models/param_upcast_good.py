"""Twin of param_upcast_bad: activations and kernels are both bfloat16."""

import jax
import jax.numpy as jnp

import blox as bx


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    model = bx.Linear(graph / "head", 8, rng, param_dtype=jnp.bfloat16)
    return model, (jax.ShapeDtypeStruct((4, 8), jnp.bfloat16),)
