"""BX403: bfloat16 kernels meet float32 activations, so every matmul silently runs in float32."""

import jax.numpy as jnp
from _common import X

import blox as bx


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    model = bx.Linear(graph / "head", 8, rng, param_dtype=jnp.bfloat16)
    return model, (X,)
