"""ResNet-50 and ResNet-18: bottleneck (or basic) residual blocks over channels-last images.

ResNet-50 has 25,557,032 trainable parameters; each BatchNorm also holds its
running mean and variance as non-trainable params. Module paths read as
``stem/conv``, ``stage1/block0/conv1``, ``stage1/block0/shortcut/conv`` and
``head``. Strides sit on the 3x3 convolution of each bottleneck (the common
"v1.5" variant; the parameter count is the same either way).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from .._conv import Conv
from .._graph import Graph
from .._linear import Linear
from .._module import Module
from .._norm import BatchNorm
from .._params import Params
from .._pooling import max_pool
from .._rng import Rng
from .._sequential import Sequential

RESNET50_STAGES = (3, 4, 6, 3)
RESNET18_STAGES = (2, 2, 2, 2)
WIDTHS = (64, 128, 256, 512)


def _conv(graph: Graph, name: str, kernel: int, features: int, rng: Rng, stride: int = 1) -> Conv:
    return Conv(
        graph / name,
        (kernel, kernel),
        features,
        rng,
        strides=stride,
        use_bias=False,
        kernel_init=jax.nn.initializers.he_normal(),
    )


class Shortcut(Module):
    """A 1x1 strided projection plus BatchNorm, used where a block changes shape."""

    def __init__(self, graph: Graph, features: int, stride: int, rng: Rng):
        super().__init__(graph)
        self.conv = _conv(graph, "conv", 1, features, rng, stride)
        self.bn = BatchNorm(graph / "bn")

    def __call__(self, params: Params, x: jax.Array, *, is_training: bool) -> tuple[jax.Array, Params]:
        x, params = self.conv(params, x)
        return self.bn(params, x, is_training=is_training)


class Bottleneck(Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand to ``4 * width``, plus the (projected) input."""

    expansion = 4

    def __init__(self, graph: Graph, width: int, stride: int, rng: Rng, project: bool):
        super().__init__(graph)
        self.convs = [
            _conv(graph, "conv1", 1, width, rng),
            _conv(graph, "conv2", 3, width, rng, stride),
            _conv(graph, "conv3", 1, width * self.expansion, rng),
        ]
        self.bns = [BatchNorm(graph / f"bn{i}") for i in (1, 2, 3)]
        self.shortcut = Shortcut(graph / "shortcut", width * self.expansion, stride, rng) if project else None

    def __call__(self, params: Params, x: jax.Array, *, is_training: bool) -> tuple[jax.Array, Params]:
        y = x
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            y, params = conv(params, y)
            y, params = bn(params, y, is_training=is_training)
            if i < len(self.convs) - 1:
                y = jax.nn.relu(y)
        if self.shortcut is not None:
            x, params = self.shortcut(params, x, is_training=is_training)
        return jax.nn.relu(y + x), params


class BasicBlock(Module):
    """Two 3x3 convolutions (the first strided) plus the (projected) input: ResNet-18/34."""

    expansion = 1

    def __init__(self, graph: Graph, width: int, stride: int, rng: Rng, project: bool):
        super().__init__(graph)
        self.convs = [_conv(graph, "conv1", 3, width, rng, stride), _conv(graph, "conv2", 3, width, rng)]
        self.bns = [BatchNorm(graph / "bn1"), BatchNorm(graph / "bn2")]
        self.shortcut = Shortcut(graph / "shortcut", width, stride, rng) if project else None

    __call__ = Bottleneck.__call__


def _stem_pool(x: jax.Array) -> jax.Array:
    return max_pool(x, (3, 3), strides=2, padding="SAME")


class ResNet(Module):
    """A ResNet over channels-last images ``(*batch, height, width, 3)``; returns class logits."""

    def __init__(
        self,
        graph: Graph,
        block: type[Module],
        stage_sizes: Sequence[int],
        rng: Rng,
        num_classes: int = 1000,
        widths: Sequence[int] = WIDTHS,
    ):
        super().__init__(graph)
        stem = graph / "stem"
        self.stem = Sequential(
            stem, [_conv(stem, "conv", 7, widths[0], rng, 2), BatchNorm(stem / "bn"), jax.nn.relu, _stem_pool]
        )
        self.stages = []
        channels = widths[0]
        for s, (size, width) in enumerate(zip(stage_sizes, widths)):
            node = graph / f"stage{s + 1}"
            blocks = []
            for b in range(size):
                stride = 2 if (b == 0 and s > 0) else 1
                project = b == 0 and (stride != 1 or channels != width * block.expansion)
                blocks.append(block(node / f"block{b}", width, stride, rng, project))
                channels = width * block.expansion
            self.stages.append(Sequential(node, blocks))
        self.head = Linear(graph / "head", num_classes, rng)

    def __call__(self, params: Params, x: jax.Array, *, is_training: bool) -> tuple[jax.Array, Params]:
        x, params = self.stem(params, x, is_training=is_training)
        for stage in self.stages:
            x, params = stage(params, x, is_training=is_training)
        x = jnp.mean(x, axis=(-3, -2))  # global average pool over height and width
        return self.head(params, x)


def resnet50(graph: Graph, rng: Rng, num_classes: int = 1000) -> ResNet:
    """ResNet-50: bottleneck stages of (3, 4, 6, 3) blocks.

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx
        >>> from blox.models import resnet50
        >>> g = bx.Graph('net'); model = resnet50(g / 'resnet50', bx.Rng(g / 'rng'))
        >>> init = lambda x: model(bx.seed_all(g, bx.Params()), x, is_training=False)[1]
        >>> params = jax.eval_shape(init, jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32))
        >>> sum(p.value.size for p in params.values() if p.trainable)
        25557032
    """
    return ResNet(graph, Bottleneck, RESNET50_STAGES, rng, num_classes)


def resnet18(graph: Graph, rng: Rng, num_classes: int = 1000) -> ResNet:
    """ResNet-18: basic-block stages of (2, 2, 2, 2) blocks."""
    return ResNet(graph, BasicBlock, RESNET18_STAGES, rng, num_classes)
