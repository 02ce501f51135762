"""GPT-2 small (124,439,808 params) from blox core layers: a fixture for blox-inspect tests and benchmarks.

Learned positions, pre-norm blocks with fused qkv attention and a GELU MLP, head tied to the token
embedding (Embed.attend).
"""

import jax
import jax.numpy as jnp

import blox as bx
from blox._module import lead


class Attention(bx.Module):
    def __init__(self, graph, dim, heads, rng):
        super().__init__(graph)
        self.heads = heads
        self.qkv = bx.Linear(graph / "qkv", 3 * dim, rng)
        self.proj = bx.Linear(graph / "proj", dim, rng)

    def __call__(self, params, x):
        b, s, d = x.shape
        qkv, params = self.qkv(params, x)
        q, k, v = jnp.split(qkv.reshape(b, s, 3, self.heads, d // self.heads), 3, axis=2)
        q, k, v = q[:, :, 0], k[:, :, 0], v[:, :, 0]
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.float32(d // self.heads))
        mask = lead(jnp.tril(jnp.ones((s, s), bool)), 4)
        att = jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1)
        return self.proj(params, jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, s, d))


class Block(bx.Module):
    def __init__(self, graph, dim, heads, rng):
        super().__init__(graph)
        self.ln1 = bx.LayerNorm(graph / "ln1")
        self.attn = Attention(graph / "attn", dim, heads, rng)
        self.ln2 = bx.LayerNorm(graph / "ln2")
        self.fc = bx.Linear(graph / "fc", 4 * dim, rng)
        self.out = bx.Linear(graph / "out", dim, rng)

    def __call__(self, params, x):
        h, params = self.ln1(params, x)
        h, params = self.attn(params, h)
        x = x + h
        h, params = self.ln2(params, x)
        h, params = self.fc(params, h)
        h, params = self.out(params, jax.nn.gelu(h))
        return x + h, params


class GPT2(bx.Module):
    def __init__(self, graph, vocab=50257, ctx=1024, dim=768, layers=12, heads=12):
        super().__init__(graph)
        rng = bx.Rng(graph / "rng")
        self.wte = bx.Embed(graph / "wte", vocab, dim, rng)
        self.wpe = bx.Embed(graph / "wpe", ctx, dim, rng)
        self.blocks = [Block(graph / f"h{i}", dim, heads, rng) for i in range(layers)]
        self.ln_f = bx.LayerNorm(graph / "ln_f")

    def __call__(self, params, ids):
        x, params = self.wte(params, ids)
        pos, params = self.wpe(params, jnp.arange(ids.shape[-1]))
        x = x + lead(pos, x.ndim)
        for block in self.blocks:
            x, params = block(params, x)
        x, params = self.ln_f(params, x)
        return self.wte.attend(params, x)


def build():
    return GPT2(bx.Graph("net") / "gpt2"), (jax.ShapeDtypeStruct((1, 1024), jnp.int32),)
