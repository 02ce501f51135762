"""Attention: rotary position embeddings, multi-head (grouped-query) attention and its KV cache."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import ShapeError
from ._graph import Graph
from ._linear import Linear, default_kernel_init
from ._module import Module, lead
from ._params import Params
from ._paths import path_str

MSG_MASK_SHAPE = (
    "{where} (MultiHeadAttention): mask of shape {got} does not broadcast to (batch, heads, query_length, "
    "key_length) = {want}. Pass a boolean mask shaped (query_length, key_length), (batch, query_length, "
    "key_length) or (batch, heads, query_length, key_length); any axis may be 1.{extra}"
)
MSG_MASK_DTYPE = (
    "{where} (MultiHeadAttention): expected a boolean mask (True = attend), got dtype {got}. For an additive "
    "float mask, compare it instead: mask = bias > -1e9."
)
MSG_KV_FEATURES = (
    "{where} (MultiHeadAttention): key_value has {got} features (shape {shape}) but this attention's key "
    "projection was built for {want} (kernel shape {kernel}). Cross-attention inputs must keep the width "
    "they were first called with; project them first or use a separate attention module."
)
MSG_BATCH = (
    "{where} (MultiHeadAttention): query has batch shape {q} (query shape {qshape}) but key_value has "
    "{kv} (shape {kvshape}). Both need the same leading batch axes."
)
MSG_RANK = (
    "{where} (MultiHeadAttention): expected {what} shaped (batch, length, features) or (length, features), "
    "got shape {shape}. Flatten extra batch axes first, or jax.vmap over them."
)
MSG_HEADS = (
    "{where} (MultiHeadAttention): num_heads={heads} does not divide the query width {width} (query shape "
    "{shape}), so head_size cannot be inferred. Pass head_size= explicitly or use a width divisible by num_heads."
)
MSG_CACHE_HEAD_SIZE = (
    "{where} (MultiHeadAttention): init_cache needs the head size, but this attention infers it from its "
    "input width. Pass head_size= to init_cache (width // num_heads) or to the constructor."
)
MSG_CACHE_LEN = (
    "{where} (MultiHeadAttention): this call writes {n} positions into a KV cache of length {max_len}, "
    "which cannot hold them. Make the cache longer with init_cache(batch, max_len)."
)


class KVCache(NamedTuple):
    """Keys and values seen so far, for step-by-step decoding.

    ``key``/``value`` are ``(batch, max_len, num_kv_heads, head_size)``;
    ``index`` (an int32 scalar) is how many positions are filled. It is a
    plain pytree, so it passes through ``jit`` and ``lax.scan``.
    """

    key: jax.Array
    value: jax.Array
    index: jax.Array


ROPE_TYPES = ("default", "linear", "llama3")
MSG_ROPE_SCALING = (
    "apply_rope: rope scaling {got!r} is not supported; expected None or a mapping with 'rope_type' (or 'type') "
    "in {types} and its fields (linear: factor; llama3: factor, low_freq_factor, high_freq_factor, "
    "original_max_position_embeddings). Other schemes (dynamic, yarn, longrope) are not implemented."
)


def rope_frequencies(head_size: int, base: float = 10000.0, scaling: Mapping | None = None) -> np.ndarray:
    """The ``head_size // 2`` rotary angular frequencies ``base ** (-2 i / head_size)``, optionally rescaled.

    ``scaling`` follows the ``rope_scaling`` entry of a Hugging Face ``config.json``:
    ``{'rope_type': 'linear', 'factor': f}`` divides every frequency by ``f``;
    ``{'rope_type': 'llama3', ...}`` (Llama 3.1) keeps wavelengths shorter than
    ``original_max_position_embeddings / high_freq_factor``, divides those longer than
    ``original_max_position_embeddings / low_freq_factor`` by ``factor``, and blends
    linearly in between. Computed in float64 on the host: they are constants.

    Example:
        >>> import blox as bx
        >>> bx.rope_frequencies(4, base=100.0).tolist()
        [1.0, 0.1]
    """
    half = head_size // 2
    freqs = float(base) ** (-np.arange(half, dtype=np.float64) / half)
    if not scaling:
        return freqs
    try:
        kind = scaling.get("rope_type", scaling.get("type", "default"))
    except AttributeError:
        raise ValueError(MSG_ROPE_SCALING.format(got=scaling, types=ROPE_TYPES)) from None
    if kind == "default":
        return freqs
    if kind not in ROPE_TYPES or "factor" not in scaling:
        raise ValueError(MSG_ROPE_SCALING.format(got=dict(scaling), types=ROPE_TYPES))
    factor = float(scaling["factor"])
    if kind == "linear":
        return freqs / factor
    try:
        context = float(scaling["original_max_position_embeddings"])
        low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
    except KeyError:
        raise ValueError(MSG_ROPE_SCALING.format(got=dict(scaling), types=ROPE_TYPES)) from None
    wavelength = 2 * np.pi / freqs
    # 0 at the long-wavelength edge (fully divided by factor), 1 at the short one (kept).
    blend = np.clip((context / wavelength - low) / (high - low), 0.0, 1.0)
    return (1 - blend) * freqs / factor + blend * freqs


def apply_rope(x: jax.Array, positions: jax.Array, base: float = 10000.0, scaling: Mapping | None = None) -> jax.Array:
    """Rotary position embedding of ``x`` shaped ``(..., length, heads, head_size)``.

    Feature ``i`` and ``i + head_size // 2`` form a pair that is rotated by the
    angle ``position * base ** (-2 i / head_size)``, so a query-key dot product
    depends only on the distance between their positions.

    Args:
        x: queries or keys, ``(..., length, heads, head_size)`` with an even ``head_size``.
        positions: integer positions ``(..., length)`` (leading axes broadcast against ``x``).
        base: the wavelength base (``rope_theta`` in Hugging Face configs).
        scaling: optional frequency rescaling (``rope_scaling``), see :func:`rope_frequencies`.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> x = jnp.ones((1, 3, 2, 4))
        >>> y = bx.apply_rope(x, jnp.arange(3))
        >>> y.shape, bool(jnp.allclose(y[:, 0], x[:, 0]))
        ((1, 3, 2, 4), True)
    """
    size = x.shape[-1]
    if x.ndim < 3 or size % 2:
        raise ShapeError(
            f"apply_rope: expected x shaped (..., length, heads, head_size) with an even head_size, got shape "
            f"{tuple(x.shape)}."
        )
    positions = jnp.asarray(positions)
    if positions.ndim < 1 or positions.shape[-1] != x.shape[-3]:
        raise ShapeError(
            f"apply_rope: positions of shape {tuple(positions.shape)} do not match x of shape {tuple(x.shape)}; "
            f"expected positions shaped (..., {x.shape[-3]}) (one per position along x's length axis)."
        )
    half = size // 2
    if isinstance(base, (int, float, np.number)):
        freqs = jnp.asarray(rope_frequencies(size, base, scaling), jnp.float32)
    else:  # a traced base: no host-side constants
        if scaling:
            raise ValueError("apply_rope: scaling needs a concrete (Python number) base, got a traced one.")
        freqs = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions.astype(jnp.float32)[..., None] * lead(freqs, positions.ndim + 1)
    cos = lead(jnp.cos(angles)[..., None, :], x.ndim).astype(x.dtype)
    sin = lead(jnp.sin(angles)[..., None, :], x.ndim).astype(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def _bias_metadata(kernel_metadata: Mapping | None) -> Mapping | None:
    # A bias follows its kernel's output axis, so sharding (a, b) becomes (b,).
    if not kernel_metadata or not kernel_metadata.get("sharding"):
        return None
    return {"sharding": (tuple(kernel_metadata["sharding"])[-1],)}


def _linear(graph: Graph, output_size: int | None, metadata: Mapping | None, **kwargs: Any) -> Linear:
    """A Linear whose kernel carries ``metadata`` and whose bias follows the kernel's output axis."""
    return Linear(graph, output_size, kernel_metadata=metadata, bias_metadata=_bias_metadata(metadata), **kwargs)


