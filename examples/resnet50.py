"""ResNet-50 (and ResNet-18), the reference convolutional architecture, from ``blox.models``.

``build()`` is the factory ``blox-inspect examples/resnet50.py`` uses: it
returns the model, abstract ImageNet-sized inputs and the call kwargs, and
allocates nothing. ResNet-50 has 25,557,032 trainable parameters; each
BatchNorm also holds its running mean and variance as non-trainable params.

Module paths read as ``net/resnet50/stem/conv``, ``.../stage1/block0/conv1``,
``.../stage1/block0/shortcut/conv`` and ``.../head``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import blox as bx
from blox.models import BasicBlock, Bottleneck, ResNet, Shortcut, resnet18, resnet50

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "Shortcut", "build", "build_resnet18", "resnet18", "resnet50"]


def build():
    """The blox-inspect factory: ResNet-50 on one 224x224 RGB image, in eval mode."""
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    model = resnet50(graph / "resnet50", rng)
    return model, (jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32),), {"is_training": False}


def build_resnet18():
    """ResNet-18 on one 224x224 RGB image, in eval mode (``blox-inspect examples/resnet50.py:build_resnet18``)."""
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    model = resnet18(graph / "resnet18", rng)
    return model, (jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32),), {"is_training": False}


if __name__ == "__main__":
    model, inputs, kwargs = build()

    def init(x):
        params = bx.seed_all(model.graph.root, bx.Params(), 0)
        return model(params, x, **kwargs)[1]

    abstract = jax.eval_shape(init, *inputs)
    trainable, rest = abstract.split()
    print(
        f"ResNet-50: {sum(p.value.size for p in trainable.values()):,} trainable parameters, "
        f"{sum(p.value.size for p in rest.values()):,} other values (BatchNorm statistics, Rng state)"
    )
