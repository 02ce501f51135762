"""ScanBlocks: N identical blocks run by ``lax.scan`` over params stacked on a leading layer axis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ._errors import ParamError, ShapeError
from ._graph import Graph
from ._module import Module
from ._params import Param, Params
from ._paths import Path, path_str
from ._rng import find_rngs

# Metadata key on stacked params: how many layers the leading axis holds.
LAYERS_KEY = "scan_layers"

MSG_NEW_PARAMS = (
    "{where} (ScanBlocks): the block created params inside the scan ({paths}). All of a block's params are "
    "created on the first call, when Params hold none of them; Params that hold only some of them cannot be "
    "completed layer by layer. Start from Params without {block}, or add the missing params to every layer."
)
MSG_LAYERS = (
    "{where} (ScanBlocks): param {path} has leading axis {got} but this stack has num_layers={want}. Stacked "
    "params hold one slice per layer on axis 0; rebuild them with num_layers={got} or re-initialise."
)
MSG_OUTSIDE = (
    "{where} (ScanBlocks): the block changed the trainable param {path}, which lives outside the block. "
    "Inside the scan only the block's own params and non-trainable state (e.g. Rng counters) may change."
)


def _stack_meta(param: Param, num: int) -> Param:
    meta = dict(param.metadata.to_dict() if param.metadata else {})
    if meta.get("sharding") is not None:
        meta["sharding"] = (None, *meta["sharding"])
    meta[LAYERS_KEY] = num
    return Param(param.value, param.trainable, meta)


def _unstack_meta(param: Param) -> Param:
    meta = dict(param.metadata.to_dict())
    meta.pop(LAYERS_KEY, None)
    if meta.get("sharding") is not None:
        meta["sharding"] = tuple(meta["sharding"])[1:]
    return Param(param.value, param.trainable, meta)


def _remeta(params: Params, fn: Callable[[Param], Param]) -> Params:
    return Params._make({k: fn(p) for k, p in params.items()}, params.is_locked)


class ScanBlocks(Module):
    """Applies ``num_layers`` copies of one block in sequence with ``jax.lax.scan``.

    ``make_block(node)`` builds the block on the node ``graph / 'block'``. Its
    params keep the block's paths (e.g. ``net/h/block/attn/query/kernel``) and
    gain a leading layer axis of size ``num_layers``; their metadata records
    ``scan_layers`` and a sharding spec gets a leading ``None``. The first call
    creates them with ``jax.vmap`` over layers, each layer from its own key:
    every seeded :class:`Rng` hands out one key, and layer ``i`` is seeded with
    ``fold_in(key, i)``. The loop is traced and compiled once, so compile time
    stays flat as depth grows.

    Keyword arguments go to every layer. ``cache`` (from :meth:`init_cache`)
    holds one KV cache per layer; the call then returns ``((x, cache), params)``.
    Non-trainable state outside the block (Rng counters) is carried from layer to
    layer, so each layer's dropout draws its own mask. ``remat=True`` wraps each
    layer in ``jax.checkpoint``.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> stack = bx.ScanBlocks(g / 'h', lambda node: bx.Linear(node, 4, rng), num_layers=3)
        >>> y, params = stack(rng.seed(bx.Params(), 0), jnp.ones((2, 4)))
        >>> y.shape, params['net/h/block/kernel'].value.shape, params['net/h/block/kernel'].metadata
        ((2, 4), (3, 4, 4), {'scan_layers': 3})
    """

    def __init__(self, graph: Graph, make_block: Callable[[Graph], Module], num_layers: int, remat: bool = False):
        super().__init__(graph)
        if num_layers < 1:
            raise ValueError(f"{path_str(graph.path)} (ScanBlocks): num_layers must be >= 1, got {num_layers}.")
        node = graph / "block"
        self.block = make_block(node)
        if not isinstance(self.block, Module) or self.block.graph is not node:
            raise ValueError(
                f"{path_str(graph.path)} (ScanBlocks): make_block(node) must return a blox Module built on the "
                f"node it is given ({path_str(node.path)}), got {self.block!r}."
            )
        self.num_layers = int(num_layers)
        self.remat = remat

    def _mine(self, path: Path, _=None) -> bool:
        prefix = self.block.path
        return path[: len(prefix)] == prefix

    def init_cache(self, batch: int, max_len: int, dtype: Any = jnp.float32) -> Any:
        """One empty block cache per layer, stacked on a leading axis."""
        one = self.block.init_cache(batch, max_len, dtype)
        return jax.tree.map(lambda a: jnp.broadcast_to(a, (self.num_layers, *a.shape)), one)

    def __call__(self, params: Params, x: Any, cache: Any = None, **kwargs: Any) -> tuple[Any, Params]:
        stacked, rest = params.split(self._mine)
        if not stacked:
            params = self._init(params, x, kwargs)
            stacked, rest = params.split(self._mine)
        where = path_str(self.path)
        for path, p in stacked.items():
            if jnp.ndim(p.value) < 1 or p.value.shape[0] != self.num_layers:
                got = p.value.shape[0] if jnp.ndim(p.value) else "none (a scalar)"
                raise ShapeError(MSG_LAYERS.format(where=where, path=path_str(path), got=got, want=self.num_layers))
        carried, consts = rest.split(lambda _, p: not p.trainable)
        layers = _remeta(stacked, _unstack_meta)
        keys = set(layers)

        def body(carry, xs):
            h, state = carry
            layer, layer_cache = xs
            merged = layer.merge(state, consts)
            if layer_cache is None:
                h, merged = self.block(merged, h, **kwargs)
                new_cache = None
            else:
                (h, new_cache), merged = self.block(merged, h, cache=layer_cache, **kwargs)
            new_layer, outside = merged.split(self._mine)
            if set(new_layer) != keys:
                paths = ", ".join(path_str(k) for k in sorted(set(new_layer) ^ keys)[:3])
                raise ParamError(MSG_NEW_PARAMS.format(where=where, paths=paths, block=path_str(self.block.path)))
            new_state, new_consts = outside.split(lambda _, p: not p.trainable)
            for path, p in new_consts.items():
                if path not in consts or p.value is not consts[path].value:
                    raise ParamError(MSG_OUTSIDE.format(where=where, path=path_str(path)))
            return (h, new_state), (new_layer, new_cache)

        step = jax.checkpoint(body) if self.remat else body
        (x, carried), (layers, cache) = jax.lax.scan(step, (x, carried), (layers, cache), length=self.num_layers)
        params = _remeta(layers, lambda p: _stack_meta(p, self.num_layers)).merge(carried, consts)
        if cache is not None:
            return (x, cache), params
        return x, params

    def _init(self, params: Params, x: Any, kwargs: dict) -> Params:
        # One key per seeded Rng for the whole stack; layer i folds in i, so layers differ
        # and two stacks drawing from the same Rng differ too.
        rngs = [r for r in find_rngs(self.graph) if r.param_path("seed") in params]
        before = params
        keys = []
        for r in rngs:
            key, params = r(params)
            keys.append(key)

        def init_layer(i):
            p = params
            for r, key in zip(rngs, keys):
                p = r.seed(p, jax.random.fold_in(key, i))
            _, p = self.block(p, x, **kwargs)
            return p.split(self._mine)[0]

        stacked = jax.vmap(init_layer)(jnp.arange(self.num_layers))
        if not stacked:
            return before  # a block without params: nothing to create, so no key is spent
        return params.merge(_remeta(stacked, lambda p: _stack_meta(p, self.num_layers)))
