"""BX601/BX602/BX603 with --mesh data=8,model=4; BX604 without a mesh.

The up-projection shards 10 columns over 4 devices, the down-projection names an axis 'expert' no mesh
has, the embedding is left replicated though the model shards other params over 'model', and the bias
spec has more entries than the bias has dimensions.
"""

import jax
import jax.numpy as jnp

import blox as bx


class Block(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.embed = bx.Embed(graph / "embed", 1024, 512, rng)
        self.up = bx.Linear(
            graph / "up",
            10,
            rng,
            kernel_metadata={"sharding": (None, "model")},
            bias_metadata={"sharding": ("model", None)},
        )
        self.down = bx.Linear(graph / "down", 512, rng, kernel_metadata={"sharding": ("expert", None)})

    def __call__(self, params, ids):
        h, params = self.embed(params, ids)
        h, params = self.up(params, h)
        return self.down(params, h)


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    return Block(graph / "block", rng), (jax.ShapeDtypeStruct((4, 8), jnp.int32),)
