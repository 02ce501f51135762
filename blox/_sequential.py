"""Sequential: run modules and plain functions in order."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from ._graph import Graph
from ._module import Module
from ._params import Params


def _accepted_kwargs(fn: Callable, kwargs: dict) -> dict:
    if not kwargs:
        return kwargs
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in sig.parameters}


class Sequential(Module):
    """Applies ``layers`` in order. Modules get ``(params, x)``; plain functions get ``x``.

    Keyword arguments (e.g. ``is_training``) go to each layer that accepts them.

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng'); node = g / 'mlp'
        >>> mlp = bx.Sequential(node, [bx.Linear(node / 'l1', 8, rng), jax.nn.relu,
        ...                            bx.Linear(node / 'l2', 2, rng)])
        >>> y, params = mlp(rng.seed(bx.Params(), 0), jnp.ones((3, 4)))
        >>> y.shape
        (3, 2)
    """

    def __init__(self, graph: Graph, layers: Sequence[Module | Callable]):
        super().__init__(graph)
        self.layers = list(layers)

    def __call__(self, params: Params, x: Any, **kwargs: Any) -> tuple[Any, Params]:
        for layer in self.layers:
            if isinstance(layer, Module):
                x, params = layer(params, x, **_accepted_kwargs(layer.__call__, kwargs))
            else:
                x = layer(x, **_accepted_kwargs(layer, kwargs))
        return x, params
