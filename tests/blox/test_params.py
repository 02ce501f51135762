import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import blox as bx


def _params():
    return bx.Params(
        {
            ("net", "l", "kernel"): bx.Param(jnp.ones((2, 3)), metadata={"sharding": (None, "model")}),
            ("net", "l", "bias"): bx.Param(jnp.zeros(3)),
            ("net", "bn", "mean"): bx.Param(jnp.zeros(3), trainable=False),
        }
    )


def test_param_is_a_pytree_whose_only_leaf_is_the_value():
    p = bx.Param(jnp.ones(2), trainable=False, metadata={"sharding": ("data",), "tags": ["a"]})
    leaves, treedef = jax.tree.flatten(p)
    assert len(leaves) == 1 and leaves[0] is p.value
    q = jax.tree.map(lambda v: v * 2, p)
    assert isinstance(q, bx.Param) and not q.trainable and q.metadata == p.metadata
    assert p.sharding == ("data",) and q.metadata["tags"] == ("a",)  # metadata is frozen
    assert bx.Param(1.0).sharding is None and bx.Param(1.0).trainable
    hash(p.metadata)  # static, so hashable


def test_params_pytree_leaves_are_exactly_the_arrays_in_path_order():
    params = _params()
    assert list(params) == [("net", "bn", "mean"), ("net", "l", "bias"), ("net", "l", "kernel")]
    assert [x.shape for x in jax.tree.leaves(params)] == [(3,), (3,), (2, 3)]
    keyed = jax.tree_util.tree_flatten_with_path(params)[0]
    assert jax.tree_util.keystr(keyed[2][0]) == "['net/l/kernel'].value"
    doubled = jax.tree.map(lambda v: v + 1, params)
    assert isinstance(doubled, bx.Params)
    np.testing.assert_array_equal(doubled["net/l/kernel"].value, 2 * np.ones((2, 3)))
    assert doubled["net/bn/mean"].trainable is False and doubled["net/l/kernel"].sharding == (None, "model")


def test_params_is_an_immutable_mapping():
    params = _params()
    assert ("net", "l", "bias") in params and "net/l/bias" in params and 3 not in params
    assert len(params) == 3 and params.get("net/none") is None
    with pytest.raises(TypeError):
        params[("net", "x")] = bx.Param(1.0)
    new = params.set(("net", "x"), bx.Param(jnp.ones(1)))
    assert ("net", "x") in new and ("net", "x") not in params
    bare = params.set("net/y", jnp.zeros(2))
    assert isinstance(bare["net/y"], bx.Param) and bare["net/y"].trainable


def test_lock_split_merge_round_trip():
    params = _params()
    assert not params.is_locked
    locked = params.locked()
    assert locked.is_locked and not locked.unlocked().is_locked and not params.is_locked
    trainable, rest = locked.split()
    assert list(trainable) == [("net", "l", "bias"), ("net", "l", "kernel")]
    assert list(rest) == [("net", "bn", "mean")]
    assert trainable.is_locked and rest.is_locked
    merged = trainable.merge(rest)
    assert list(merged) == list(params) and merged.is_locked
    kernels, others = params.split(lambda path, p: path[-1] == "kernel")
    assert list(kernels) == [("net", "l", "kernel")] and len(others) == 2


def test_merge_rejects_different_lock_states():
    trainable, rest = _params().split()
    with pytest.raises(
        bx.ParamError, match=r"different lock states.*is_locked=True.*is_locked=False.*\.locked\(\) or \.unlocked\(\)"
    ):
        trainable.locked().merge(rest)


def test_merge_rejects_overlapping_params():
    params = _params()
    with pytest.raises(bx.ParamError, match=r"both hold 3 path\(s\): net/bn/mean.*Params.set\(\)"):
        params.merge(params)
    with pytest.raises(TypeError, match="Params.merge expects Params"):
        params.merge({})


def test_subtree_and_map():
    params = _params()
    assert list(params.subtree(("net", "l"))) == [("net", "l", "bias"), ("net", "l", "kernel")]
    assert list(params.subtree("net/bn")) == [("net", "bn", "mean")]
    sizes = params.map(lambda path, p: p.value.size)
    assert sizes["net/l/kernel"].value == 6 and sizes["net/l/kernel"].sharding == (None, "model")


def test_optax_and_grad_work_on_params_directly():
    trainable, rest = _params().split()
    opt = optax.adam(1e-3)
    state = opt.init(trainable)
    grads = jax.grad(lambda t: sum(jnp.sum(v**2) for v in jax.tree.leaves(t)))(trainable)
    assert isinstance(grads, bx.Params)
    np.testing.assert_allclose(grads["net/l/kernel"].value, 2 * np.ones((2, 3)))
    updates, state = opt.update(grads, state)
    new = optax.apply_updates(trainable, updates)
    assert isinstance(new, bx.Params) and new["net/l/kernel"].value[0, 0] < 1.0


def test_repr_names_paths_and_flags():
    text = repr(_params().locked())
    assert "'net/bn/mean': Param(float32[3], trainable=False)" in text and text.endswith("locked)")
    assert repr(bx.Params()) == "Params({})"
