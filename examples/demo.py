"""The main demo (`make demo`)."""

import jax
import jax.numpy as jnp

import blox as bx


def main() -> None:
    graph = bx.Graph("net")
    rng = bx.Rng(graph.child("rng"))
    node = graph.child("mlp")
    mlp = bx.Sequential(node, [bx.Linear(node / "hidden", 32, rng), jax.nn.relu, bx.Linear(node / "out", 1, rng)])
    params = rng.seed(bx.Params(), seed=0)
    _, params = mlp(params, jnp.ones((8, 4)))
    print(params.locked())


if __name__ == "__main__":
    main()
