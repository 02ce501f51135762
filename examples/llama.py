"""A Llama-style decoder (RMSNorm, rotary embeddings, SwiGLU, grouped-query attention, untied head).

Factories for `blox-inspect examples/llama.py:NAME`:

- ``build``: a small 2-layer model (width 256) that runs anywhere.
- ``build_7b``: Llama-2-7B sizes (6,738,415,616 params), bfloat16, sequence 512.
- ``build_70b``: Llama-2-70B sizes (68,976,648,192 params), 8 key/value heads.
- ``build_7b_scan``: the 7B model with its 32 blocks run by one ``lax.scan``.

The big kernels carry Megatron-style sharding metadata on a ``'model'`` mesh
axis, so sharding tools have something to read. Inspect the big ones
abstractly only (``jax.eval_shape``): nothing is allocated. Importing this
file has no side effects.

Example:
    >>> import jax, blox as bx
    >>> model, inputs = build()
    >>> params = jax.eval_shape(lambda ids: model(bx.seed_all(model.graph.root, bx.Params()), ids)[1], *inputs)
    >>> params['llama/model/layers/0/attn/key/kernel'].value.shape  # 4 kv heads of 32
    (256, 128)
"""

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

import blox as bx


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int = 32000
    width: int = 4096
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int | None = None  # None: as many as num_heads (no grouping)
    mlp_size: int = 11008
    norm_epsilon: float = 1e-5
    rope_base: float = 10000.0
    model_axis: str | None = "model"
    param_dtype: Any = jnp.float32
    scan: bool = False


SMALL = LlamaConfig(vocab_size=1000, width=256, num_layers=2, num_heads=8, num_kv_heads=4, mlp_size=688)
LLAMA2_7B = LlamaConfig(param_dtype=jnp.bfloat16)
LLAMA2_70B = LlamaConfig(
    width=8192, num_layers=80, num_heads=64, num_kv_heads=8, mlp_size=28672, param_dtype=jnp.bfloat16
)


class Llama(bx.Module):
    """Token embedding, pre-norm decoder blocks (causal, RoPE), final RMSNorm, separate lm head."""

    def __init__(self, graph: bx.Graph, config: LlamaConfig = SMALL):
        super().__init__(graph)
        c = self.cfg = config
        self.rng = bx.Rng(graph / "rng")
        col = None if c.model_axis is None else {"sharding": (None, c.model_axis)}
        init = jax.nn.initializers.normal(0.02)
        self.embed = bx.Embed(
            graph / "embed", c.vocab_size, c.width, self.rng, init, metadata=col, param_dtype=c.param_dtype
        )

        def make_block(node: bx.Graph) -> bx.TransformerBlock:
            return bx.TransformerBlock(
                node,
                c.num_heads,
                c.width // c.num_heads,
                c.mlp_size,
                self.rng,
                norm="rms",
                norm_epsilon=c.norm_epsilon,
                mlp="swiglu",
                num_kv_heads=c.num_kv_heads,
                rope=True,
                rope_base=c.rope_base,
                use_bias=False,
                model_axis=c.model_axis,
                kernel_init=init,
                param_dtype=c.param_dtype,
            )

        node = graph / "layers"
        if c.scan:
            self.blocks = [bx.ScanBlocks(node, make_block, c.num_layers)]
        else:
            self.blocks = [make_block(node / str(i)) for i in range(c.num_layers)]
        self.norm = bx.RMSNorm(graph / "norm", epsilon=c.norm_epsilon, param_dtype=c.param_dtype)
        self.lm_head = bx.Linear(
            graph / "lm_head",
            c.vocab_size,
            self.rng,
            use_bias=False,
            kernel_init=init,
            kernel_metadata=col,
            param_dtype=c.param_dtype,
        )

    def __call__(self, params: bx.Params, ids: jax.Array) -> tuple[jax.Array, bx.Params]:
        x, params = self.embed(params, ids)
        for block in self.blocks:
            x, params = block(params, x, causal=True)
        x, params = self.norm(params, x)
        return self.lm_head(params, x)


def _build(config: LlamaConfig, seq_len: int):
    model = Llama(bx.Graph("llama") / "model", config)
    return model, (jax.ShapeDtypeStruct((1, seq_len), jnp.int32),)


def build():
    """A small Llama (2 layers, width 256, 8 heads sharing 4 kv heads) on 128 tokens."""
    return _build(SMALL, 128)


def build_7b():
    """Llama-2-7B: 32 layers, width 4096, 32 heads, SwiGLU 11008, vocab 32000, on 512 tokens."""
    return _build(LLAMA2_7B, 512)


def build_7b_scan():
    """Llama-2-7B with one ScanBlocks over 32 stacked layers (flat compile time)."""
    from dataclasses import replace

    return _build(replace(LLAMA2_7B, scan=True), 512)


def build_70b():
    """Llama-2-70B: 80 layers, width 8192, 64 heads over 8 kv heads, SwiGLU 28672, on 512 tokens."""
    return _build(LLAMA2_70B, 512)
