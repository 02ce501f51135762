"""Model files for the scale benchmarks: many tiny modules, wide or deep.

``blox-inspect summary benchmarks/models/wide.py:build_10k`` summarises a ``bx.Sequential`` of 10,000
``bx.Linear(1)`` children (20,000 params); ``build_1k`` the same with 1,000. ``deep`` nests
``bx.Sequential`` blocks: ``build_deep`` is 100 blocks of 100 layers (10,000 Linear, 10,101 modules).
"""

from __future__ import annotations

import jax.numpy as jnp

import blox as bx


def wide(n: int):
    """A ``bx.Sequential`` of ``n`` ``bx.Linear(1)`` children sharing one Rng, and its (1, 1) input."""
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    node = g / "seq"
    model = bx.Sequential(node, [bx.Linear(node / f"l{i}", 1, rng) for i in range(n)])
    return model, (jnp.ones((1, 1)),)


def deep(blocks: int, layers: int):
    """``blocks`` nested ``bx.Sequential`` blocks of ``layers`` ``bx.Linear(1)`` each."""
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    node = g / "blocks"
    children = []
    for b in range(blocks):
        block = node / f"b{b}"
        children.append(bx.Sequential(block, [bx.Linear(block / f"l{i}", 1, rng) for i in range(layers)]))
    return bx.Sequential(node, children), (jnp.ones((1, 1)),)


def build_1k():
    return wide(1_000)


def build_10k():
    return wide(10_000)


def build_deep():
    return deep(100, 100)


def build_deep_1k():
    return deep(10, 100)


build = build_1k


def nested(levels: int):
    """``levels`` ``bx.Sequential`` modules nested one in the next, each holding a ``bx.Linear(1)`` first."""
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    nodes = [g / "n0"]
    for i in range(1, levels):
        nodes.append(nodes[-1] / f"n{i}")
    inner = bx.Sequential(nodes[-1], [bx.Linear(nodes[-1] / "l", 1, rng)])
    for node in reversed(nodes[:-1]):
        inner = bx.Sequential(node, [bx.Linear(node / "l", 1, rng), inner])
    return inner, (jnp.ones((1, 1)),)


def build_nested_100():
    return nested(100)
