"""Rng: JAX's counter-based randomness with its state (seed key, counter) in Params."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._errors import LockedParamsError, RngError
from ._graph import Graph
from ._module import MSG_LOCKED, Module, in_shape_only
from ._params import Param, Params
from ._paths import path_str

MSG_UNSEEDED = (
    "{where} (Rng): not seeded in these Params (no {what}). Seed it once before the first "
    "call: params = rng.seed(params, seed=0). If you loaded Params, check they came from a "
    "model whose Rng sits at the same path."
)


class Rng(Module):
    """A source of PRNG keys whose state lives in Params.

    ``rng.seed(params, seed)`` stores a typed key and a ``uint32`` counter, both
    non-trainable. Each call returns ``fold_in(seed, counter)`` and advances the
    counter, so randomness is reproducible and explicit, and it works under
    ``jit``/``vmap``/``scan`` like any other array.

    Example:
        >>> import blox as bx
        >>> rng = bx.Rng(bx.Graph('net').child('rng'))
        >>> params = rng.seed(bx.Params(), seed=0)
        >>> key, params = rng(params)
        >>> int(rng.get_counter(params))
        1
    """

    def __init__(self, graph: Graph):
        super().__init__(graph)

    def seed(self, params: Params, seed: Any = 0) -> Params:
        """Stores the seed key (from an int or an existing typed key) and a zero counter."""
        if isinstance(seed, jax.Array) and jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
            key = seed
        else:
            key = jax.random.key(seed)
        if params.is_locked and self.param_path("seed") not in params:
            raise LockedParamsError(MSG_LOCKED.format(where=path_str(self.path), type="Rng", name="seed"))
        params = params.set(self.param_path("seed"), Param(key, trainable=False))
        return params.set(self.param_path("counter"), Param(jnp.zeros((), jnp.uint32), trainable=False))

    def _state(self, params: Params, name: str):
        found = params.get(self.param_path(name))
        if found is None:
            raise RngError(MSG_UNSEEDED.format(where=path_str(self.path), what=f"'{name}' param"))
        return found

    def get_seed(self, params: Params) -> jax.Array:
        return self._state(params, "seed").value

    def get_counter(self, params: Params) -> jax.Array:
        return self._state(params, "counter").value

    def __call__(self, params: Params) -> tuple[jax.Array, Params]:
        """Returns ``(fold_in(seed, counter), params with counter + 1)``."""
        seed = self._state(params, "seed")
        counter = self._state(params, "counter")
        if in_shape_only() and type(self) is Rng:
            return seed.value, params  # a key has its seed's shape and dtype (see bx.shape_only)
        key = jax.random.fold_in(seed.value, counter.value)
        params = params.set(self.param_path("counter"), counter.replace(counter.value + jnp.uint32(1)))
        return key, params


def find_rngs(graph: Graph) -> list[Rng]:
    """Every Rng bound anywhere under the root of ``graph``, in creation order."""
    return [m for _, m in graph.root.walk() if isinstance(m, Rng)]


def seed_all(graph: Graph, params: Params, seed: int = 0) -> Params:
    """Seeds every Rng in the graph, each with its own stream derived from ``seed``.

    Example:
        >>> import blox as bx
        >>> g = bx.Graph('net'); a = bx.Rng(g / 'a'); b = bx.Rng(g / 'b')
        >>> len(bx.seed_all(g, bx.Params(), 0))
        4
    """
    base = jax.random.key(seed)
    for i, rng in enumerate(find_rngs(graph)):
        params = rng.seed(params, jax.random.fold_in(base, i) if i else base)
    return params
