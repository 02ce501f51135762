"""One matmul, x[64, 32] @ kernel[32, 16] with no bias: 2·M·N·K = 65,536 FLOPs in the forward pass."""

import jax
import jax.numpy as jnp

import blox as bx

M, K, N = 64, 32, 16


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    model = bx.Linear(graph / "proj", N, rng, use_bias=False)
    return model, (jax.ShapeDtypeStruct((M, K), jnp.float32),)
