"""A GPT-style decoder written the usual way: every check must stay quiet on it.

``build()`` is tiny (for tests); ``build_gpt2_small()`` has GPT-2 small's sizes (for the speed benchmark).
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
        self.out = bx.Linear(graph / "out", dim, rng)
        self.drop = bx.Dropout(graph / "drop", 0.1, rng)

    def __call__(self, params, x, *, is_training):
        b, t, d = x.shape
        qkv, params = self.qkv(params, x)
        q, k, v = jnp.split(qkv.reshape(b, t, 3, self.heads, d // self.heads), 3, axis=2)
        q, k, v = (a[:, :, 0].transpose(0, 2, 1, 3) for a in (q, k, v))
        scores = q @ k.transpose(0, 1, 3, 2) / jnp.sqrt(jnp.float32(d // self.heads))
        mask = jnp.tril(jnp.ones((t, t), bool))
        scores = jnp.where(lead(mask, 4), scores, jnp.finfo(scores.dtype).min)
        weights, params = self.drop(params, jax.nn.softmax(scores, axis=-1), is_training=is_training)
        h = (weights @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
        return self.out(params, h)


class Block(bx.Module):
    def __init__(self, graph, dim, heads, rng):
        super().__init__(graph)
        self.ln1 = bx.LayerNorm(graph / "ln1")
        self.attn = Attention(graph / "attn", dim, heads, rng)
        self.ln2 = bx.LayerNorm(graph / "ln2")
        self.up = bx.Linear(graph / "up", 4 * dim, rng)
        self.down = bx.Linear(graph / "down", dim, rng)
        self.drop = bx.Dropout(graph / "drop", 0.1, rng)

    def __call__(self, params, x, *, is_training):
        h, params = self.ln1(params, x)
        h, params = self.attn(params, h, is_training=is_training)
        x = x + h
        h, params = self.ln2(params, x)
        h, params = self.up(params, h)
        h, params = self.down(params, jax.nn.gelu(h))
        h, params = self.drop(params, h, is_training=is_training)
        return x + h, params


class GPT(bx.Module):
    def __init__(self, graph, vocab, seq, dim, heads, layers, rng):
        super().__init__(graph)
        self.tok = bx.Embed(graph / "tok", vocab, dim, rng)
        self.pos = bx.Embed(graph / "pos", seq, dim, rng)
        self.blocks = [Block(graph / f"block{i}", dim, heads, rng) for i in range(layers)]
        self.ln = bx.LayerNorm(graph / "ln")

    def __call__(self, params, ids, *, is_training):
        h, params = self.tok(params, ids)
        p, params = self.pos(params, jnp.arange(ids.shape[1]))
        h = h + lead(p, h.ndim)
        for block in self.blocks:
            h, params = block(params, h, is_training=is_training)
        h, params = self.ln(params, h)
        return self.tok.attend(params, h)


def cross_entropy(logits, ids):
    logp = jax.nn.log_softmax(logits[:, :-1], axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, ids[:, 1:, None], axis=-1))


BLOX_LOSS = cross_entropy


def _build(vocab, seq, dim, heads, layers, batch):
    graph = bx.Graph("gpt")
    rng = bx.Rng(graph / "rng")
    model = GPT(graph / "model", vocab, seq, dim, heads, layers, rng)
    return model, (jax.ShapeDtypeStruct((batch, seq), jnp.int32),), {"is_training": False}


def build():
    return _build(vocab=64, seq=16, dim=32, heads=4, layers=2, batch=2)


def build_gpt2_small():
    return _build(vocab=50257, seq=1024, dim=768, heads=12, layers=12, batch=1)
