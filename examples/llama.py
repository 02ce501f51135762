"""A Llama-style decoder (RMSNorm, rotary embeddings, SwiGLU, grouped-query attention, untied head).

The model is ``blox.models.Llama``; this file holds sizes and factories for
`blox-inspect examples/llama.py:NAME`:

- ``build``: a small 2-layer model (width 256) that runs anywhere.
- ``build_7b``: Llama-2-7B sizes (6,738,415,616 params), bfloat16, sequence 512.
- ``build_70b``: Llama-2-70B sizes (68,976,648,192 params), 8 key/value heads.
- ``build_7b_scan``: the 7B model with its 32 blocks run by one ``lax.scan``.

The big kernels carry Megatron-style sharding metadata on a ``'model'`` mesh
axis, so sharding tools have something to read. Inspect the big ones
abstractly only (``jax.eval_shape``): nothing is allocated. Importing this
file has no side effects. Real weights load with ``blox.models.from_hf(folder)``.

Example:
    >>> import jax, blox as bx
    >>> model, inputs = build()
    >>> params = jax.eval_shape(lambda ids: model(bx.seed_all(model.graph.root, bx.Params()), ids)[1], *inputs)
    >>> params['llama/model/layers/0/attn/key/kernel'].value.shape  # 4 kv heads of 32
    (256, 128)
"""

from dataclasses import replace

import jax
import jax.numpy as jnp

import blox as bx
from blox.models import Llama, LlamaConfig

__all__ = ["LLAMA2_70B", "LLAMA2_7B", "SMALL", "Llama", "LlamaConfig", "build", "build_70b", "build_7b"]

SMALL = LlamaConfig(vocab_size=1000, width=256, num_layers=2, num_heads=8, num_kv_heads=4, mlp_size=688)
LLAMA2_7B = LlamaConfig(param_dtype=jnp.bfloat16)
LLAMA2_70B = LlamaConfig(
    width=8192, num_layers=80, num_heads=64, num_kv_heads=8, mlp_size=28672, param_dtype=jnp.bfloat16
)


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
    return _build(replace(LLAMA2_7B, scan=True), 512)


def build_70b():
    """Llama-2-70B: 80 layers, width 8192, 64 heads over 8 kv heads, SwiGLU 28672, on 512 tokens."""
    return _build(LLAMA2_70B, 512)
