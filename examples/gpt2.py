"""GPT-2 small (124,439,808 params) as a blox model, for `blox-inspect examples/gpt2.py`.

The input and output embeddings are tied: the logits are ``wte.attend(x)``.
Module names follow the original checkpoint: ``wte``, ``wpe``, ``h/0/ln_1``,
``h/0/attn``, ``h/0/mlp``, ``ln_f``. Importing this file has no side effects.

Example:
    >>> import jax
    >>> model, inputs, kwargs = build()
    >>> params = jax.eval_shape(lambda ids: model(seed(model), ids, **kwargs)[1], *inputs)
    >>> count_params(params)
    124439808
"""

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

import blox as bx


@dataclass(frozen=True)
class GPT2Config:
    vocab_size: int = 50257
    max_len: int = 1024
    width: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_size: int = 3072
    dropout_rate: float = 0.1
    scan: bool = False  # True: one ScanBlocks over stacked layers instead of 12 separate block modules


class GPT2(bx.Module):
    """The GPT-2 decoder: token + position embeddings, pre-norm causal blocks, tied output head."""

    def __init__(self, graph: bx.Graph, config: GPT2Config = GPT2Config()):
        super().__init__(graph)
        c = self.cfg = config
        self.rng = bx.Rng(graph / "rng")
        std = 0.02
        self.wte = bx.Embed(graph / "wte", c.vocab_size, c.width, self.rng, jax.nn.initializers.normal(std))
        self.wpe = bx.Embed(graph / "wpe", c.max_len, c.width, self.rng, jax.nn.initializers.normal(0.01))
        self.drop = bx.Dropout(graph / "drop", c.dropout_rate, self.rng) if c.dropout_rate > 0 else None

        def make_block(node: bx.Graph) -> bx.TransformerBlock:
            return bx.TransformerBlock(
                node,
                c.num_heads,
                c.width // c.num_heads,
                c.mlp_size,
                self.rng,
                dropout_rate=c.dropout_rate,
                kernel_init=jax.nn.initializers.normal(std / math.sqrt(2 * c.num_layers)),
            )

        node = graph / "h"
        if c.scan:
            self.h = bx.ScanBlocks(node, make_block, c.num_layers)
            self.blocks = [self.h]
        else:
            self.blocks = [make_block(node / str(i)) for i in range(c.num_layers)]
        self.ln_f = bx.LayerNorm(graph / "ln_f")

    def __call__(self, params: bx.Params, ids: jax.Array, *, is_training: bool) -> tuple[jax.Array, bx.Params]:
        x, params = self.wte(params, ids)
        pos, params = self.wpe(params, jnp.arange(ids.shape[-1]))
        x = x + jnp.broadcast_to(pos, x.shape)
        if self.drop is not None:
            x, params = self.drop(params, x, is_training=is_training)
        for block in self.blocks:
            x, params = block(params, x, causal=True, is_training=is_training)
        x, params = self.ln_f(params, x)
        return self.wte.attend(params, x)


def seed(model: bx.Module, seed: int = 0) -> bx.Params:
    """Params holding only the seeded Rngs of ``model``'s graph: the start of an init."""
    return bx.seed_all(model.graph.root, bx.Params(), seed)


def count_params(params: bx.Params) -> int:
    """The number of trainable values (Rng state excluded)."""
    return sum(math.prod(p.value.shape) for p in params.values() if p.trainable)


def build(scan: bool = False, seq_len: int = 1024):
    """GPT-2 small on one sequence of 1024 tokens, run in eval mode."""
    model = GPT2(bx.Graph("gpt2") / "transformer", GPT2Config(scan=scan))
    return model, (jax.ShapeDtypeStruct((1, seq_len), jnp.int32),), {"is_training": False}


def build_scan():
    """The same model with its 12 blocks run by one ``lax.scan`` (params stacked per layer)."""
    return build(scan=True)
