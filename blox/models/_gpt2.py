"""GPT-2: learned positions, pre-norm causal blocks with tanh-GELU MLPs, and an output head tied to the tokens."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from .._dropout import Dropout
from .._graph import Graph
from .._linear import Embed, Linear
from .._module import Module
from .._norm import LayerNorm
from .._params import Params
from .._rng import Rng
from .._scan import ScanBlocks
from .._transformer import TransformerBlock
from ._common import (
    activation,
    cache_start,
    field,
    finish_from_hf,
    hf_dict,
    init_block_cache,
    key_mask,
    need_is_training,
    reject,
    run_blocks,
)
from ._hf_names import HFTensor

# config.json field -> GPT2Config field.
HF_FIELDS = {
    "vocab_size": "vocab_size",
    "n_positions": "max_len",
    "n_embd": "width",
    "n_layer": "num_layers",
    "n_head": "num_heads",
    "n_inner": "mlp_size",
    "resid_pdrop": "dropout_rate",
    "embd_pdrop": "embed_dropout_rate",
    "attn_pdrop": "attention_dropout_rate",
    "layer_norm_epsilon": "norm_epsilon",
    "activation_function": "activation",
    "tie_word_embeddings": "tie_embeddings",
}
# Features of the Hugging Face GPT-2 that change the computation and are not implemented here.
HF_UNSUPPORTED = {"add_cross_attention": False, "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False}


@dataclass(frozen=True)
class GPT2Config:
    """GPT-2's sizes. The defaults are GPT-2 small (124,439,808 params with the tied head).

    ``from_hf`` reads a Hugging Face ``config.json`` (fields in ``HF_FIELDS``);
    ``to_hf`` writes one back, with the fields blox does not model kept from
    the original in ``hf_extra``.
    """

    vocab_size: int = 50257
    max_len: int = 1024
    width: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_size: int = 3072
    dropout_rate: float = 0.1
    embed_dropout_rate: float | None = None  # None: dropout_rate
    attention_dropout_rate: float = 0.0
    norm_epsilon: float = 1e-5
    activation: str = "gelu_new"
    tie_embeddings: bool = True
    param_dtype: Any = jnp.float32
    model_axis: str | None = None
    scan: bool = False  # True: one ScanBlocks over stacked layers instead of separate block modules
    hf_extra: Mapping = dataclasses.field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def from_hf(cls, hf: Mapping, where: str = "config", **overrides: Any) -> GPT2Config:
        """The config a Hugging Face GPT-2 ``config.json`` describes; ``overrides`` replace fields."""
        reject(hf, where, HF_UNSUPPORTED)
        width = field(hf, "n_embd", where, "GPT-2", 768)
        resid = field(hf, "resid_pdrop", where, "GPT-2", 0.1)
        act = field(hf, "activation_function", where, "GPT-2", "gelu_new")
        activation(act, where, "activation_function")
        embd = field(hf, "embd_pdrop", where, "GPT-2", 0.1)
        values = dict(
            vocab_size=field(hf, "vocab_size", where, "GPT-2", 50257),
            max_len=field(hf, "n_positions", where, "GPT-2", 1024),
            width=width,
            num_layers=field(hf, "n_layer", where, "GPT-2", 12),
            num_heads=field(hf, "n_head", where, "GPT-2", 12),
            mlp_size=hf.get("n_inner") or 4 * width,
            dropout_rate=resid,
            embed_dropout_rate=None if embd == resid else embd,
            attention_dropout_rate=field(hf, "attn_pdrop", where, "GPT-2", 0.1),
            norm_epsilon=field(hf, "layer_norm_epsilon", where, "GPT-2", 1e-5),
            activation=act,
            tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
        )
        return finish_from_hf(cls, hf, HF_FIELDS, values, overrides)

    def to_hf(self) -> dict:
        """This config as a Hugging Face ``config.json`` dict."""
        embd = self.dropout_rate if self.embed_dropout_rate is None else self.embed_dropout_rate
        return hf_dict(self, HF_FIELDS, "gpt2", "GPT2LMHeadModel", embd_pdrop=embd)


class GPT2(Module):
    """The GPT-2 decoder: token + position embeddings, pre-norm causal blocks, tied output head.

    Children (as in the original checkpoint): ``wte``, ``wpe``, ``drop``,
    ``h/0`` ... (:class:`~blox.TransformerBlock`), ``ln_f`` and, with
    ``tie_embeddings=False``, ``lm_head``. The call returns logits
    ``(batch, length, vocab)``.

    Call arguments:
        ids: token ids ``(batch, length)``.
        mask: padding mask ``(batch, keys)``, True (or 1) for real tokens;
            with a cache, ``keys`` is the cache length.
        positions: position ids ``(batch, length)``; by default ``arange``
            offset by the cache's fill.
        cache: from :meth:`init_cache`; the call then returns
            ``((logits, cache), params)``.
        is_training: required when any dropout rate is above 0.

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx
        >>> from blox.models import GPT2, GPT2Config
        >>> model = GPT2(bx.Graph('gpt2') / 'transformer', GPT2Config(vocab_size=50, max_len=16, width=8,
        ...              num_layers=2, num_heads=2, mlp_size=32, dropout_rate=0.0))
        >>> ids = jnp.zeros((1, 5), jnp.int32)
        >>> logits, params = jax.jit(model)(bx.seed_all(model.graph.root, bx.Params()), ids)
        >>> logits.shape
        (1, 5, 50)
    """

    HF_PREFIX = "transformer"

    def __init__(self, graph: Graph, config: GPT2Config = GPT2Config()):
        super().__init__(graph)
        c = self.cfg = config
        self.rng = Rng(graph / "rng")
        std = 0.02
        col = None if c.model_axis is None else {"sharding": (None, c.model_axis)}
        dt = c.param_dtype
        self.wte = Embed(graph / "wte", c.vocab_size, c.width, self.rng, _normal(std), metadata=col, param_dtype=dt)
        self.wpe = Embed(graph / "wpe", c.max_len, c.width, self.rng, _normal(0.01), metadata=col, param_dtype=dt)
        embed_rate = c.dropout_rate if c.embed_dropout_rate is None else c.embed_dropout_rate
        self.drop = Dropout(graph / "drop", embed_rate, self.rng) if embed_rate > 0 else None
        act = activation(c.activation, f"{graph.path_str} (GPT2)", "activation_function")

        def make_block(node: Graph) -> TransformerBlock:
            return TransformerBlock(
                node,
                c.num_heads,
                c.width // c.num_heads,
                c.mlp_size,
                self.rng,
                dropout_rate=c.dropout_rate,
                attention_dropout_rate=c.attention_dropout_rate,
                norm_epsilon=c.norm_epsilon,
                activation=act,
                model_axis=c.model_axis,
                kernel_init=_normal(std / math.sqrt(2 * c.num_layers)),
                param_dtype=dt,
            )

        node = graph / "h"
        if c.scan:
            self.h = ScanBlocks(node, make_block, c.num_layers)
            self.blocks = [self.h]
        else:
            self.blocks = [make_block(node / str(i)) for i in range(c.num_layers)]
        self.ln_f = LayerNorm(graph / "ln_f", epsilon=c.norm_epsilon, param_dtype=dt)
        self.lm_head = None
        if not c.tie_embeddings:
            self.lm_head = Linear(
                graph / "lm_head", c.vocab_size, self.rng, use_bias=False, kernel_init=_normal(std),
                kernel_metadata=col, param_dtype=dt,
            )  # fmt: skip
        self.dropout = embed_rate > 0 or c.dropout_rate > 0 or c.attention_dropout_rate > 0

    def init_cache(self, batch: int, max_len: int, dtype: Any = None) -> Any:
        """An empty KV cache per block (one stacked cache with ``scan``), in ``dtype`` (default: the params')."""
        dtype = self.cfg.param_dtype if dtype is None else dtype
        return init_block_cache(self.blocks, batch, max_len, dtype)

    def __call__(
        self,
        params: Params,
        ids: jax.Array,
        *,
        mask: jax.Array | None = None,
        positions: jax.Array | None = None,
        cache: Any = None,
        is_training: bool | None = None,
    ) -> tuple[Any, Params]:
        need_is_training(f"{self.scope_name} (GPT2)", is_training, self.dropout)
        x, params = self.wte(params, ids)
        if positions is None:
            start = 0 if cache is None else cache_start(cache)
            positions = start + jnp.arange(ids.shape[-1])
        pos, params = self.wpe(params, positions)
        x = x + jnp.broadcast_to(pos, x.shape)
        if self.drop is not None:
            x, params = self.drop(params, x, is_training=bool(is_training))
        x, cache, params = run_blocks(self.blocks, params, x, key_mask(mask), cache, is_training)
        x, params = self.ln_f(params, x)
        if self.lm_head is None:
            logits, params = self.wte.attend(params, x)
        else:
            logits, params = self.lm_head(params, x)
        if cache is not None:
            return (logits, cache), params
        return logits, params

    def example_inputs(self, batch: int = 1, seq_len: int | None = None) -> tuple[tuple, dict]:
        """Abstract ``(inputs, kwargs)`` for one call: ``batch`` sequences of ``seq_len`` (default max_len) ids."""
        seq_len = self.cfg.max_len if seq_len is None else seq_len
        kwargs = {"is_training": False} if self.dropout else {}
        return (jax.ShapeDtypeStruct((batch, seq_len), jnp.int32),), kwargs

    # --- Hugging Face checkpoints --------------------------------------------
    HF_IGNORED = (r"h\.\d+\.attn\.(masked_)?bias", r"lm_head\.weight")  # causal-mask buffers; the tied head

    def hf_tensors(self) -> list[HFTensor]:
        """Where each param lives in a Hugging Face GPT-2 checkpoint (``GPT2LMHeadModel``)."""
        c = self.cfg
        out = [
            HFTensor(("wte", "embedding"), "wte", "embed"),
            HFTensor(("wpe", "embedding"), "wpe", "embed"),
            HFTensor(("ln_f", "scale"), "ln_f", "layernorm"),
            HFTensor(("ln_f", "bias"), "ln_f", "layernorm", "bias"),
        ]
        if not c.tie_embeddings:
            out.append(HFTensor(("lm_head", "kernel"), "lm_head", "linear", head=True))
        for i in range(c.num_layers):
            blk = dict(blocks=("h",), layer=i)
            pre = f"h.{i}"
            for ours, theirs in (("ln_1", "ln_1"), ("ln_2", "ln_2")):
                out.append(HFTensor((ours, "scale"), f"{pre}.{theirs}", "layernorm", **blk))
                out.append(HFTensor((ours, "bias"), f"{pre}.{theirs}", "layernorm", "bias", **blk))
            for part, name in enumerate(("query", "key", "value")):
                out.append(
                    HFTensor(("attn", name, "kernel"), f"{pre}.attn.c_attn", "conv1d", split=(1, part, 3), **blk)
                )
                out.append(
                    HFTensor(("attn", name, "bias"), f"{pre}.attn.c_attn", "conv1d", "bias", split=(0, part, 3), **blk)
                )
            for ours, theirs in (("attn/out", "attn.c_proj"), ("mlp/fc", "mlp.c_fc"), ("mlp/proj", "mlp.c_proj")):
                sub = tuple(ours.split("/"))
                out.append(HFTensor(sub + ("kernel",), f"{pre}.{theirs}", "conv1d", **blk))
                out.append(HFTensor(sub + ("bias",), f"{pre}.{theirs}", "conv1d", "bias", **blk))
        return out

    def hf_layout(self) -> tuple[str, str | None]:
        """The Hugging Face class this model is, and the prefix its base-model tensors carry there."""
        return "GPT2LMHeadModel", "transformer"


def _normal(std: float):
    return jax.nn.initializers.normal(std)
