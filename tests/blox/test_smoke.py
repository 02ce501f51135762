import jax
import jax.numpy as jnp
import optax

import blox as bx


def test_mlp_trains_with_plain_jax_transforms():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    node = graph / "mlp"
    mlp = bx.Sequential(node, [bx.Linear(node / "l1", 16, rng), jax.nn.relu, bx.Linear(node / "l2", 1, rng)])
    x = jax.random.normal(jax.random.key(1), (32, 4))
    y = jnp.sum(x, axis=-1, keepdims=True)
    _, params = mlp(rng.seed(bx.Params(), 0), x)
    trainable, rest = params.locked().split()
    opt = optax.adam(1e-2)
    state = opt.init(trainable)

    def loss(tr):
        out, _ = mlp(tr.merge(rest), x)
        return jnp.mean((out - y) ** 2)

    @jax.jit
    def step(tr, st):
        value, grads = jax.value_and_grad(loss)(tr)
        updates, st = opt.update(grads, st)
        return optax.apply_updates(tr, updates), st, value

    first = loss(trainable)
    for _ in range(100):
        trainable, state, _ = step(trainable, state)
    assert loss(trainable) < 0.1 * first
