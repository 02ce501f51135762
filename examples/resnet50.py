"""ResNet-50 (and ResNet-18) in blox, the reference convolutional architecture.

``build()`` is the factory ``blox-inspect examples/resnet50.py`` uses: it
returns the model, abstract ImageNet-sized inputs and the call kwargs, and
allocates nothing. ResNet-50 has 25,557,032 trainable parameters; each
BatchNorm also holds its running mean and variance as non-trainable params.

Module paths read as ``net/resnet50/stem/conv``, ``.../stage1/block0/conv1``,
``.../stage1/block0/shortcut/conv`` and ``.../head``. Strides sit on the 3x3
convolution of each bottleneck (the common "v1.5" variant; the parameter
count is the same either way).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

import blox as bx

RESNET50_STAGES = (3, 4, 6, 3)
RESNET18_STAGES = (2, 2, 2, 2)
WIDTHS = (64, 128, 256, 512)


def _conv(graph: bx.Graph, name: str, kernel: int, features: int, rng: bx.Rng, stride: int = 1) -> bx.Conv:
    return bx.Conv(
        graph / name,
        (kernel, kernel),
        features,
        rng,
        strides=stride,
        use_bias=False,
        kernel_init=jax.nn.initializers.he_normal(),
    )


class Shortcut(bx.Module):
    """A 1x1 strided projection plus BatchNorm, used where a block changes shape."""

    def __init__(self, graph: bx.Graph, features: int, stride: int, rng: bx.Rng):
        super().__init__(graph)
        self.conv = _conv(graph, "conv", 1, features, rng, stride)
        self.bn = bx.BatchNorm(graph / "bn")

    def __call__(self, params: bx.Params, x: jax.Array, *, is_training: bool) -> tuple[jax.Array, bx.Params]:
        x, params = self.conv(params, x)
        return self.bn(params, x, is_training=is_training)


class Bottleneck(bx.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand to ``4 * width``, plus the (projected) input."""

    expansion = 4

    def __init__(self, graph: bx.Graph, width: int, stride: int, rng: bx.Rng, project: bool):
        super().__init__(graph)
        self.convs = [
            _conv(graph, "conv1", 1, width, rng),
            _conv(graph, "conv2", 3, width, rng, stride),
            _conv(graph, "conv3", 1, width * self.expansion, rng),
        ]
        self.bns = [bx.BatchNorm(graph / f"bn{i}") for i in (1, 2, 3)]
        self.shortcut = Shortcut(graph / "shortcut", width * self.expansion, stride, rng) if project else None

    def __call__(self, params: bx.Params, x: jax.Array, *, is_training: bool) -> tuple[jax.Array, bx.Params]:
        y = x
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            y, params = conv(params, y)
            y, params = bn(params, y, is_training=is_training)
            if i < len(self.convs) - 1:
                y = jax.nn.relu(y)
        if self.shortcut is not None:
            x, params = self.shortcut(params, x, is_training=is_training)
        return jax.nn.relu(y + x), params


class BasicBlock(bx.Module):
    """Two 3x3 convolutions (the first strided) plus the (projected) input: ResNet-18/34."""

    expansion = 1

    def __init__(self, graph: bx.Graph, width: int, stride: int, rng: bx.Rng, project: bool):
        super().__init__(graph)
        self.convs = [_conv(graph, "conv1", 3, width, rng, stride), _conv(graph, "conv2", 3, width, rng)]
        self.bns = [bx.BatchNorm(graph / "bn1"), bx.BatchNorm(graph / "bn2")]
        self.shortcut = Shortcut(graph / "shortcut", width, stride, rng) if project else None

    __call__ = Bottleneck.__call__


def _stem_pool(x: jax.Array) -> jax.Array:
    return bx.max_pool(x, (3, 3), strides=2, padding="SAME")


class ResNet(bx.Module):
    """A ResNet over channels-last images ``(*batch, height, width, 3)``; returns class logits."""

    def __init__(
        self,
        graph: bx.Graph,
        block: type[bx.Module],
        stage_sizes: Sequence[int],
        rng: bx.Rng,
        num_classes: int = 1000,
        widths: Sequence[int] = WIDTHS,
    ):
        super().__init__(graph)
        stem = graph / "stem"
        self.stem = bx.Sequential(
            stem, [_conv(stem, "conv", 7, widths[0], rng, 2), bx.BatchNorm(stem / "bn"), jax.nn.relu, _stem_pool]
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
            self.stages.append(bx.Sequential(node, blocks))
        self.head = bx.Linear(graph / "head", num_classes, rng)

    def __call__(self, params: bx.Params, x: jax.Array, *, is_training: bool) -> tuple[jax.Array, bx.Params]:
        x, params = self.stem(params, x, is_training=is_training)
        for stage in self.stages:
            x, params = stage(params, x, is_training=is_training)
        x = jnp.mean(x, axis=(-3, -2))  # global average pool over height and width
        return self.head(params, x)


def resnet50(graph: bx.Graph, rng: bx.Rng, num_classes: int = 1000) -> ResNet:
    return ResNet(graph, Bottleneck, RESNET50_STAGES, rng, num_classes)


def resnet18(graph: bx.Graph, rng: bx.Rng, num_classes: int = 1000) -> ResNet:
    return ResNet(graph, BasicBlock, RESNET18_STAGES, rng, num_classes)


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
