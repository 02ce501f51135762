"""Feed-forward blocks of a Transformer: a two-layer MLP and the gated SwiGLU."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from ._attention import _linear
from ._graph import Graph
from ._linear import default_kernel_init
from ._module import Module
from ._params import Params


class _FeedForward(Module):
    """What MLP and SwiGLU share: the output width and activation, and Linears built alike."""

    def __init__(self, graph: Graph, output_size: int | None, activation: Callable):
        super().__init__(graph)
        self.output_size = output_size
        self.activation = activation


class MLP(_FeedForward):
    """``proj(activation(fc(x)))``: widen to ``hidden_size``, then back to ``output_size``.

    ``output_size=None`` keeps the input's width (a residual branch).
    ``in_metadata``/``out_metadata`` land on the ``fc``/``proj`` kernels, e.g.
    ``{'sharding': (None, 'model')}`` and ``{'sharding': ('model', None)}``.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> mlp = bx.MLP(g / 'mlp', 32, rng)
        >>> y, params = mlp(rng.seed(bx.Params(), 0), jnp.ones((2, 8)))
        >>> y.shape, params['net/mlp/fc/kernel'].value.shape
        ((2, 8), (8, 32))
    """

    def __init__(
        self,
        graph: Graph,
        hidden_size: int,
        rng: Module | None = None,
        output_size: int | None = None,
        activation: Callable = jax.nn.gelu,
        use_bias: bool = True,
        kernel_init: Callable = default_kernel_init,
        in_metadata: Mapping | None = None,
        out_metadata: Mapping | None = None,
        param_dtype: Any = jnp.float32,
    ):
        super().__init__(graph, output_size, activation)
        common = dict(rng=rng, use_bias=use_bias, kernel_init=kernel_init, param_dtype=param_dtype)
        self.fc = _linear(graph / "fc", hidden_size, in_metadata, **common)
        self.proj = _linear(graph / "proj", output_size, out_metadata, **common)

    def __call__(self, params: Params, x: jax.Array) -> tuple[jax.Array, Params]:
        h, params = self.fc(params, x)
        # With output_size=None the output keeps the input's width, passed per call (modules stay static).
        return self.proj(params, self.activation(h), _output_size=x.shape[-1])


class SwiGLU(_FeedForward):
    """The gated feed-forward of Llama-style models: ``down(activation(gate(x)) * up(x))``.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> ff = bx.SwiGLU(g / 'ff', 32, rng)
        >>> y, params = ff(rng.seed(bx.Params(), 0), jnp.ones((2, 8)))
        >>> y.shape, sorted(p[-2] for p in params if p[1] == 'ff')
        ((2, 8), ['down', 'gate', 'up'])
    """

    def __init__(
        self,
        graph: Graph,
        hidden_size: int,
        rng: Module | None = None,
        output_size: int | None = None,
        activation: Callable = jax.nn.silu,
        use_bias: bool = False,
        kernel_init: Callable = default_kernel_init,
        in_metadata: Mapping | None = None,
        out_metadata: Mapping | None = None,
        param_dtype: Any = jnp.float32,
    ):
        super().__init__(graph, output_size, activation)
        common = dict(rng=rng, use_bias=use_bias, kernel_init=kernel_init, param_dtype=param_dtype)
        self.gate = _linear(graph / "gate", hidden_size, in_metadata, **common)
        self.up = _linear(graph / "up", hidden_size, in_metadata, **common)
        self.down = _linear(graph / "down", output_size, out_metadata, **common)

    def __call__(self, params: Params, x: jax.Array) -> tuple[jax.Array, Params]:
        g, params = self.gate(params, x)
        u, params = self.up(params, x)
        return self.down(params, self.activation(g) * u, _output_size=x.shape[-1])
