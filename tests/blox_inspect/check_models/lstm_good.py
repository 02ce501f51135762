"""An LSTM over a sequence (a scan inside) with a dense head: every check must stay quiet."""

import jax
import jax.numpy as jnp

import blox as bx


class Tagger(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.lstm = bx.LSTM(graph / "lstm", 16, rng)
        self.head = bx.Linear(graph / "head", 5, rng)

    def __call__(self, params, xs):
        (ys, _), params = self.lstm.apply(params, xs)
        return self.head(params, ys)


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    return Tagger(graph / "tagger", rng), (jax.ShapeDtypeStruct((12, 8), jnp.float32),)
