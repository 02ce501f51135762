"""The real jax transforms applied directly to blox models: no wrappers anywhere."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import blox as bx


def _mlp(graph, rng, dropout=True, batchnorm=True):
    node = graph / "mlp"
    layers = [bx.Linear(node / "l1", 16, rng)]
    if batchnorm:
        layers.append(bx.BatchNorm(node / "bn"))
    layers.append(jax.nn.relu)
    if dropout:
        layers.append(bx.Dropout(node / "drop", 0.1, rng))
    layers.append(bx.Linear(node / "l2", 1, rng))
    return bx.Sequential(node, layers)


def _build(**kwargs):
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    return rng, _mlp(graph, rng, **kwargs)


def _data():
    x = jax.random.normal(jax.random.key(1), (32, 4))
    return x, jnp.sin(jnp.sum(x, axis=-1, keepdims=True))


def _init(rng, model, x):
    return jax.jit(lambda x: model(rng.seed(bx.Params(), 0), x, is_training=True)[1])(x).locked()


def test_optax_training_with_grad_has_aux_and_donation():
    rng, mlp = _build()
    x, y = _data()
    params = _init(rng, mlp, x)
    opt = optax.adam(1e-2)
    opt_state = opt.init(params.split()[0])

    def loss_fn(trainable, rest, x, y):
        out, params = mlp(trainable.merge(rest), x, is_training=True)
        return jnp.mean((out - y) ** 2), params

    def step(params, opt_state, x, y):
        trainable, rest = params.split()
        (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable, rest, x, y)
        updates, opt_state = opt.update(grads, opt_state)
        trainable = optax.apply_updates(trainable, updates)
        _, state = new.split()  # the updated non-trainable state: BatchNorm stats, rng counter
        return trainable.merge(state), opt_state, loss

    step = jax.jit(step, donate_argnames="params")
    old_mean = np.asarray(params["net/mlp/bn/mean"].value)
    losses = []
    for _ in range(60):
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0]
    assert int(rng.get_counter(params)) > 60  # dropout drew a fresh key every step
    assert not np.allclose(params["net/mlp/bn/mean"].value, old_mean)
    assert params.is_locked and params["net/mlp/bn/mean"].trainable is False


def test_grad_matches_a_plain_jax_reference():
    rng, mlp = _build(dropout=False, batchnorm=False)
    x, y = _data()
    params = _init(rng, mlp, x)
    trainable, rest = params.split()
    grads = jax.jit(jax.grad(lambda t: jnp.mean((mlp(t.merge(rest), x)[0] - y) ** 2)))(trainable)

    def ref(w):
        h = jax.nn.relu(x @ w["k1"] + w["b1"][None])
        return jnp.mean((h @ w["k2"] + w["b2"][None] - y) ** 2)

    v = {
        k: trainable[f"net/mlp/{n}"].value
        for k, n in [("k1", "l1/kernel"), ("b1", "l1/bias"), ("k2", "l2/kernel"), ("b2", "l2/bias")]
    }
    expected = jax.jit(jax.grad(ref))(v)
    np.testing.assert_allclose(grads["net/mlp/l1/kernel"].value, expected["k1"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads["net/mlp/l2/bias"].value, expected["b2"], rtol=1e-5, atol=1e-6)


def test_jax_checkpoint_gives_identical_gradients():
    rng, mlp = _build(dropout=True)
    x, y = _data()
    trainable, rest = _init(rng, mlp, x).split()

    def loss(t):
        out, _ = mlp(t.merge(rest), x, is_training=True)
        return jnp.mean((out - y) ** 2)

    plain = jax.jit(jax.grad(loss))(trainable)
    remat = jax.jit(jax.grad(jax.checkpoint(loss)))(trainable)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(remat)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_eval_shape_builds_the_full_structure_without_allocating():
    rng, mlp = _build()
    x, _ = _data()
    before = len(jax.live_arrays())
    abstract = jax.eval_shape(lambda x: mlp(rng.seed(bx.Params(), 0), x, is_training=True)[1], x)
    assert len(jax.live_arrays()) <= before  # nothing was allocated
    assert all(isinstance(v, jax.ShapeDtypeStruct) for v in jax.tree.leaves(abstract))
    shapes = {bx.path_str(k): (tuple(p.value.shape), p.trainable) for k, p in abstract.items()}
    assert shapes == {
        "net/mlp/bn/bias": ((16,), True),
        "net/mlp/bn/mean": ((16,), False),
        "net/mlp/bn/scale": ((16,), True),
        "net/mlp/bn/var": ((16,), False),
        "net/mlp/l1/bias": ((16,), True),
        "net/mlp/l1/kernel": ((4, 16), True),
        "net/mlp/l2/bias": ((1,), True),
        "net/mlp/l2/kernel": ((16, 1), True),
        "net/rng/counter": ((), False),
        "net/rng/seed": ((), False),
    }


def test_scan_over_a_stack_of_identical_blocks():
    depth, width = 3, 8
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    node = graph / "block"
    block = bx.Sequential(node, [bx.Linear(node / "lin", width, rng), jnp.tanh, bx.LayerNorm(node / "ln")])
    x = jax.random.normal(jax.random.key(2), (4, width))

    def init_one(key):
        return block(rng.seed(bx.Params(), key), x)[1]

    keys = jax.random.split(jax.random.key(0), depth)
    stacked = jax.jit(jax.vmap(init_one))(keys)
    assert stacked["net/block/lin/kernel"].value.shape == (depth, width, width)

    def body(h, layer_params):
        h, _ = block(layer_params, h)
        return h, None

    out, _ = jax.jit(lambda p, x: jax.lax.scan(body, x, p))(stacked, x)
    one_layer = jax.jit(lambda p, h, i: block(jax.tree.map(lambda v: v[i], p), h)[0])
    ref = x
    for i in range(depth):
        ref = one_layer(stacked, ref, i)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_two_models_on_identically_named_graphs_share_params():
    x, _ = _data()
    train_rng, train_model = _build(dropout=True, batchnorm=False)
    eval_rng, eval_model = _build(dropout=False, batchnorm=False)
    params = _init(train_rng, train_model, x)
    train_out, _ = jax.jit(lambda p: train_model(p, x, is_training=True))(params)
    eval_out, after = jax.jit(lambda p: eval_model(p, x))(params)  # locked Params: nothing is created
    same, _ = jax.jit(lambda p: train_model(p, x, is_training=False))(params)
    np.testing.assert_allclose(eval_out, same, rtol=1e-6)
    assert not np.allclose(train_out, eval_out)
    assert list(after) == list(params)
