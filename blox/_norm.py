"""Normalisation layers: LayerNorm, RMSNorm, BatchNorm."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from ._graph import Graph
from ._module import Module, lead
from ._params import Params


class LayerNorm(Module):
    """Normalises the last axis to zero mean and unit variance, then scales and shifts.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> ln = bx.LayerNorm(bx.Graph('net') / 'ln')
        >>> y, params = ln(bx.Params(), jnp.array([[1.0, 2.0, 3.0]]))
        >>> [round(float(v), 3) for v in y[0]]
        [-1.225, 0.0, 1.225]
    """

    def __init__(
        self,
        graph: Graph,
        epsilon: float = 1e-5,
        use_scale: bool = True,
        use_bias: bool = True,
        scale_init: Callable = jax.nn.initializers.ones,
        bias_init: Callable = jax.nn.initializers.zeros,
        metadata: Mapping | None = None,
        param_dtype: Any = jnp.float32,
    ):
        super().__init__(graph)
        self.epsilon = epsilon
        self.use_scale = use_scale
        self.use_bias = use_bias
        self.scale_init = scale_init
        self.bias_init = bias_init
        self.metadata = metadata
        self.param_dtype = param_dtype

    def __call__(self, params: Params, x: jax.Array) -> tuple[jax.Array, Params]:
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        y = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
        features = (x.shape[-1],)
        if self.use_scale:
            scale, params = self.get_param(
                params, "scale", features, self.scale_init, self.param_dtype, metadata=self.metadata
            )
            y = y * lead(scale, y.ndim)
        if self.use_bias:
            bias, params = self.get_param(
                params, "bias", features, self.bias_init, self.param_dtype, metadata=self.metadata
            )
            y = y + lead(bias, y.ndim)
        return y, params


class RMSNorm(Module):
    """Divides by the root mean square of the last axis, then scales.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> y, _ = bx.RMSNorm(bx.Graph('net') / 'n')(bx.Params(), jnp.array([3.0, 4.0]))
        >>> [round(float(v), 3) for v in y]
        [0.849, 1.131]
    """

    def __init__(
        self,
        graph: Graph,
        epsilon: float = 1e-6,
        use_scale: bool = True,
        scale_init: Callable = jax.nn.initializers.ones,
        metadata: Mapping | None = None,
        param_dtype: Any = jnp.float32,
    ):
        super().__init__(graph)
        self.epsilon = epsilon
        self.use_scale = use_scale
        self.scale_init = scale_init
        self.metadata = metadata
        self.param_dtype = param_dtype

    def __call__(self, params: Params, x: jax.Array) -> tuple[jax.Array, Params]:
        ms = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
        y = x * jax.lax.rsqrt(ms + self.epsilon)
        if self.use_scale:
            scale, params = self.get_param(
                params, "scale", (x.shape[-1],), self.scale_init, self.param_dtype, metadata=self.metadata
            )
            y = y * lead(scale, y.ndim)
        return y, params


class BatchNorm(Module):
    """Normalises each feature (last axis) over all other axes.

    In training it uses the batch statistics and updates the running mean and
    variance (non-trainable params) with ``momentum``; otherwise it uses the
    running statistics. With ``axis_name`` the batch statistics are averaged
    across devices (``lax.pmean``) inside ``shard_map``/``pmap``/``vmap``.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> bn = bx.BatchNorm(bx.Graph('net') / 'bn')
        >>> y, params = bn(bx.Params(), jnp.array([[0.0], [2.0]]), is_training=True)
        >>> params['net/bn/mean'].value.tolist(), params['net/bn/mean'].trainable
        ([0.10000000149011612], False)
    """

    def __init__(
        self,
        graph: Graph,
        momentum: float = 0.9,
        epsilon: float = 1e-5,
        use_scale: bool = True,
        use_bias: bool = True,
        axis_name: str | None = None,
        scale_init: Callable = jax.nn.initializers.ones,
        bias_init: Callable = jax.nn.initializers.zeros,
        param_dtype: Any = jnp.float32,
    ):
        super().__init__(graph)
        self.momentum = momentum
        self.epsilon = epsilon
        self.use_scale = use_scale
        self.use_bias = use_bias
        self.axis_name = axis_name
        self.scale_init = scale_init
        self.bias_init = bias_init
        self.param_dtype = param_dtype

    def __call__(self, params: Params, x: jax.Array, *, is_training: bool) -> tuple[jax.Array, Params]:
        features = (x.shape[-1],)
        ra_mean, params = self.get_param(
            params, "mean", features, jax.nn.initializers.zeros, self.param_dtype, trainable=False
        )
        ra_var, params = self.get_param(
            params, "var", features, jax.nn.initializers.ones, self.param_dtype, trainable=False
        )
        if is_training:
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x, axis=axes)
            mean_sq = jnp.mean(jnp.square(x), axis=axes)
            if self.axis_name is not None:
                mean, mean_sq = jax.lax.pmean((mean, mean_sq), self.axis_name)
            var = jnp.maximum(mean_sq - jnp.square(mean), 0.0)
            m = self.momentum
            stat = jax.lax.stop_gradient
            params = self.set_param(params, "mean", (m * ra_mean + (1 - m) * stat(mean)).astype(ra_mean.dtype))
            params = self.set_param(params, "var", (m * ra_var + (1 - m) * stat(var)).astype(ra_var.dtype))
        else:
            mean, var = ra_mean, ra_var
        y = (x - lead(mean, x.ndim)) * lead(jax.lax.rsqrt(var + self.epsilon), x.ndim)
        if self.use_scale:
            scale, params = self.get_param(params, "scale", features, self.scale_init, self.param_dtype)
            y = y * lead(scale, y.ndim)
        if self.use_bias:
            bias, params = self.get_param(params, "bias", features, self.bias_init, self.param_dtype)
            y = y + lead(bias, y.ndim)
        return y, params
