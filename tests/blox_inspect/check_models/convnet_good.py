"""A small ResNet-style ConvNet (strided conv, BatchNorm, dropout, residual): every check must stay quiet."""

import jax
import jax.numpy as jnp

import blox as bx


class ConvBlock(bx.Module):
    def __init__(self, graph, channels, rng):
        super().__init__(graph)
        self.conv1 = bx.Conv(graph / "conv1", (3, 3), channels, rng, use_bias=False)
        self.bn1 = bx.BatchNorm(graph / "bn1")
        self.conv2 = bx.Conv(graph / "conv2", (3, 3), channels, rng, use_bias=False)
        self.bn2 = bx.BatchNorm(graph / "bn2")

    def __call__(self, params, x, *, is_training):
        h, params = self.conv1(params, x)
        h, params = self.bn1(params, h, is_training=is_training)
        h, params = self.conv2(params, jax.nn.relu(h))
        h, params = self.bn2(params, h, is_training=is_training)
        return jax.nn.relu(x + h), params


class ConvNet(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.stem = bx.Conv(graph / "stem", (3, 3), 8, rng, strides=2)
        self.blocks = [ConvBlock(graph / f"block{i}", 8, rng) for i in range(2)]
        self.drop = bx.Dropout(graph / "drop", 0.2, rng)
        self.head = bx.Linear(graph / "head", 10, rng)

    def __call__(self, params, x, *, is_training):
        h, params = self.stem(params, x)
        for block in self.blocks:
            h, params = block(params, h, is_training=is_training)
        h = jnp.mean(h, axis=(1, 2))
        h, params = self.drop(params, h, is_training=is_training)
        return self.head(params, h)


def entropy(logits, images):
    return -jnp.mean(jnp.sum(jax.nn.softmax(logits) * jax.nn.log_softmax(logits), axis=-1))


BLOX_LOSS = entropy


def build():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    model = ConvNet(graph / "convnet", rng)
    images = jax.ShapeDtypeStruct((2, 16, 16, 3), jnp.float32)
    return model, (images,), {"is_training": False}