class MultiHeadAttention(Module):
    """Multi-head dot-product attention with grouped-query heads, masks, RoPE and a KV cache.

    Self-attention by default; pass ``key_value`` for cross-attention. Inputs
    are ``(batch, length, features)`` (or unbatched ``(length, features)``).
    The children ``query``, ``key``, ``value`` and ``out`` are :class:`Linear`
    layers; ``qkv_metadata`` / ``out_metadata`` land on their kernels, e.g.
    ``{'sharding': (None, 'model')}`` and ``{'sharding': ('model', None)}`` for
    tensor parallelism (biases follow the kernel's output axis).

    ``head_size=None`` infers ``width // num_heads`` from the query on each call.

    Call arguments:
        mask: boolean, True where a query may attend to a key; shaped
            ``(T, S)``, ``(B, T, S)`` or ``(B, N, T, S)`` (axes may be 1). With a
            cache, ``S`` is the cache length.
        causal: each query attends only to keys at or before its position.
        cache: a :class:`KVCache` from :meth:`init_cache`; the call then
            returns ``((out, new_cache), params)``.
        positions: integer positions ``(B, T)`` or ``(T,)`` for RoPE; by default
            ``arange(T)`` offset by the cache index.
        is_training: required when ``dropout_rate > 0`` (attention-weight dropout).

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> attn = bx.MultiHeadAttention(g / 'attn', num_heads=4, head_size=8, rng=rng, num_kv_heads=2)
        >>> x = jnp.ones((2, 5, 16))
        >>> y, params = attn(rng.seed(bx.Params(), 0), x, causal=True)
        >>> y.shape, params['net/attn/key/kernel'].value.shape
        ((2, 5, 16), (16, 16))
    """

    def __init__(
        self,
        graph: Graph,
        num_heads: int,
        head_size: int | None,
        rng: Module | None = None,
        num_kv_heads: int | None = None,
        use_bias: bool = True,
        output_size: int | None = None,
        dropout_rate: float = 0.0,
        rope: bool = False,
        rope_base: float = 10000.0,
        rope_scaling: Mapping | None = None,
        kernel_init: Callable = default_kernel_init,
        qkv_metadata: Mapping | None = None,
        out_metadata: Mapping | None = None,
        param_dtype: Any = jnp.float32,
        implementation: str | None = None,
    ):
        super().__init__(graph)
        where = path_str(graph.path)
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if num_heads < 1 or num_kv_heads < 1 or num_heads % num_kv_heads:
            raise ValueError(
                f"{where} (MultiHeadAttention): num_heads={num_heads} must be a positive multiple of "
                f"num_kv_heads={num_kv_heads} (each key/value head serves num_heads // num_kv_heads query heads)."
            )
        if rope and head_size is not None and head_size % 2:
            raise ValueError(f"{where} (MultiHeadAttention): rope needs an even head_size, got {head_size}.")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"{where} (MultiHeadAttention): dropout_rate must be in [0, 1), got {dropout_rate}.")
        if dropout_rate > 0 and rng is None:
            raise ValueError(f"{where} (MultiHeadAttention): dropout_rate > 0 needs an rng to draw masks from.")
        self.num_heads = int(num_heads)
        # None: width // num_heads, resolved per call (the width is static, so this stays pure).
        self.head_size = None if head_size is None else int(head_size)
        self.num_kv_heads = int(num_kv_heads)
        self.rng = rng
        self.output_size = output_size
        self.dropout_rate = float(dropout_rate)
        self.rope = rope
        self.rope_base = rope_base
        # Checked now (a bad scheme fails at construction), kept as a plain dict.
        self.rope_scaling = None if not rope_scaling else dict(rope_scaling)
        if self.rope_scaling:
            rope_frequencies(2, rope_base, self.rope_scaling)
        self.implementation = implementation
        common = dict(rng=rng, use_bias=use_bias, kernel_init=kernel_init, param_dtype=param_dtype)
        hs = self.head_size
        self.query = _linear(graph / "query", None if hs is None else self.num_heads * hs, qkv_metadata, **common)
        self.key = _linear(graph / "key", None if hs is None else self.num_kv_heads * hs, qkv_metadata, **common)
        self.value = _linear(graph / "value", None if hs is None else self.num_kv_heads * hs, qkv_metadata, **common)
        self.out = _linear(graph / "out", output_size, out_metadata, **common)

    def init_cache(self, batch: int, max_len: int, dtype: Any = jnp.float32, head_size: int | None = None) -> KVCache:
        """An empty cache for ``batch`` sequences of up to ``max_len`` positions."""
        head_size = self.head_size if head_size is None else head_size
        if head_size is None:
            raise ValueError(MSG_CACHE_HEAD_SIZE.format(where=path_str(self.path)))
        shape = (batch, max_len, self.num_kv_heads, head_size)
        return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype), jnp.zeros((), jnp.int32))

    def __call__(
        self,
        params: Params,
        query: jax.Array,
        key_value: jax.Array | None = None,
        mask: jax.Array | None = None,
        causal: bool = False,
        cache: KVCache | None = None,
        positions: jax.Array | None = None,
        is_training: bool | None = None,
    ) -> tuple[Any, Params]:
        where = path_str(self.path)
        if query.ndim not in (2, 3):
            raise ShapeError(MSG_RANK.format(where=where, what="query", shape=tuple(query.shape)))
        unbatched = query.ndim == 2
        cross = key_value is not None
        if cross:
            self._check_key_value(params, query, key_value)
            if self.rope:
                raise ValueError(f"{where} (MultiHeadAttention): rope applies to self-attention only; got key_value.")
            if cache is not None:
                raise ValueError(f"{where} (MultiHeadAttention): the KV cache is for self-attention; got key_value.")
        kv = key_value if cross else query
        if unbatched:
            query, kv = query[None], kv[None]
            positions = None if positions is None else jnp.asarray(positions)[None]
        if self.dropout_rate > 0 and is_training is None:
            raise ValueError(
                f"{where} (MultiHeadAttention): dropout_rate={self.dropout_rate} needs is_training=True or False."
            )
        b, t = query.shape[0], query.shape[1]
        # Validate everything before the projections, so bad inputs fail before any param is created.
        s = kv.shape[1] if cache is None else cache.key.shape[1]
        if cache is not None and t > s:
            raise ShapeError(MSG_CACHE_LEN.format(where=where, n=t, max_len=s))
        full_mask = None if mask is None else self._mask4(mask, b, t, s, cache is not None)
        hs = self._head_size(query)
        q, params = self.query(params, query, _output_size=self.num_heads * hs)
        # With head_size=None the widths are inferred from the query, passed per call (modules stay static).
        k, params = self.key(params, kv, _output_size=self.num_kv_heads * hs)
        v, params = self.value(params, kv, _output_size=self.num_kv_heads * hs)
        q = q.reshape(b, t, self.num_heads, hs)
        k = k.reshape(b, kv.shape[1], self.num_kv_heads, hs)
        v = v.reshape(b, kv.shape[1], self.num_kv_heads, hs)

        start = jnp.zeros((), jnp.int32) if cache is None else cache.index
        if self.rope:
            pos = start + jnp.arange(t, dtype=jnp.int32) if positions is None else jnp.asarray(positions)
            q = apply_rope(q, pos, self.rope_base, self.rope_scaling)
            k = apply_rope(k, pos, self.rope_base, self.rope_scaling)

        new_cache = None
        if cache is not None:
            k = jax.lax.dynamic_update_slice(cache.key, k.astype(cache.key.dtype), (0, start, 0, 0))
            v = jax.lax.dynamic_update_slice(cache.value, v.astype(cache.value.dtype), (0, start, 0, 0))
            new_cache = KVCache(k, v, start + t)
            k, v = k.astype(q.dtype), v.astype(q.dtype)

        use_causal_flag = causal and cache is None
        if cache is not None:
            # Only filled slots are keys; causal means key position <= query position.
            key_pos = jnp.arange(s, dtype=jnp.int32)
            q_pos = start + jnp.arange(t, dtype=jnp.int32)
            limit = q_pos[:, None] if causal else jnp.full((t, 1), start + t - 1)
            filled = (key_pos[None, :] <= limit)[None, None]
            full_mask = filled if full_mask is None else jnp.logical_and(full_mask, filled)

        if self.dropout_rate > 0 and is_training:
            y, params = self._attend_with_dropout(params, q, k, v, full_mask, use_causal_flag)
        else:
            y = jax.nn.dot_product_attention(
                q, k, v, mask=full_mask, is_causal=use_causal_flag, implementation=self.implementation
            )
        y = y.reshape(b, t, self.num_heads * hs)
        out, params = self.out(params, y, _output_size=query.shape[-1])
        if unbatched:
            out = out[0]
        if cache is not None:
            return (out, new_cache), params
        return out, params

    # --- helpers ------------------------------------------------------------
    def _head_size(self, query: jax.Array) -> int:
        if self.head_size is not None:
            return self.head_size
        where, width = path_str(self.path), query.shape[-1]
        if width % self.num_heads:
            raise ShapeError(MSG_HEADS.format(where=where, heads=self.num_heads, width=width, shape=tuple(query.shape)))
        hs = width // self.num_heads
        if self.rope and hs % 2:
            raise ShapeError(
                f"{where} (MultiHeadAttention): rope needs an even head size, got {width} // {self.num_heads} = {hs}."
            )
        return hs

    def _check_key_value(self, params: Params, query: jax.Array, key_value: jax.Array) -> None:
        where = path_str(self.path)
        if key_value.ndim != query.ndim:
            raise ShapeError(MSG_RANK.format(where=where, what="key_value", shape=tuple(key_value.shape)))
        if key_value.shape[:-2] != query.shape[:-2]:
            raise ShapeError(
                MSG_BATCH.format(
                    where=where,
                    q=tuple(query.shape[:-2]),
                    kv=tuple(key_value.shape[:-2]),
                    qshape=tuple(query.shape),
                    kvshape=tuple(key_value.shape),
                )
            )
        found = params.get(self.key.param_path("kernel"))
        if found is not None and found.value.shape[0] != key_value.shape[-1]:
            raise ShapeError(
                MSG_KV_FEATURES.format(
                    where=where,
                    got=key_value.shape[-1],
                    shape=tuple(key_value.shape),
                    want=found.value.shape[0],
                    kernel=tuple(found.value.shape),
                )
            )

    def _mask4(self, mask: Any, b: int, t: int, s: int, cached: bool) -> jax.Array:
        where = path_str(self.path)
        m = jnp.asarray(mask)
        if m.dtype != jnp.bool_:
            raise ShapeError(MSG_MASK_DTYPE.format(where=where, got=m.dtype))
        want = (b, self.num_heads, t, s)
        extra = " With a KV cache, key_length is the cache's max_len." if cached else ""
        if m.ndim == 2:
            m4 = m[None, None]
        elif m.ndim == 3:
            m4 = m[:, None]
        elif m.ndim == 4:
            m4 = m
        else:
            raise ShapeError(MSG_MASK_SHAPE.format(where=where, got=tuple(m.shape), want=want, extra=extra))
        if any(g not in (1, w) for g, w in zip(m4.shape, want)):
            raise ShapeError(MSG_MASK_SHAPE.format(where=where, got=tuple(m.shape), want=want, extra=extra))
        return m4

    def _attend_with_dropout(self, params, q, k, v, mask, causal):
        # jax.nn.dot_product_attention has no dropout, so training with it spells attention out.
        b, t, n, h = q.shape
        s, kh = k.shape[1], k.shape[2]
        g = n // kh
        qg = q.reshape(b, t, kh, g, h)
        logits = jnp.einsum("btkgh,bskh->bkgts", qg, k) / jnp.sqrt(jnp.asarray(h, q.dtype))
        logits = logits.reshape(b, n, t, s)
        keep = jnp.ones((1, 1, t, s), jnp.bool_)
        if causal:
            keep = jnp.tril(keep)
        if mask is not None:
            keep = jnp.logical_and(keep, mask)
        logits = jnp.where(keep, logits, jnp.finfo(logits.dtype).min)
        weights = jax.nn.softmax(logits, axis=-1)
        key, params = self.rng(params)
        drop = jax.random.bernoulli(key, 1.0 - self.dropout_rate, weights.shape)
        weights = jnp.where(drop, weights / (1.0 - self.dropout_rate), jnp.zeros_like(weights))
        y = jnp.einsum("bkgts,bskh->btkgh", weights.reshape(b, kh, g, t, s), v)
        return y.reshape(b, t, n, h), params
