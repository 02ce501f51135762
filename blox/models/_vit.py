"""ViT: image patches as tokens, a class token, learned positions, pre-norm encoder blocks, a head or a pooler."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._dropout import Dropout
from .._errors import ShapeError
from .._graph import Graph
from .._linear import Linear
from .._module import Module
from .._norm import LayerNorm
from .._params import Params
from .._rng import Rng
from .._transformer import TransformerBlock
from ._common import activation, field, finish_from_hf, hf_dict, need_is_training, reject
from ._hf_names import HFTensor

# config.json field -> ViTConfig field (num_classes comes from id2label with ViTForImageClassification).
HF_FIELDS = {
    "image_size": "image_size",
    "patch_size": "patch_size",
    "num_channels": "channels",
    "hidden_size": "width",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "intermediate_size": "mlp_size",
    "hidden_dropout_prob": "dropout_rate",
    "attention_probs_dropout_prob": "attention_dropout_rate",
    "layer_norm_eps": "norm_epsilon",
    "hidden_act": "activation",
}


class ViTOutput(NamedTuple):
    """What a ViT without a classifier returns (Hugging Face ``ViTModel``'s outputs)."""

    last_hidden_state: jax.Array  # (batch, 1 + patches, width), after the final LayerNorm
    pooler_output: jax.Array | None  # tanh(dense(class token)), or None without a pooler


@dataclass(frozen=True)
class ViTConfig:
    """ViT's sizes; the defaults are ViT-B/16 at 224x224 with 1000 classes (86,567,656 params).

    ``num_classes=0`` drops the classifier: the model then returns a
    :class:`ViTOutput` (with a tanh pooler over the class token when ``pooler``).
    """

    image_size: int = 224
    patch_size: int = 16
    channels: int = 3
    width: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_size: int = 3072
    num_classes: int = 1000
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    norm_epsilon: float = 1e-6
    activation: str = "gelu"
    pooler: bool = False
    param_dtype: Any = jnp.float32
    model_axis: str | None = None
    hf_extra: Mapping = dataclasses.field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def from_hf(cls, hf: Mapping, where: str = "config", **overrides: Any) -> ViTConfig:
        """The config a Hugging Face ViT ``config.json`` describes (``ViTModel`` or ``ViTForImageClassification``)."""
        reject(hf, where, {"qkv_bias": True})
        act = field(hf, "hidden_act", where, "ViT", "gelu")
        activation(act, where)
        classify = "ViTForImageClassification" in (hf.get("architectures") or [])
        values = dict(
            image_size=field(hf, "image_size", where, "ViT", 224),
            patch_size=field(hf, "patch_size", where, "ViT", 16),
            channels=field(hf, "num_channels", where, "ViT", 3),
            width=field(hf, "hidden_size", where, "ViT", 768),
            num_layers=field(hf, "num_hidden_layers", where, "ViT", 12),
            num_heads=field(hf, "num_attention_heads", where, "ViT", 12),
            mlp_size=field(hf, "intermediate_size", where, "ViT", 3072),
            num_classes=len(hf.get("id2label") or {0: 0, 1: 1}) if classify else 0,
            dropout_rate=float(hf.get("hidden_dropout_prob", 0.0)),
            attention_dropout_rate=float(hf.get("attention_probs_dropout_prob", 0.0)),
            norm_epsilon=float(hf.get("layer_norm_eps", 1e-12)),
            activation=act,
            pooler=not classify,
        )
        return finish_from_hf(cls, hf, HF_FIELDS, values, overrides)

    def to_hf(self) -> dict:
        """This config as a Hugging Face ``config.json`` dict."""
        arch = "ViTForImageClassification" if self.num_classes else "ViTModel"
        out = hf_dict(self, HF_FIELDS, "vit", arch, qkv_bias=True)
        if self.num_classes and len(out.get("id2label") or {}) != self.num_classes:
            out["id2label"] = {str(i): f"LABEL_{i}" for i in range(self.num_classes)}
            out["label2id"] = {f"LABEL_{i}": i for i in range(self.num_classes)}
        return out


class ViT(Module):
    """Vision Transformer over channels-last images ``(batch, height, width, channels)``.

    The patch embedding is a Linear over flattened ``patch x patch x channels``
    patches, the same parameters and result as the usual strided convolution.
    Children: ``patch_embed``, ``encoder/0`` ... (pre-norm
    :class:`~blox.TransformerBlock`), ``norm``, then ``head`` (with
    ``num_classes``) or ``pooler``; the class token and positions are this
    module's own ``cls_token`` and ``pos_embed``. Returns logits with a head,
    else a :class:`ViTOutput`.

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx
        >>> from blox.models import ViT, ViTConfig
        >>> config = ViTConfig(image_size=8, patch_size=4, width=8, num_layers=1, num_heads=2, mlp_size=16,
        ...                    num_classes=3)
        >>> model = ViT(bx.Graph('vit') / 'model', config)
        >>> logits, _ = jax.jit(model)(bx.seed_all(model.graph.root, bx.Params()), jnp.ones((2, 8, 8, 3)))
        >>> logits.shape
        (2, 3)
    """

    HF_PREFIX = "vit"
    HF_IGNORED = ()

    def __init__(self, graph: Graph, config: ViTConfig = ViTConfig()):
        super().__init__(graph)
        c = self.cfg = config
        if c.image_size % c.patch_size:
            raise ValueError(
                f"{graph.path_str} (ViT): image_size {c.image_size} is not a multiple of patch_size {c.patch_size}."
            )
        self.rng = Rng(graph / "rng")
        dt = c.param_dtype
        col = None if c.model_axis is None else {"sharding": (None, c.model_axis)}
        self.patch_embed = Linear(graph / "patch_embed", c.width, self.rng, kernel_metadata=col, param_dtype=dt)
        self.drop = Dropout(graph / "drop", c.dropout_rate, self.rng) if c.dropout_rate > 0 else None
        node = graph / "encoder"
        act = activation(c.activation, f"{graph.path_str} (ViT)")
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
                model_axis=c.model_axis,
                param_dtype=dt,
            )
            for i in range(c.num_layers)
        ]
        self.norm = LayerNorm(graph / "norm", epsilon=c.norm_epsilon, param_dtype=dt)
        self.head = None
        self.pooler = None
        if c.num_classes:
            self.head = Linear(
                graph / "head", c.num_classes, self.rng, kernel_init=jax.nn.initializers.zeros, param_dtype=dt
            )
        elif c.pooler:
            self.pooler = Linear(graph / "pooler", c.width, self.rng, param_dtype=dt)
        self.dropout = c.dropout_rate > 0 or c.attention_dropout_rate > 0

    def __call__(self, params: Params, images: jax.Array, *, is_training: bool | None = None) -> tuple[Any, Params]:
        c = self.cfg
        need_is_training(f"{self.scope_name} (ViT)", is_training, self.dropout)
        if images.ndim != 4 or tuple(images.shape[1:]) != (c.image_size, c.image_size, c.channels):
            raise ShapeError(
                f"{self.scope_name} (ViT): expected images shaped (batch, {c.image_size}, {c.image_size}, "
                f"{c.channels}) (channels last), got {tuple(images.shape)}. Hugging Face pixel_values are "
                "channels first: transpose them with images.transpose(0, 2, 3, 1)."
            )
        b, h, w, ch = images.shape
        p = c.patch_size
        patches = images.reshape(b, h // p, p, w // p, p, ch).transpose(0, 1, 3, 2, 4, 5)
        x, params = self.patch_embed(params, patches.reshape(b, (h // p) * (w // p), p * p * ch))
        init = jax.nn.initializers.normal(0.02)
        cls, params = self.get_param(params, "cls_token", (1, 1, c.width), jax.nn.initializers.zeros, c.param_dtype)
        pos, params = self.get_param(
            params, "pos_embed", (1, x.shape[1] + 1, c.width), init, c.param_dtype, rng=self.rng
        )
        x = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, c.width)).astype(x.dtype), x], axis=1) + pos
        if self.drop is not None:
            x, params = self.drop(params, x, is_training=bool(is_training))
        kwargs = {} if is_training is None else {"is_training": is_training}
        for block in self.blocks:
            x, params = block(params, x, **kwargs)
        if self.head is not None:
            x, params = self.norm(params, x[:, 0])
            return self.head(params, x)
        x, params = self.norm(params, x)
        pooled = None
        if self.pooler is not None:
            pooled, params = self.pooler(params, x[:, 0])
            pooled = jnp.tanh(pooled)
        return ViTOutput(x, pooled), params

    def example_inputs(self, batch: int = 1, seq_len: int | None = None) -> tuple[tuple, dict]:
        """Abstract ``(inputs, kwargs)``: ``batch`` channels-last images (``seq_len`` is ignored)."""
        c = self.cfg
        kwargs = {"is_training": False} if self.dropout else {}
        return (jax.ShapeDtypeStruct((batch, c.image_size, c.image_size, c.channels), jnp.float32),), kwargs

    def hf_tensors(self) -> list[HFTensor]:
        """Where each param lives in a Hugging Face ViT checkpoint."""
        c = self.cfg
        p = c.patch_size
        patch = "embeddings.patch_embeddings.projection"
        out = [
            HFTensor(("patch_embed", "kernel"), patch, "conv", fused_shape=(p, p, c.channels, c.width)),
            HFTensor(("patch_embed", "bias"), patch, "conv", "bias"),
            HFTensor(("cls_token",), "embeddings.cls_token", "raw"),
            HFTensor(("pos_embed",), "embeddings.position_embeddings", "raw"),
            HFTensor(("norm", "scale"), "layernorm", "layernorm"),
            HFTensor(("norm", "bias"), "layernorm", "layernorm", "bias"),
        ]
        if self.head is not None:
            out.append(HFTensor(("head", "kernel"), "classifier", "linear", head=True))
            out.append(HFTensor(("head", "bias"), "classifier", "linear", "bias", head=True))
        if self.pooler is not None:
            out.append(HFTensor(("pooler", "kernel"), "pooler.dense", "linear"))
            out.append(HFTensor(("pooler", "bias"), "pooler.dense", "linear", "bias"))
        layer = {
            ("attn", "query"): "attention.attention.query",
            ("attn", "key"): "attention.attention.key",
            ("attn", "value"): "attention.attention.value",
            ("attn", "out"): "attention.output.dense",
            ("mlp", "fc"): "intermediate.dense",
            ("mlp", "proj"): "output.dense",
        }
        for i in range(c.num_layers):
            blk = dict(blocks=("encoder",), layer=i)
            pre = f"encoder.layer.{i}"
            for ours, theirs in (("ln_1", "layernorm_before"), ("ln_2", "layernorm_after")):
                out.append(HFTensor((ours, "scale"), f"{pre}.{theirs}", "layernorm", **blk))
                out.append(HFTensor((ours, "bias"), f"{pre}.{theirs}", "layernorm", "bias", **blk))
            for sub, theirs in layer.items():
                out.append(HFTensor(sub + ("kernel",), f"{pre}.{theirs}", "linear", **blk))
                out.append(HFTensor(sub + ("bias",), f"{pre}.{theirs}", "linear", "bias", **blk))
        return out

    def hf_layout(self) -> tuple[str, str | None]:
        """The Hugging Face class this model is, and the prefix its base-model tensors carry there."""
        return ("ViTForImageClassification", "vit") if self.head is not None else ("ViTModel", None)
