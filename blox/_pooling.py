"""Pooling over the spatial axes of channels-last input: max_pool, min_pool, avg_pool."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._conv import Padding, normalize_padding, same_pads
from ._errors import ShapeError

MSG_POOL_RANK = (
    "{fn}: a {n}-D window {window} needs input (*batch, {spatial}, channels) with at least {need} axes, "
    "got shape {shape}. Channels go last; add a channel axis with x[..., None]."
)
MSG_POOL_SMALL = (
    "{fn}: the window spans {win} positions along spatial axis {axis} but the padded input has only "
    "{size} (input shape {shape}, window {window}, padding {padding!r}). Use padding='SAME' or a smaller window."
)


def _resolve(fn: str, x: jax.Array, window_shape, strides, padding):
    window = tuple(int(w) for w in window_shape)
    n = len(window)
    shape = tuple(jnp.shape(x))
    if len(shape) < n + 1:
        raise ShapeError(
            MSG_POOL_RANK.format(
                fn=fn, n=n, window=window, spatial=", ".join(f"s{i}" for i in range(n)), need=n + 1, shape=shape
            )
        )
    if strides is None:
        strides = window
    elif isinstance(strides, int):
        strides = (strides,) * n
    strides = tuple(int(s) for s in strides)
    if len(strides) != n:
        raise ValueError(f"{fn}: strides needs one entry per spatial axis ({n}), got {strides}.")
    spatial = shape[len(shape) - n - 1 : -1]
    mode = normalize_padding(padding, n, fn)
    if mode == "SAME":
        pads = same_pads(spatial, window, strides)
    else:
        pads = ((0, 0),) * n if mode == "VALID" else mode
        for axis, (size, win, (lo, hi)) in enumerate(zip(spatial, window, pads)):
            if size + lo + hi < win:
                raise ShapeError(
                    MSG_POOL_SMALL.format(
                        fn=fn, win=win, axis=axis, size=size + lo + hi, shape=shape, window=window, padding=padding
                    )
                )
    lead = len(shape) - n - 1
    dims = (1,) * lead + window + (1,)
    full_strides = (1,) * lead + strides + (1,)
    full_pads = ((0, 0),) * lead + tuple(pads) + ((0, 0),)
    return dims, full_strides, full_pads


def _pool(fn: str, x, init: Any, op: Callable, window_shape, strides, padding) -> jax.Array:
    dims, strides, pads = _resolve(fn, x, window_shape, strides, padding)
    # A concrete numpy init lets lax recognise max/min as monoids, whose reduce_window
    # primitives are differentiable; a traced init (jnp, under jit) would not be.
    return jax.lax.reduce_window(x, np.asarray(init, x.dtype), op, dims, strides, pads)


def max_pool(
    x: jax.Array, window_shape: Sequence[int], strides: int | Sequence[int] | None = None, padding: Padding = "VALID"
) -> jax.Array:
    """The maximum over each window of the spatial axes of ``(*batch, *spatial, channels)`` input.

    ``len(window_shape)`` is the number of spatial axes; ``strides=None`` means
    non-overlapping windows (strides equal to the window). Padded positions
    never win.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> x = jnp.arange(16.0).reshape(4, 4, 1)
        >>> bx.max_pool(x, (2, 2))[..., 0].tolist()
        [[5.0, 7.0], [13.0, 15.0]]
    """
    x = jnp.asarray(x)
    return _pool("max_pool", x, _lowest(x.dtype), jax.lax.max, window_shape, strides, padding)


def min_pool(
    x: jax.Array, window_shape: Sequence[int], strides: int | Sequence[int] | None = None, padding: Padding = "VALID"
) -> jax.Array:
    """The minimum over each window; see :func:`max_pool` for the arguments.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> bx.min_pool(jnp.array([[3.0], [1.0], [2.0]]), (2,), strides=1).tolist()
        [[1.0], [1.0]]
    """
    x = jnp.asarray(x)
    return _pool("min_pool", x, _highest(x.dtype), jax.lax.min, window_shape, strides, padding)


def avg_pool(
    x: jax.Array, window_shape: Sequence[int], strides: int | Sequence[int] | None = None, padding: Padding = "VALID"
) -> jax.Array:
    """The mean over each window; with padding, only real (unpadded) elements count.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> x = jnp.array([[1.0], [2.0], [3.0]])
        >>> bx.avg_pool(x, (2,), strides=2, padding='SAME').tolist()
        [[1.5], [3.0]]
    """
    x = jnp.asarray(x)
    dims, strides, pads = _resolve("avg_pool", x, window_shape, strides, padding)
    total = jax.lax.reduce_window(x, np.asarray(0, x.dtype), jax.lax.add, dims, strides, pads)
    if all(p == (0, 0) for p in pads):
        return total / np.prod(dims)
    # Real elements per window, computed on one (batch- and channel-free) slice so it broadcasts.
    n = len(window_shape)
    ones = jnp.ones((1,) * (x.ndim - n - 1) + x.shape[-n - 1 : -1] + (1,), x.dtype)
    count = jax.lax.reduce_window(ones, np.asarray(0, x.dtype), jax.lax.add, dims, strides, pads)
    return total / count


def _lowest(dtype) -> Any:
    return -jnp.inf if jnp.issubdtype(dtype, jnp.floating) else jnp.iinfo(dtype).min


def _highest(dtype) -> Any:
    return jnp.inf if jnp.issubdtype(dtype, jnp.floating) else jnp.iinfo(dtype).max
