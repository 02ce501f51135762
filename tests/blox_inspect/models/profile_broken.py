"""For blox-inspect profile: a module whose matmul cannot be traced (a kernel of the wrong input width)."""

import jax
import jax.numpy as jnp

import blox as bx


class Wrong(bx.Module):
    def __call__(self, params, x):
        w, params = self.get_param(params, "w", (x.shape[-1] + 1, 4), jax.nn.initializers.zeros)
        return x @ w, params


def build():
    graph = bx.Graph("net")
    return Wrong(graph / "wrong"), (jax.ShapeDtypeStruct((2, 3), jnp.float32),)
