"""ViT-B/16 at 224x224 with 1000 classes (86,567,656 params), for `blox-inspect examples/vit.py`.

The patch embedding is a Linear over flattened 16x16x3 patches, which has the
same parameters and result as the usual stride-16 convolution. Importing this
file has no side effects.

Example:
    >>> import jax, blox as bx
    >>> model, inputs, kwargs = build()
    >>> params = jax.eval_shape(
    ...     lambda x: model(bx.seed_all(model.graph.root, bx.Params()), x, **kwargs)[1], *inputs)
    >>> sum(p.value.size for p in params.values() if p.trainable)
    86567656
"""

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp

import blox as bx


@dataclass(frozen=True)
class ViTConfig:
    image_size: int = 224
    patch_size: int = 16
    channels: int = 3
    width: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_size: int = 3072
    num_classes: int = 1000
    dropout_rate: float = 0.0


class ViT(bx.Module):
    """Vision Transformer: patches -> tokens, a class token, learned positions, encoder blocks, head."""

    def __init__(self, graph: bx.Graph, config: ViTConfig = ViTConfig()):
        super().__init__(graph)
        c = self.cfg = config
        if c.image_size % c.patch_size:
            raise ValueError(
                f"{graph.path_str} (ViT): image_size {c.image_size} is not a multiple of patch_size {c.patch_size}."
            )
        self.rng = bx.Rng(graph / "rng")
        self.patch_embed = bx.Linear(graph / "patch_embed", c.width, self.rng)
        node = graph / "encoder"
        gelu = functools.partial(jax.nn.gelu, approximate=False)
        self.blocks = [
            bx.TransformerBlock(
                node / str(i),
                c.num_heads,
                c.width // c.num_heads,
                c.mlp_size,
                self.rng,
                dropout_rate=c.dropout_rate,
                norm_epsilon=1e-6,
                activation=gelu,
            )
            for i in range(c.num_layers)
        ]
        self.norm = bx.LayerNorm(graph / "norm", epsilon=1e-6)
        self.head = bx.Linear(graph / "head", c.num_classes, self.rng, kernel_init=jax.nn.initializers.zeros)

    def __call__(self, params: bx.Params, images: jax.Array, *, is_training: bool) -> tuple[jax.Array, bx.Params]:
        c = self.cfg
        b, h, w, ch = images.shape
        p = c.patch_size
        if (h, w, ch) != (c.image_size, c.image_size, c.channels):
            raise bx.ShapeError(
                f"{self.scope_name} (ViT): expected images shaped (batch, {c.image_size}, {c.image_size}, "
                f"{c.channels}), got {tuple(images.shape)}."
            )
        patches = images.reshape(b, h // p, p, w // p, p, ch).transpose(0, 1, 3, 2, 4, 5)
        x, params = self.patch_embed(params, patches.reshape(b, (h // p) * (w // p), p * p * ch))
        init = jax.nn.initializers.normal(0.02)
        cls, params = self.get_param(params, "cls_token", (1, 1, c.width), jax.nn.initializers.zeros)
        pos, params = self.get_param(params, "pos_embed", (1, x.shape[1] + 1, c.width), init, rng=self.rng)
        x = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, c.width)).astype(x.dtype), x], axis=1) + pos
        for block in self.blocks:
            x, params = block(params, x, is_training=is_training)
        x, params = self.norm(params, x[:, 0])
        return self.head(params, x)


def build():
    """ViT-B/16 on one 224x224 RGB image, in eval mode."""
    model = ViT(bx.Graph("vit") / "model")
    return model, (jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32),), {"is_training": False}
