"""Dense layers: Linear and Embed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from ._errors import ShapeError
from ._graph import Graph
from ._module import Module, add_lead, matmul, shape_only_result
from ._params import Params
from ._paths import path_str

default_kernel_init = jax.nn.initializers.lecun_normal()


def kernel_and_bias(layer: Any, params: Params, kernel_shape: tuple[int, ...]) -> tuple[Any, Any, Params]:
    """Gets (creating on first use) ``layer``'s kernel and, with ``use_bias``, its bias over the last kernel axis.

    ``layer`` is a Linear-like module with ``rng``, ``use_bias``, ``kernel_init``, ``bias_init``,
    ``kernel_metadata``, ``bias_metadata`` and ``param_dtype`` (Linear, Conv, ConvTranspose).
    """
    kernel, params = layer.get_param(
        params,
        "kernel",
        kernel_shape,
        layer.kernel_init,
        layer.param_dtype,
        metadata=layer.kernel_metadata,
        rng=layer.rng,
    )
    bias = None
    if layer.use_bias:
        bias, params = layer.get_param(
            params,
            "bias",
            kernel_shape[-1:],
            layer.bias_init,
            layer.param_dtype,
            metadata=layer.bias_metadata,
            rng=layer.rng,
        )
    return kernel, bias, params


class Linear(Module):
    """``y = x @ kernel + bias`` over the last axis, for any number of leading axes.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> lin = bx.Linear(g / 'out', 4, rng)
        >>> y, params = lin(rng.seed(bx.Params(), 0), jnp.ones((2, 3)))
        >>> y.shape, params['net/out/kernel'].value.shape
        ((2, 4), (3, 4))
    """

    def __init__(
        self,
        graph: Graph,
        output_size: int | None,
        rng: Module | None = None,
        use_bias: bool = True,
        kernel_init: Callable = default_kernel_init,
        bias_init: Callable = jax.nn.initializers.zeros,
        kernel_metadata: Mapping | None = None,
        bias_metadata: Mapping | None = None,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
    ):
        super().__init__(graph)
        # None keeps the input's width (resolved on each call, never stored), for residual branches.
        self.output_size = None if output_size is None else int(output_size)
        self.rng = rng
        self.use_bias = use_bias
        self.kernel_init = kernel_init
        self.bias_init = bias_init
        self.kernel_metadata = kernel_metadata
        self.bias_metadata = bias_metadata
        self.param_dtype = param_dtype
        self.precision = precision

    def __call__(self, params: Params, x: jax.Array, *, _output_size: int | None = None) -> tuple[jax.Array, Params]:
        # ``_output_size`` is for parent modules that infer this layer's width from their own input
        # (output_size=None); passing it per call keeps every module attribute fixed after construction.
        if jnp.ndim(x) < 1:
            raise ShapeError(
                f"{path_str(self.path)} (Linear): expected an input with at least one axis (features "
                f"last), got a scalar of shape {jnp.shape(x)}. Add a feature axis: x[..., None]."
            )
        size = self.output_size if self.output_size is not None else _output_size
        size = x.shape[-1] if size is None else size
        kernel, bias, params = kernel_and_bias(self, params, (x.shape[-1], size))
        return shape_only_result(dense, x, kernel, bias, self.precision), params


def dense(x: Any, kernel: Any, bias: Any, precision: Any = None) -> Any:
    """``x @ kernel (+ bias)`` over the last axis of ``x``: a Linear layer's arithmetic."""
    y = matmul(x, kernel, precision)
    return y if bias is None else add_lead(y, bias)


class Embed(Module):
    """A lookup table; ``attend`` multiplies by its transpose (weight tying).

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> emb = bx.Embed(g / 'tok', 10, 4, rng)
        >>> h, params = emb(rng.seed(bx.Params(), 0), jnp.array([1, 2]))
        >>> logits, params = emb.attend(params, h)
        >>> h.shape, logits.shape
        ((2, 4), (2, 10))
    """

    def __init__(
        self,
        graph: Graph,
        num_embeddings: int,
        embedding_size: int,
        rng: Module | None = None,
        embedding_init: Callable = jax.nn.initializers.normal(stddev=0.02),
        metadata: Mapping | None = None,
        param_dtype: Any = jnp.float32,
    ):
        super().__init__(graph)
        self.num_embeddings = int(num_embeddings)
        self.embedding_size = int(embedding_size)
        self.rng = rng
        self.embedding_init = embedding_init
        self.metadata = metadata
        self.param_dtype = param_dtype

    def _table(self, params: Params) -> tuple[jax.Array, Params]:
        return self.get_param(
            params,
            "embedding",
            (self.num_embeddings, self.embedding_size),
            self.embedding_init,
            self.param_dtype,
            metadata=self.metadata,
            rng=self.rng,
        )

    def __call__(self, params: Params, ids: jax.Array) -> tuple[jax.Array, Params]:
        if not jnp.issubdtype(jnp.asarray(ids).dtype, jnp.integer):
            raise ShapeError(
                f"{path_str(self.path)} (Embed): expected integer ids, got dtype {jnp.asarray(ids).dtype}. "
                "Cast token ids with ids.astype(jnp.int32)."
            )
        table, params = self._table(params)
        return jnp.take(table, ids, axis=0), params

    def attend(self, params: Params, x: jax.Array) -> tuple[jax.Array, Params]:
        """Scores ``x`` against every embedding: ``x @ table.T`` (tied output head)."""
        table, params = self._table(params)
        if x.shape[-1] != self.embedding_size:
            raise ShapeError(
                f"{path_str(self.path)} (Embed.attend): expected last axis {self.embedding_size}, "
                f"got input shape {tuple(x.shape)}."
            )
        return jnp.matmul(x, table.T), params
