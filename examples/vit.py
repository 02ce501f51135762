"""ViT-B/16 at 224x224 with 1000 classes (86,567,656 params) from ``blox.models``, for `blox-inspect examples/vit.py`.

The patch embedding is a Linear over flattened 16x16x3 patches, which has the
same parameters and result as the usual stride-16 convolution. Importing this
file has no side effects. Real weights load with ``blox.models.from_hf(folder)``.

Example:
    >>> import jax, blox as bx
    >>> model, inputs, kwargs = build()
    >>> params = jax.eval_shape(
    ...     lambda x: model(bx.seed_all(model.graph.root, bx.Params()), x, **kwargs)[1], *inputs)
    >>> sum(p.value.size for p in params.values() if p.trainable)
    86567656
"""

import jax
import jax.numpy as jnp

import blox as bx
from blox.models import ViT, ViTConfig

__all__ = ["ViT", "ViTConfig", "build"]


def build():
    """ViT-B/16 on one 224x224 RGB image, in eval mode."""
    model = ViT(bx.Graph("vit") / "model")
    return model, (jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32),), {"is_training": False}
