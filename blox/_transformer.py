"""The Transformer block: pre-norm (GPT-2, ViT, Llama) or post-norm (BERT)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from ._attention import KVCache, MultiHeadAttention
from ._dropout import Dropout
from ._graph import Graph
from ._linear import default_kernel_init
from ._mlp import MLP, SwiGLU
from ._module import Module
from ._norm import LayerNorm, RMSNorm
from ._params import Params
from ._paths import path_str

_NORMS = {"layer": LayerNorm, "rms": RMSNorm}
_MLPS = {"gelu": MLP, "swiglu": SwiGLU}


class TransformerBlock(Module):
    """``x + attn(norm(x))``, then ``x + mlp(norm(x))`` (pre-norm), as in GPT-2, ViT and Llama.

    With ``norm_position='post'`` the norms follow the residual sums instead:
    ``norm(x + attn(x))``, then ``norm(x + mlp(x))``, as in BERT and the original Transformer.

    Children: ``ln_1``, ``attn`` (:class:`MultiHeadAttention`), ``ln_2``, ``mlp``
    (:class:`MLP` for ``mlp='gelu'``, :class:`SwiGLU` for ``mlp='swiglu'``) and,
    with ``dropout_rate > 0``, ``drop_1``/``drop_2`` on the residual branches.
    ``head_size=None`` takes ``width // num_heads`` from the input. ``use_bias``
    applies to every Linear unless ``mlp_bias`` sets the MLP's apart (Llama).
    ``model_axis`` (e.g. ``'model'``) puts Megatron-style tensor-parallel
    sharding metadata on every kernel: column-parallel into the heads and the
    hidden layer, row-parallel out of them.

    The call takes the attention's arguments (``mask``, ``causal``, ``cache``,
    ``positions``) plus ``is_training``, required when any dropout is on. With
    a ``cache`` it returns ``((x, new_cache), params)``.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> block = bx.TransformerBlock(g / 'block', num_heads=2, head_size=4, mlp_size=16, rng=rng,
        ...                             norm='rms', mlp='swiglu', rope=True, use_bias=False)
        >>> y, params = block(rng.seed(bx.Params(), 0), jnp.ones((1, 3, 8)), causal=True)
        >>> y.shape, [bx.path_str(p[2:]) for p in params if p[2] == 'mlp']
        ((1, 3, 8), ['mlp/down/kernel', 'mlp/gate/kernel', 'mlp/up/kernel'])
    """

    def __init__(
        self,
        graph: Graph,
        num_heads: int,
        head_size: int | None,
        mlp_size: int,
        rng: Module | None = None,
        dropout_rate: float = 0.0,
        attention_dropout_rate: float = 0.0,
        norm: str = "layer",
        norm_epsilon: float | None = None,
        activation: Callable | None = None,
        mlp: str = "gelu",
        num_kv_heads: int | None = None,
        rope: bool = False,
        rope_base: float = 10000.0,
        rope_scaling: Mapping | None = None,
        norm_position: str = "pre",
        use_bias: bool = True,
        mlp_bias: bool | None = None,
        model_axis: str | None = None,
        kernel_init: Callable = default_kernel_init,
        param_dtype: Any = jnp.float32,
        implementation: str | None = None,
    ):
        super().__init__(graph)
        where = path_str(graph.path)
        if norm not in _NORMS:
            raise ValueError(f"{where} (TransformerBlock): norm must be one of {sorted(_NORMS)}, got {norm!r}.")
        if mlp not in _MLPS:
            raise ValueError(f"{where} (TransformerBlock): mlp must be one of {sorted(_MLPS)}, got {mlp!r}.")
        if norm_position not in ("pre", "post"):
            raise ValueError(
                f"{where} (TransformerBlock): norm_position must be 'pre' or 'post', got {norm_position!r}."
            )
        self.post_norm = norm_position == "post"
        self.dropout_rate = float(dropout_rate)
        self.attention_dropout_rate = float(attention_dropout_rate)
        norm_kwargs = {} if norm_epsilon is None else {"epsilon": norm_epsilon}
        col = None if model_axis is None else {"sharding": (None, model_axis)}
        row = None if model_axis is None else {"sharding": (model_axis, None)}
        self.ln_1 = _NORMS[norm](graph / "ln_1", **norm_kwargs, param_dtype=param_dtype)
        self.attn = MultiHeadAttention(
            graph / "attn",
            num_heads,
            head_size,
            rng,
            num_kv_heads=num_kv_heads,
            use_bias=use_bias,
            dropout_rate=attention_dropout_rate,
            rope=rope,
            rope_base=rope_base,
            rope_scaling=rope_scaling,
            kernel_init=kernel_init,
            qkv_metadata=col,
            out_metadata=row,
            param_dtype=param_dtype,
            implementation=implementation,
        )
        self.drop_1 = Dropout(graph / "drop_1", dropout_rate, rng) if dropout_rate > 0 else None
        self.ln_2 = _NORMS[norm](graph / "ln_2", **norm_kwargs, param_dtype=param_dtype)
        mlp_kwargs = {} if activation is None else {"activation": activation}
        self.mlp = _MLPS[mlp](
            graph / "mlp",
            mlp_size,
            rng,
            use_bias=use_bias if mlp_bias is None else mlp_bias,
            kernel_init=kernel_init,
            in_metadata=col,
            out_metadata=row,
            param_dtype=param_dtype,
            **mlp_kwargs,
        )
        self.drop_2 = Dropout(graph / "drop_2", dropout_rate, rng) if dropout_rate > 0 else None

    def init_cache(self, batch: int, max_len: int, dtype: Any = jnp.float32, head_size: int | None = None) -> KVCache:
        """An empty KV cache for this block's attention."""
        return self.attn.init_cache(batch, max_len, dtype, head_size)

    def __call__(
        self,
        params: Params,
        x: jax.Array,
        mask: jax.Array | None = None,
        causal: bool = False,
        cache: KVCache | None = None,
        positions: jax.Array | None = None,
        is_training: bool | None = None,
    ) -> tuple[Any, Params]:
        if (self.dropout_rate > 0 or self.attention_dropout_rate > 0) and is_training is None:
            raise ValueError(
                f"{path_str(self.path)} (TransformerBlock): dropout is on, so the call needs is_training=True "
                "or is_training=False."
            )
        h = x
        if not self.post_norm:
            h, params = self.ln_1(params, x)
        a, params = self.attn(
            params, h, mask=mask, causal=causal, cache=cache, positions=positions, is_training=is_training
        )
        if cache is not None:
            a, cache = a
        if self.drop_1 is not None:
            a, params = self.drop_1(params, a, is_training=bool(is_training))
        x = x + a
        if self.post_norm:
            x, params = self.ln_1(params, x)
            h = x
        else:
            h, params = self.ln_2(params, x)
        m, params = self.mlp(params, h)
        if self.drop_2 is not None:
            m, params = self.drop_2(params, m, is_training=bool(is_training))
        x = x + m
        if self.post_norm:
            x, params = self.ln_2(params, x)
        if cache is not None:
            return (x, cache), params
        return x, params
