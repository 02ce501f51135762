"""Llama (2 and 3): RMSNorm, rotary positions (with Llama 3 frequency scaling), SwiGLU and grouped-query attention."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from .._attention import rope_frequencies
from .._graph import Graph
from .._linear import Embed, Linear
from .._module import Module
from .._norm import RMSNorm
from .._params import Params
from .._rng import Rng
from .._scan import ScanBlocks
from .._transformer import TransformerBlock
from ._common import (
    activation,
    field,
    finish_from_hf,
    hf_dict,
    init_block_cache,
    key_mask,
    need_is_training,
    run_blocks,
)
from ._hf_names import HFTensor

# config.json field -> LlamaConfig field.
HF_FIELDS = {
    "vocab_size": "vocab_size",
    "hidden_size": "width",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "num_key_value_heads": "num_kv_heads",
    "head_dim": "head_size",
    "intermediate_size": "mlp_size",
    "rms_norm_eps": "norm_epsilon",
    "rope_theta": "rope_base",
    "rope_scaling": "rope_scaling",
    "max_position_embeddings": "max_len",
    "attention_bias": "attention_bias",
    "mlp_bias": "mlp_bias",
    "attention_dropout": "attention_dropout_rate",
    "hidden_act": "activation",
    "tie_word_embeddings": "tie_embeddings",
}


def _frozen(scaling: Mapping | None) -> tuple | None:
    # Stored as sorted pairs so the frozen config stays hashable.
    return None if not scaling else tuple(sorted(dict(scaling).items()))


@dataclass(frozen=True)
class LlamaConfig:
    """Llama's sizes; the defaults are Llama-2-7B's (6,738,415,616 params).

    ``num_kv_heads=None`` means as many as ``num_heads`` (no grouping),
    ``head_size=None`` means ``width // num_heads``. ``rope_scaling`` holds the
    ``rope_scaling`` entry of config.json as sorted ``(key, value)`` pairs
    (``linear`` or ``llama3``; see :func:`blox.rope_frequencies`).
    ``model_axis`` puts Megatron-style sharding metadata on the kernels.
    """

    vocab_size: int = 32000
    width: int = 4096
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int | None = None
    mlp_size: int = 11008
    norm_epsilon: float = 1e-5
    rope_base: float = 10000.0
    model_axis: str | None = "model"
    param_dtype: Any = jnp.float32
    scan: bool = False
    head_size: int | None = None
    rope_scaling: tuple | None = None
    max_len: int = 4096
    attention_bias: bool = False
    mlp_bias: bool = False
    attention_dropout_rate: float = 0.0
    activation: str = "silu"
    tie_embeddings: bool = False
    hf_extra: Mapping = dataclasses.field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "rope_scaling", _frozen(self.rope_scaling))

    @classmethod
    def from_hf(cls, hf: Mapping, where: str = "config", **overrides: Any) -> LlamaConfig:
        """The config a Hugging Face Llama ``config.json`` describes; ``overrides`` replace fields."""
        heads = field(hf, "num_attention_heads", where, "Llama")
        width = field(hf, "hidden_size", where, "Llama")
        act = field(hf, "hidden_act", where, "Llama", "silu")
        activation(act, where)
        base = float(field(hf, "rope_theta", where, "Llama", 10000.0))
        scaling = hf.get("rope_scaling")
        try:
            rope_frequencies(2, base, scaling)
        except ValueError as e:
            raise ValueError(f"{where}: config.json's rope_scaling: {e}") from None
        head_size = hf.get("head_dim")
        values = dict(
            vocab_size=field(hf, "vocab_size", where, "Llama"),
            width=width,
            num_layers=field(hf, "num_hidden_layers", where, "Llama"),
            num_heads=heads,
            num_kv_heads=None if hf.get("num_key_value_heads") in (None, heads) else hf["num_key_value_heads"],
            mlp_size=field(hf, "intermediate_size", where, "Llama"),
            norm_epsilon=float(field(hf, "rms_norm_eps", where, "Llama", 1e-6)),
            rope_base=base,
            rope_scaling=scaling,
            head_size=None if head_size in (None, width // heads) else int(head_size),
            max_len=field(hf, "max_position_embeddings", where, "Llama", 2048),
            attention_bias=bool(hf.get("attention_bias", False)),
            mlp_bias=bool(hf.get("mlp_bias", False)),
            attention_dropout_rate=float(hf.get("attention_dropout", 0.0)),
            activation=act,
            tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        )
        return finish_from_hf(cls, hf, HF_FIELDS, values, overrides)

    def to_hf(self) -> dict:
        """This config as a Hugging Face ``config.json`` dict."""
        return hf_dict(
            self,
            HF_FIELDS,
            "llama",
            "LlamaForCausalLM",
            num_key_value_heads=self.num_heads if self.num_kv_heads is None else self.num_kv_heads,
            head_dim=self.width // self.num_heads if self.head_size is None else self.head_size,
            rope_scaling=None if self.rope_scaling is None else dict(self.rope_scaling),
        )


class Llama(Module):
    """Token embedding, pre-norm causal blocks (RoPE, SwiGLU, GQA), final RMSNorm, output head.

    Children: ``embed``, ``layers/0`` ... (:class:`~blox.TransformerBlock` with
    ``ln_1``, ``attn``, ``ln_2``, ``mlp``), ``norm`` and ``lm_head`` (absent with
    ``tie_embeddings``: the head is ``embed.attend``). The call takes the same
    arguments as :class:`GPT2` (``mask``, ``positions``, ``cache``) and returns
    logits.

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx
        >>> from blox.models import Llama, LlamaConfig
        >>> config = LlamaConfig(vocab_size=50, width=16, num_layers=1, num_heads=4, num_kv_heads=2, mlp_size=24)
        >>> model = Llama(bx.Graph('llama') / 'model', config)
        >>> logits, params = jax.jit(model)(bx.seed_all(model.graph.root, bx.Params()), jnp.zeros((1, 3), jnp.int32))
        >>> logits.shape, params['llama/model/layers/0/attn/key/kernel'].value.shape
        ((1, 3, 50), (16, 8))
    """

    HF_PREFIX = "model"
    # Old checkpoints store RoPE's inverse frequencies as a buffer; a tied head may be stored anyway.
    HF_IGNORED = (r"layers\.\d+\.self_attn\.rotary_emb\.inv_freq",)

    def __init__(self, graph: Graph, config: LlamaConfig = LlamaConfig()):
        super().__init__(graph)
        c = self.cfg = config
        self.rng = Rng(graph / "rng")
        col = None if c.model_axis is None else {"sharding": (None, c.model_axis)}
        init = jax.nn.initializers.normal(0.02)
        dt = c.param_dtype
        self.embed = Embed(graph / "embed", c.vocab_size, c.width, self.rng, init, metadata=col, param_dtype=dt)
        act = activation(c.activation, f"{graph.path_str} (Llama)")
        head_size = c.width // c.num_heads if c.head_size is None else c.head_size

        def make_block(node: Graph) -> TransformerBlock:
            return TransformerBlock(
                node,
                c.num_heads,
                head_size,
                c.mlp_size,
                self.rng,
                attention_dropout_rate=c.attention_dropout_rate,
                norm="rms",
                norm_epsilon=c.norm_epsilon,
                mlp="swiglu",
                activation=act,
                num_kv_heads=c.num_kv_heads,
                rope=True,
                rope_base=c.rope_base,
                rope_scaling=None if c.rope_scaling is None else dict(c.rope_scaling),
                use_bias=c.attention_bias,
                mlp_bias=c.mlp_bias,
                model_axis=c.model_axis,
                kernel_init=init,
                param_dtype=dt,
            )

        node = graph / "layers"
        if c.scan:
            self.blocks = [ScanBlocks(node, make_block, c.num_layers)]
        else:
            self.blocks = [make_block(node / str(i)) for i in range(c.num_layers)]
        self.norm = RMSNorm(graph / "norm", epsilon=c.norm_epsilon, param_dtype=dt)
        self.lm_head = None
        if not c.tie_embeddings:
            self.lm_head = Linear(
                graph / "lm_head", c.vocab_size, self.rng, use_bias=False, kernel_init=init,
                kernel_metadata=col, param_dtype=dt,
            )  # fmt: skip

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
        need_is_training(f"{self.scope_name} (Llama)", is_training, self.cfg.attention_dropout_rate > 0)
        x, params = self.embed(params, ids)
        x, cache, params = run_blocks(self.blocks, params, x, key_mask(mask), cache, is_training, positions)
        x, params = self.norm(params, x)
        if self.lm_head is None:
            logits, params = self.embed.attend(params, x)
        else:
            logits, params = self.lm_head(params, x)
        if cache is not None:
            return (logits, cache), params
        return logits, params

    def example_inputs(self, batch: int = 1, seq_len: int | None = None) -> tuple[tuple, dict]:
        """Abstract ``(inputs, kwargs)``: ``batch`` sequences of ``seq_len`` ids (default min(max_len, 512))."""
        seq_len = min(self.cfg.max_len, 512) if seq_len is None else seq_len
        kwargs = {"is_training": False} if self.cfg.attention_dropout_rate > 0 else {}
        return (jax.ShapeDtypeStruct((batch, seq_len), jnp.int32),), kwargs

    def hf_tensors(self) -> list[HFTensor]:
        """Where each param lives in a Hugging Face Llama checkpoint (``LlamaForCausalLM``)."""
        c = self.cfg
        out = [
            HFTensor(("embed", "embedding"), "embed_tokens", "embed"),
            HFTensor(("norm", "scale"), "norm", "rmsnorm"),
        ]
        if not c.tie_embeddings:
            out.append(HFTensor(("lm_head", "kernel"), "lm_head", "linear", head=True))
        names = {
            ("attn", "query"): ("self_attn.q_proj", c.attention_bias),
            ("attn", "key"): ("self_attn.k_proj", c.attention_bias),
            ("attn", "value"): ("self_attn.v_proj", c.attention_bias),
            ("attn", "out"): ("self_attn.o_proj", c.attention_bias),
            ("mlp", "gate"): ("mlp.gate_proj", c.mlp_bias),
            ("mlp", "up"): ("mlp.up_proj", c.mlp_bias),
            ("mlp", "down"): ("mlp.down_proj", c.mlp_bias),
        }
        for i in range(c.num_layers):
            blk = dict(blocks=("layers",), layer=i)
            pre = f"layers.{i}"
            out.append(HFTensor(("ln_1", "scale"), f"{pre}.input_layernorm", "rmsnorm", **blk))
            out.append(HFTensor(("ln_2", "scale"), f"{pre}.post_attention_layernorm", "rmsnorm", **blk))
            for sub, (theirs, bias) in names.items():
                out.append(HFTensor(sub + ("kernel",), f"{pre}.{theirs}", "linear", **blk))
                if bias:
                    out.append(HFTensor(sub + ("bias",), f"{pre}.{theirs}", "linear", "bias", **blk))
        return out

    def hf_layout(self) -> tuple[str, str | None]:
        """The Hugging Face class this model is, and the prefix its base-model tensors carry there."""
        return "LlamaForCausalLM", "model"
