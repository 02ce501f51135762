"""BERT: word + position + token-type embeddings, post-norm bidirectional encoder blocks, a tanh pooler."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._dropout import Dropout
from .._graph import Graph
from .._linear import Embed, Linear
from .._module import Module
from .._norm import LayerNorm
from .._params import Params
from .._rng import Rng
from .._transformer import TransformerBlock
from ._common import activation, field, finish_from_hf, hf_dict, key_mask, need_is_training, reject
from ._hf_names import HFTensor

# config.json field -> BertConfig field.
HF_FIELDS = {
    "vocab_size": "vocab_size",
    "max_position_embeddings": "max_len",
    "type_vocab_size": "type_vocab_size",
    "hidden_size": "width",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "intermediate_size": "mlp_size",
    "hidden_dropout_prob": "dropout_rate",
    "attention_probs_dropout_prob": "attention_dropout_rate",
    "layer_norm_eps": "norm_epsilon",
    "hidden_act": "activation",
}
HF_UNSUPPORTED = {"position_embedding_type": "absolute", "is_decoder": False, "add_cross_attention": False}


class BertOutput(NamedTuple):
    """What BERT returns (Hugging Face ``BertModel``'s outputs)."""

    last_hidden_state: jax.Array  # (batch, length, width)
    pooler_output: jax.Array | None  # tanh(dense(first token)), or None without a pooler


@dataclass(frozen=True)
class BertConfig:
    """BERT's sizes; the defaults are BERT-base (uncased vocabulary)."""

    vocab_size: int = 30522
    max_len: int = 512
    type_vocab_size: int = 2
    width: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_size: int = 3072
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.1
    norm_epsilon: float = 1e-12
    activation: str = "gelu"
    pooler: bool = True
    param_dtype: Any = jnp.float32
    model_axis: str | None = None
    hf_extra: Mapping = dataclasses.field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def from_hf(cls, hf: Mapping, where: str = "config", **overrides: Any) -> BertConfig:
        """The config a Hugging Face BERT ``config.json`` describes; ``overrides`` replace fields."""
        reject(hf, where, HF_UNSUPPORTED)
        act = field(hf, "hidden_act", where, "BERT", "gelu")
        activation(act, where)
        values = dict(
            vocab_size=field(hf, "vocab_size", where, "BERT", 30522),
            max_len=field(hf, "max_position_embeddings", where, "BERT", 512),
            type_vocab_size=field(hf, "type_vocab_size", where, "BERT", 2),
            width=field(hf, "hidden_size", where, "BERT", 768),
            num_layers=field(hf, "num_hidden_layers", where, "BERT", 12),
            num_heads=field(hf, "num_attention_heads", where, "BERT", 12),
            mlp_size=field(hf, "intermediate_size", where, "BERT", 3072),
            dropout_rate=float(hf.get("hidden_dropout_prob", 0.1)),
            attention_dropout_rate=float(hf.get("attention_probs_dropout_prob", 0.1)),
            norm_epsilon=float(hf.get("layer_norm_eps", 1e-12)),
            activation=act,
        )
        return finish_from_hf(cls, hf, HF_FIELDS, values, overrides)

    def to_hf(self) -> dict:
        """This config as a Hugging Face ``config.json`` dict."""
        return hf_dict(self, HF_FIELDS, "bert", "BertModel", position_embedding_type="absolute")


class Bert(Module):
    """The BERT encoder: embeddings with their own LayerNorm, post-norm blocks, and a tanh pooler.

    Children: ``word_embed``, ``position_embed``, ``token_type_embed``,
    ``embed_norm``, ``drop``, ``layers/0`` ... (:class:`~blox.TransformerBlock`
    with ``norm_position='post'``: ``ln_1`` follows attention, ``ln_2`` the MLP)
    and ``pooler``. Returns a :class:`BertOutput`.

    Call arguments:
        ids: token ids ``(batch, length)``.
        token_type_ids: segment ids ``(batch, length)``; default all 0.
        mask: padding mask ``(batch, length)``, True (or 1) for real tokens.
        positions: position ids; default ``arange(length)``.
        is_training: required when dropout is on (BERT's configs have 0.1).

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx
        >>> from blox.models import Bert, BertConfig
        >>> config = BertConfig(vocab_size=50, max_len=16, width=8, num_layers=1, num_heads=2, mlp_size=16)
        >>> model = Bert(bx.Graph('bert') / 'model', config)
        >>> run = jax.jit(lambda p, ids: model(p, ids, is_training=False))
        >>> out, _ = run(bx.seed_all(model.graph.root, bx.Params()), jnp.ones((2, 5), jnp.int32))
        >>> out.last_hidden_state.shape, out.pooler_output.shape
        ((2, 5, 8), (2, 8))
    """

    HF_PREFIX = "bert"
    # Buffers, and the heads of BertForPreTraining / BertForMaskedLM, which this encoder does not have.
    HF_IGNORED = (r"embeddings\.position_ids", r"cls\..*")

    def __init__(self, graph: Graph, config: BertConfig = BertConfig()):
        super().__init__(graph)
        c = self.cfg = config
        self.rng = Rng(graph / "rng")
        dt = c.param_dtype
        col = None if c.model_axis is None else {"sharding": (None, c.model_axis)}
        init = jax.nn.initializers.normal(0.02)
        common = dict(rng=self.rng, embedding_init=init, metadata=col, param_dtype=dt)
        self.word_embed = Embed(graph / "word_embed", c.vocab_size, c.width, **common)
        self.position_embed = Embed(graph / "position_embed", c.max_len, c.width, **common)
        self.token_type_embed = Embed(graph / "token_type_embed", c.type_vocab_size, c.width, **common)
        self.embed_norm = LayerNorm(graph / "embed_norm", epsilon=c.norm_epsilon, param_dtype=dt)
        self.drop = Dropout(graph / "drop", c.dropout_rate, self.rng) if c.dropout_rate > 0 else None
        act = activation(c.activation, f"{graph.path_str} (Bert)")
        node = graph / "layers"
        self.blocks = [
            TransformerBlock(
                node / str(i),
                c.num_heads,
                c.width // c.num_heads,
                c.mlp_size,
                self.rng,
                dropout_rate=c.dropout_rate,
                attention_dropout_rate=c.attention_dropout_rate,
                norm_epsilon=c.norm_epsilon,
                activation=act,
                norm_position="post",
                model_axis=c.model_axis,
                kernel_init=init,
                param_dtype=dt,
            )
            for i in range(c.num_layers)
        ]
        self.pooler = (
            Linear(graph / "pooler", c.width, self.rng, kernel_init=init, param_dtype=dt) if c.pooler else None
        )
        self.dropout = c.dropout_rate > 0 or c.attention_dropout_rate > 0

    def __call__(
        self,
        params: Params,
        ids: jax.Array,
        *,
        token_type_ids: jax.Array | None = None,
        mask: jax.Array | None = None,
        positions: jax.Array | None = None,
        is_training: bool | None = None,
    ) -> tuple[BertOutput, Params]:
        need_is_training(f"{self.scope_name} (Bert)", is_training, self.dropout)
        x, params = self.word_embed(params, ids)
        positions = jnp.arange(ids.shape[-1]) if positions is None else positions
        pos, params = self.position_embed(params, positions)
        types = jnp.zeros_like(ids) if token_type_ids is None else token_type_ids
        typ, params = self.token_type_embed(params, types)
        x, params = self.embed_norm(params, x + jnp.broadcast_to(pos, x.shape) + typ)
        if self.drop is not None:
            x, params = self.drop(params, x, is_training=bool(is_training))
        kwargs: dict[str, Any] = {"mask": key_mask(mask)}
        if is_training is not None:
            kwargs["is_training"] = is_training
        for block in self.blocks:
            x, params = block(params, x, **kwargs)
        pooled = None
        if self.pooler is not None:
            pooled, params = self.pooler(params, x[:, 0])
            pooled = jnp.tanh(pooled)
        return BertOutput(x, pooled), params

    def example_inputs(self, batch: int = 1, seq_len: int | None = None) -> tuple[tuple, dict]:
        """Abstract ``(inputs, kwargs)``: ``batch`` sequences of ``seq_len`` ids (default max_len)."""
        seq_len = self.cfg.max_len if seq_len is None else seq_len
        kwargs = {"is_training": False} if self.dropout else {}
        return (jax.ShapeDtypeStruct((batch, seq_len), jnp.int32),), kwargs

    def hf_tensors(self) -> list[HFTensor]:
        """Where each param lives in a Hugging Face BERT checkpoint (``BertModel``)."""
        out = [
            HFTensor(("word_embed", "embedding"), "embeddings.word_embeddings", "embed"),
            HFTensor(("position_embed", "embedding"), "embeddings.position_embeddings", "embed"),
            HFTensor(("token_type_embed", "embedding"), "embeddings.token_type_embeddings", "embed"),
            HFTensor(("embed_norm", "scale"), "embeddings.LayerNorm", "layernorm"),
            HFTensor(("embed_norm", "bias"), "embeddings.LayerNorm", "layernorm", "bias"),
        ]
        if self.pooler is not None:
            out.append(HFTensor(("pooler", "kernel"), "pooler.dense", "linear"))
            out.append(HFTensor(("pooler", "bias"), "pooler.dense", "linear", "bias"))
        layer = {
            ("attn", "query"): "attention.self.query",
            ("attn", "key"): "attention.self.key",
            ("attn", "value"): "attention.self.value",
            ("attn", "out"): "attention.output.dense",
            ("mlp", "fc"): "intermediate.dense",
            ("mlp", "proj"): "output.dense",
        }
        for i in range(self.cfg.num_layers):
            blk = dict(blocks=("layers",), layer=i)
            pre = f"encoder.layer.{i}"
            for ours, theirs in (("ln_1", "attention.output.LayerNorm"), ("ln_2", "output.LayerNorm")):
                out.append(HFTensor((ours, "scale"), f"{pre}.{theirs}", "layernorm", **blk))
                out.append(HFTensor((ours, "bias"), f"{pre}.{theirs}", "layernorm", "bias", **blk))
            for sub, theirs in layer.items():
                out.append(HFTensor(sub + ("kernel",), f"{pre}.{theirs}", "linear", **blk))
                out.append(HFTensor(sub + ("bias",), f"{pre}.{theirs}", "linear", "bias", **blk))
        return out

    def hf_layout(self) -> tuple[str, str | None]:
        """The Hugging Face class this model is, and the prefix its base-model tensors carry there."""
        return "BertModel", None
