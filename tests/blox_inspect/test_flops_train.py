import jax
import jax.numpy as jnp

from blox_inspect.analysis.flops import count_flops
from blox_inspect.analysis.train import make_train_step
from blox_inspect.load.model_file import load_model

MLP = __file__.replace("test_flops_train.py", "models/mlp.py")


def test_matmul_chain_flops_are_exact():
    a, b, c = jnp.ones((8, 16)), jnp.ones((16, 32)), jnp.ones((32, 4))
    j = jax.make_jaxpr(lambda a, b, c: (a @ b) @ c)(a, b, c)
    assert count_flops(j).total == 2 * 8 * 16 * 32 + 2 * 8 * 32 * 4


def test_scan_flops_multiply_by_length_and_attribute_to_scope():
    w = jnp.ones((4, 4))

    def f(x):
        with jax.named_scope("net/loop"):
            x, _ = jax.lax.scan(lambda c, _: (c @ w, None), x, None, length=10)
        return x

    count = count_flops(jax.make_jaxpr(f)(jnp.ones((2, 4))), {"net/loop"})
    assert count.by_scope == {"net/loop": 10 * 2 * 2 * 4 * 4}


def test_while_loop_is_flagged_not_guessed():
    def f(x):
        with jax.named_scope("net/w"):
            return jax.lax.while_loop(lambda c: c[0] < 5.0, lambda c: c * 2.0, x)

    count = count_flops(jax.make_jaxpr(f)(jnp.ones(3)), {"net/w"})
    assert count.dynamic_loops == ["net/w"]


def test_train_step_runs_and_reduces_loss():
    loaded = load_model(MLP)
    ts = make_train_step(loaded)
    assert ts.train_kwargs == {"is_training": True}
    params = loaded.init(0, jnp.ones((4, 16)))
    trainable, rest = params.split()
    state = ts.optimizer.init(trainable)
    step = jax.jit(ts.step)
    x = jax.random.normal(jax.random.key(0), (4, 16))
    first = None
    for _ in range(20):
        trainable, rest, state, loss = step(trainable, rest, state, x)
        first = loss if first is None else first
    assert loss < first
    # The Rng counter (non-trainable state) advanced: dropout drew keys in training.
    assert int(rest["net/rng/counter"].value) > int(params["net/rng/counter"].value)


def test_abstract_train_step_lowers_without_allocating():
    loaded = load_model(MLP)
    ts = make_train_step(loaded)
    lowered = ts.jitted().lower(*ts.abstract_args(loaded))
    assert "dot_general" in lowered.as_text() or "dot" in lowered.as_text()
