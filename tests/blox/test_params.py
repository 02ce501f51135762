import copy
import math
import pickle

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


class _Name(str):
    """A str that counts order comparisons, to see when Params sorts its paths."""

    compared = 0

    def __lt__(self, other):
        _Name.compared += 1
        return str.__lt__(self, other)

    __hash__ = str.__hash__


def test_inserting_params_sorts_once_not_per_insert():
    # Params.set used to re-sort the whole mapping on every new path: init was quadratic.
    n = 2000
    names = [_Name(f"k{(i * 7919) % n:04d}") for i in range(n)]  # inserted out of order
    want = sorted(names)
    _Name.compared = 0
    params = bx.Params()
    for name in names:
        params = params.set(("net", name), bx.Param(0.0))
    assert _Name.compared == 0 and len(params) == n
    assert [path[1] for path in params] == want
    assert 0 < _Name.compared <= n * math.log2(n)  # one sort, at the first ordered read
    _Name.compared = 0
    assert len(jax.tree.leaves(params)) == n and list(params.split()[0]) == list(params)
    assert _Name.compared == 0  # the order is kept, not recomputed


def test_tree_structure_depends_on_the_paths_not_the_insertion_order():
    paths = [("net", str(i), "w") for i in range(40)]
    forward = backward = bx.Params()
    for i, path in enumerate(paths):
        forward = forward.set(path, bx.Param(jnp.full(1, float(i))))
    for i, path in reversed(list(enumerate(paths))):
        backward = backward.set(path, bx.Param(jnp.full(1, float(i))))
    assert jax.tree.structure(forward) == jax.tree.structure(backward)
    traces = []

    @jax.jit
    def step(params):
        traces.append(1)
        return jax.tree.map(lambda v: v + 1, params)

    out_f, out_b = step(forward), step(backward)
    assert len(traces) == 1  # one compiled program serves both
    assert list(out_b) == sorted(paths)
    for i, path in enumerate(paths):
        np.testing.assert_array_equal(out_b[path].value, [i + 1.0])
        np.testing.assert_array_equal(out_f[path].value, [i + 1.0])


def test_older_params_keep_their_contents_while_newer_ones_grow_from_them():
    versions = [bx.Params()]
    for i in range(300):
        versions.append(versions[-1].set(("k", f"{i:03d}"), bx.Param(float(i))))
    branch = versions[100].set(("k", "050"), bx.Param(-1.0)).set(("k", "999"), bx.Param(-2.0))
    for n, params in enumerate(versions):
        assert len(params) == n and [p[1] for p in params] == [f"{i:03d}" for i in range(n)]
        assert ("k", f"{n:03d}") not in params and params.get(("k", f"{n:03d}")) is None
    assert [params["k/050"].value for params in (versions[51], versions[300], branch)] == [50.0, 50.0, -1.0]
    assert len(branch) == 101 and list(branch)[-1] == ("k", "999")


@pytest.mark.parametrize("field", ["value", "trainable", "metadata"])
def test_param_fields_cannot_be_assigned(field):
    # Assignment used to succeed and show in every locked()/split() copy sharing the Param.
    p = bx.Param(jnp.ones(2), metadata={"sharding": ("data",)})
    params = bx.Params({("w",): p})
    copies = [params.locked(), params.split()[0]]
    with pytest.raises(AttributeError, match=rf"cannot assign Param\.{field}: a Param is immutable.*param\.replace\("):
        setattr(p, field, jnp.zeros(2))
    with pytest.raises(AttributeError, match="a Param is immutable"):
        delattr(p, field)
    for c in copies:
        assert c["w"].trainable is True and c["w"].sharding == ("data",)
        np.testing.assert_array_equal(c["w"].value, np.ones(2))


def test_replace_changes_only_the_given_fields():
    p = bx.Param(jnp.ones(2), trainable=False, metadata={"sharding": ("data",)})
    q = p.replace(jnp.zeros(2))  # positional: the value only, as before
    assert q.trainable is False and q.sharding == ("data",)
    np.testing.assert_array_equal(q.value, np.zeros(2))
    r = p.replace(trainable=1, metadata={"tags": ["a"]})
    assert r.value is p.value and r.trainable is True and r.metadata == {"tags": ("a",)}
    hash(r.metadata)  # frozen like the constructor's
    assert p.replace(value=None).value is None and p.replace().metadata is p.metadata
    assert p.trainable is False and p.sharding == ("data",)


def test_param_copies_and_pickles_despite_refusing_assignment():
    p = bx.Param(np.arange(3.0), trainable=False, metadata={"sharding": (None,)})
    for q in (copy.copy(p), copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert type(q) is bx.Param and q.trainable is False and q.sharding == (None,)
        np.testing.assert_array_equal(q.value, p.value)


def test_stored_paths_must_be_tuples_of_str():
    with pytest.raises(TypeError, match=r"Params keys are paths: tuples of str.*\('net', 0\) \(name 1 is int\)"):
        bx.Params().set(("net", 0), bx.Param(1.0))
    with pytest.raises(TypeError, match=r"got 3 \(int\)\. Use a tuple such as"):
        bx.Params({3: bx.Param(1.0)})
    assert list(bx.Params({"net/w": 1.0}).set(["net", "b"], 2.0)) == [("net", "b"), ("net", "w")]


def test_treescope_shows_the_path_tree_with_shapes_flags_and_statistics():
    treescope = pytest.importorskip("treescope")
    import jax

    p = bx.Params(
        {
            ("net", "l1", "kernel"): bx.Param(jnp.arange(6.0).reshape(2, 3), metadata={"sharding": (None, "model")}),
            ("net", "rng", "seed"): bx.Param(jax.random.key(0), trainable=False),
        }
    )
    text = treescope.render_to_text(p)
    assert "<blox._params.Params object" not in text
    assert text.startswith("Params({") and "'net': {" in text and "'l1': {" in text
    assert "'kernel': Param(" in text and "float32(2, 3) ≈2.5 ±1.7 [≥0.0, ≤5.0]" in text  # mean, std, range
    assert "trainable=False" in text and "'sharding': (None, 'model')" in text
    assert "<script>" in treescope.render_to_html(p)
