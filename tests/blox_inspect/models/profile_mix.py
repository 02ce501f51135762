"""For blox-inspect profile: one dominant matmul (alpha), a 10-step scan (beta), and three identical small cells.

The module names are chosen so that no HLO op name XLA invents (``ynn_fusion``, ``while.5``, ``copy.3``) can
carry them: the profile can only find its modules through the ops' op_name metadata.
"""

import jax
import jax.numpy as jnp

import blox as bx

B, K, WIDE = 256, 512, 512  # alpha: 2 * 256 * 512 * 512 = 134 MFLOPs
STEPS, D = 10, 32  # beta: 10 steps of tanh(h[8, 32] @ w[32, 32]), 0.2 MFLOPs


class Loop(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.rng = rng

    def __call__(self, params, h):
        w, params = self.get_param(params, "w", (D, D), jax.nn.initializers.lecun_normal(), rng=self.rng)
        h, _ = jax.lax.scan(lambda c, _: (jnp.tanh(c @ w), None), h, None, length=STEPS)
        return h, params


class Mix(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.alpha = bx.Linear(graph / "alpha", WIDE, rng)
        self.beta = Loop(graph / "beta", rng)
        node = graph / "cell"
        self.cells = [bx.Linear(node / str(i), D, rng) for i in range(3)]

    def __call__(self, params, x):
        h, params = self.alpha(params, x)
        s, params = self.beta(params, h[:8, :D])
        for cell in self.cells:
            s, params = cell(params, s)
        return s, params


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    return Mix(graph / "mix", rng), (jax.ShapeDtypeStruct((B, K), jnp.float32),)
