"""Dropout."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._graph import Graph
from ._module import Module
from ._params import Params
from ._paths import path_str


class Dropout(Module):
    """Zeroes a ``rate`` fraction of inputs in training and rescales the rest.

    ``is_training`` is required so a forgotten flag is an error, not a silent
    eval-mode training run. Outside training it is the identity and draws no key.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> drop = bx.Dropout(g / 'drop', 0.5, rng)
        >>> params = rng.seed(bx.Params(), 0)
        >>> y, _ = drop(params, jnp.ones(4), is_training=False)
        >>> y.tolist()
        [1.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, graph: Graph, rate: float, rng: Module, broadcast_dims: tuple[int, ...] = ()):
        super().__init__(graph)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{path_str(graph.path)} (Dropout): rate must be in [0, 1), got {rate}.")
        self.rate = float(rate)
        self.rng = rng
        self.broadcast_dims = tuple(broadcast_dims)

    def __call__(self, params: Params, x: jax.Array, *, is_training: bool) -> tuple[jax.Array, Params]:
        if not is_training or self.rate == 0.0:
            return x, params
        key, params = self.rng(params)
        shape = list(x.shape)
        for d in self.broadcast_dims:
            shape[d] = 1
        keep = jax.random.bernoulli(key, 1.0 - self.rate, tuple(shape))
        return jnp.where(keep, x / (1.0 - self.rate), jnp.zeros_like(x)), params
