"""A Llama-style decoder written with blox core layers only (a stand-in while examples/llama.py is absent).

Pre-norm RMSNorm, grouped-query attention with rotary embeddings, SwiGLU MLP, untied head.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import blox as bx
from blox._module import lead


def rope(x, base=10000.0):
    seq, dim = x.shape[-3], x.shape[-1]
    freqs = base ** (-jnp.arange(0, dim, 2, dtype=jnp.float32) / dim)
    ang = jnp.arange(seq, dtype=jnp.float32)[:, None] * freqs[None, :]
    cos, sin = jnp.cos(ang)[:, None, :], jnp.sin(ang)[:, None, :]
    x1, x2 = x[..., ::2], x[..., 1::2]
    cos, sin = lead(cos, x1.ndim), lead(sin, x1.ndim)
    out = jnp.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)
    return out.reshape(x.shape).astype(x.dtype)


class Attention(bx.Module):
    def __init__(self, graph, dim, heads, kv_heads, rng, dtype):
        super().__init__(graph)
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        kw = dict(rng=rng, use_bias=False, param_dtype=dtype)
        self.q = bx.Linear(graph / "q", heads * self.head_dim, **kw)
        self.k = bx.Linear(graph / "k", kv_heads * self.head_dim, **kw)
        self.v = bx.Linear(graph / "v", kv_heads * self.head_dim, **kw)
        self.o = bx.Linear(graph / "o", dim, **kw)

    def __call__(self, params, x):
        b, s, _ = x.shape
        q, params = self.q(params, x)
        k, params = self.k(params, x)
        v, params = self.v(params, x)
        q = rope(q.reshape(b, s, self.heads, self.head_dim))
        k = rope(k.reshape(b, s, self.kv_heads, self.head_dim))
        v = v.reshape(b, s, self.kv_heads, self.head_dim)
        rep = self.heads // self.kv_heads
        k, v = jnp.repeat(k, rep, axis=2), jnp.repeat(v, rep, axis=2)
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.float32(self.head_dim)).astype(q.dtype)
        mask = jnp.tril(jnp.ones((s, s), bool))
        scores = jnp.where(lead(mask, 4), scores, jnp.finfo(scores.dtype).min)
        att = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(v.dtype)
        out = jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, s, -1)
        return self.o(params, out)


class MLP(bx.Module):
    def __init__(self, graph, dim, hidden, rng, dtype):
        super().__init__(graph)
        kw = dict(rng=rng, use_bias=False, param_dtype=dtype)
        self.gate = bx.Linear(graph / "gate", hidden, **kw)
        self.up = bx.Linear(graph / "up", hidden, **kw)
        self.down = bx.Linear(graph / "down", dim, **kw)

    def __call__(self, params, x):
        g, params = self.gate(params, x)
        u, params = self.up(params, x)
        return self.down(params, jax.nn.silu(g) * u)


class Block(bx.Module):
    def __init__(self, graph, dim, heads, kv_heads, hidden, rng, dtype):
        super().__init__(graph)
        self.attn_norm = bx.RMSNorm(graph / "attn_norm", param_dtype=dtype)
        self.attn = Attention(graph / "attn", dim, heads, kv_heads, rng, dtype)
        self.mlp_norm = bx.RMSNorm(graph / "mlp_norm", param_dtype=dtype)
        self.mlp = MLP(graph / "mlp", dim, hidden, rng, dtype)

    def __call__(self, params, x):
        h, params = self.attn_norm(params, x)
        h, params = self.attn(params, h)
        x = x + h
        h, params = self.mlp_norm(params, x)
        h, params = self.mlp(params, h)
        return x + h, params


class Llama(bx.Module):
    def __init__(self, graph, vocab, dim, layers, heads, kv_heads, hidden, dtype=jnp.bfloat16):
        super().__init__(graph)
        rng = bx.Rng(graph / "rng")
        self.embed = bx.Embed(graph / "embed", vocab, dim, rng, param_dtype=dtype)
        self.blocks = [Block(graph / f"layer_{i}", dim, heads, kv_heads, hidden, rng, dtype) for i in range(layers)]
        self.norm = bx.RMSNorm(graph / "norm", param_dtype=dtype)
        self.head = bx.Linear(graph / "head", vocab, rng, use_bias=False, param_dtype=dtype)

    def __call__(self, params, ids):
        x, params = self.embed(params, ids)
        for block in self.blocks:
            x, params = block(params, x)
        x, params = self.norm(params, x)
        return self.head(params, x)


def build_70b():
    model = Llama(bx.Graph("net") / "llama", 32000, 8192, 80, 64, 8, 28672)
    return model, (jax.ShapeDtypeStruct((1, 512), jnp.int32),)


def build_tiny():
    model = Llama(bx.Graph("net") / "llama", 256, 64, 2, 4, 2, 128, dtype=jnp.float32)
    return model, (jax.ShapeDtypeStruct((2, 16), jnp.int32),)
