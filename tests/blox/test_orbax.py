"""Folder checkpoints (Orbax) in one process, on the 8 fake CPU devices of conftest.py.

The multi-process behaviour (shards on other processes, a save killed half way) is in
test_distributed.py; here: exact round trips, resharding, metadata-only headers, errors.
"""

import os
import shutil
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, SingleDeviceSharding
from jax.sharding import PartitionSpec as P

import blox as bx
from blox import _orbax
from blox._params import freeze

AUTO = jax.sharding.AxisType.Auto


def _mesh(shape, names):
    return jax.make_mesh(shape, names, axis_types=(AUTO,) * len(names))


def _init(x):
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    node = graph / "mlp"
    mlp = bx.Sequential(
        node,
        [
            bx.Linear(node / "l/1", 16, rng, kernel_metadata={"sharding": (None, "model"), "note": "ü"}),
            bx.BatchNorm(node / "bn"),
        ],
    )
    _, params = mlp(rng.seed(bx.Params(), jax.random.key(3, impl="rbg")), x, is_training=True)
    return params.set(("net", "extra", "half"), bx.Param(jnp.arange(8, dtype=jnp.bfloat16), trainable=False))


X = jnp.ones((4, 8))


def _sharded(mesh):
    abstract = jax.eval_shape(_init, X)
    return jax.jit(_init, out_shardings=bx.param_shardings(abstract, mesh))(X).locked()


def _like(params, sharding_of):
    """Abstract Params with a sharding per leaf: what a user builds from eval_shape + param_shardings."""
    return params.map(lambda path, p: jax.ShapeDtypeStruct(p.value.shape, p.value.dtype, sharding=sharding_of(path, p)))


def _host(x):
    return np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x)


def _same(a: bx.Params, b: bx.Params):
    assert list(a) == list(b) and a.is_locked == b.is_locked
    for path in a:
        pa, pb = a[path], b[path]
        assert (pa.trainable, pa.metadata) == (pb.trainable, pb.metadata), path
        assert pa.value.dtype == pb.value.dtype and pa.value.shape == pb.value.shape, path
        np.testing.assert_array_equal(_host(pa.value), _host(pb.value))


def test_round_trip_restores_into_another_mesh_and_one_device(tmp_path):
    saved = _sharded(_mesh((2, 4), ("data", "model")))
    assert saved["net/mlp/l\\/1/kernel"].value.sharding.spec == P(None, "model")
    bx.save(tmp_path / "ckpt", saved)
    # Resharding: 8 devices on one 'model' axis in reverse order, so every shard moves.
    other = jax.sharding.Mesh(np.array(jax.devices()[::-1]), ("model",))
    like = _like(saved, lambda _, p: NamedSharding(other, P(*(p.sharding or ()))))
    resharded = bx.load(tmp_path / "ckpt", like=like)
    _same(saved, resharded)
    kernel = resharded["net/mlp/l\\/1/kernel"].value
    assert kernel.sharding == NamedSharding(other, P(None, "model"))
    assert kernel.addressable_shards[0].data.shape == (8, 2) and kernel.addressable_shards[0].device == other.devices[0]
    assert resharded["net/rng/seed"].value.dtype == saved["net/rng/seed"].value.dtype  # key<rbg>, impl kept
    assert str(jax.random.key_impl(resharded["net/rng/seed"].value)) == "rbg"
    assert resharded["net/extra/half"].value.dtype == ml_dtypes.bfloat16
    # One device, from like's sharding and from no like at all.
    one = SingleDeviceSharding(jax.devices()[5])
    single = bx.load(tmp_path / "ckpt", like=_like(saved, lambda *_: one))
    _same(saved, single)
    assert {p.value.sharding for p in single.values()} == {one}
    plain = bx.load(tmp_path / "ckpt")
    _same(saved, plain)
    assert plain["net/mlp/bn/mean"].value.sharding == SingleDeviceSharding(jax.local_devices()[0])
    np.testing.assert_array_equal(plain["net/mlp/l\\/1/kernel"].value, jax.jit(_init)(X)["net/mlp/l\\/1/kernel"].value)


def test_unlocked_and_abstract_and_like_mismatch(tmp_path):
    params = jax.jit(_init)(X)
    bx.save(tmp_path / "c", params)
    _same(params, bx.load(tmp_path / "c"))
    structure = bx.load(tmp_path / "c", abstract=True)
    assert not structure.is_locked and isinstance(structure["net/mlp/bn/var"].value, jax.ShapeDtypeStruct)
    assert str(structure["net/rng/seed"].value.dtype) == "key<rbg>" and structure["net/rng/seed"].value.shape == ()
    wider = jax.eval_shape(_init, jnp.ones((4, 9)))
    with pytest.raises(bx.CheckpointError, match=r"net/mlp/l\\/1/kernel: checkpoint has float32\[8, 16\], model needs"):
        bx.load(tmp_path / "c", like=wider)
    # A key's raw data has a trailing dimension: blox extends NamedSharding and SingleDeviceSharding only.
    seed = structure["net/rng/seed"].value
    odd = structure.set(("net", "rng", "seed"), SimpleNamespace(shape=seed.shape, dtype=seed.dtype, sharding=object()))
    with pytest.raises(bx.CheckpointError, match=r"cannot restore the PRNG key net/rng/seed with a object"):
        bx.load(tmp_path / "c", like=odd)


def test_read_header_uses_metadata_only(tmp_path):
    params = _sharded(_mesh((8,), ("model",)))
    bx.save(tmp_path / "c", params)
    shutil.rmtree(tmp_path / "c" / "params")  # no array data left: the header cannot have read any
    header = _orbax.read_header(tmp_path / "c")
    assert header.is_blox and header.locked and header.path == str(tmp_path / "c")
    assert [t.path for t in header.tensors] == list(params)
    for t in header.tensors:
        value = params[t.path].value
        assert t.name == bx.path_str(t.path) and t.shape == value.shape and t.dtype == str(value.dtype)
        assert t.trainable == params[t.path].trainable and freeze(t.metadata) == params[t.path].metadata
        assert t.nbytes == _host(value).nbytes
    seed = next(t for t in header.tensors if t.name == "net/rng/seed")
    assert (seed.key_impl, seed.stored, seed.dtype) == ("rbg", "uint32", "key<rbg>")
    kernel = next(t for t in header.tensors if t.name.endswith("kernel"))
    assert kernel.metadata == {"sharding": [None, "model"], "note": "ü"}
    assert [t.offsets[0] for t in header.tensors] == [0] + [t.offsets[1] for t in header.tensors[:-1]]


def test_optimizer_state_round_trips_sharded(tmp_path):
    mesh = _mesh((8,), ("model",))
    params = _sharded(mesh)
    trainable, _ = params.split()
    opt = optax.adam(1e-2)
    grads = jax.tree.map(jnp.ones_like, trainable)
    _, state = opt.update(grads, opt.init(trainable), trainable)  # non-zero moments, count 1
    bx.save(tmp_path / "c", params, state=state)
    abstract = jax.eval_shape(opt.init, jax.eval_shape(lambda: trainable))
    shardings = bx.param_shardings(abstract[0].mu, mesh)
    like = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=NamedSharding(mesh, P())), abstract)
    like = (like[0]._replace(mu=_with(abstract[0].mu, shardings), nu=_with(abstract[0].nu, shardings)), like[1])
    restored = bx.load_state(tmp_path / "c", like=like)
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert restored[0].mu["net/mlp/l\\/1/kernel"].value.sharding.spec == P(None, "model")
    assert int(restored[0].count) == 1


def _with(abstract: bx.Params, shardings: bx.Params) -> bx.Params:
    return abstract.map(
        lambda path, p: jax.ShapeDtypeStruct(p.value.shape, p.value.dtype, sharding=shardings[path].value)
    )


def test_state_errors(tmp_path):
    params = jax.jit(_init)(X)
    trainable, _ = params.split()
    bx.save(tmp_path / "plain", params)
    with pytest.raises(bx.CheckpointError, match="holds no state"):
        bx.load_state(tmp_path / "plain", like={"a": jnp.ones(2)})
    with pytest.raises(bx.CheckpointError, match="bx.load_state needs like="):
        bx.load_state(tmp_path / "plain", like=None)
    bx.save(tmp_path / "adam", params, state=optax.adam(1e-3).init(trainable))
    sgd_like = jax.eval_shape(optax.sgd(1e-3, momentum=0.9).init, trainable)
    with pytest.raises(bx.CheckpointError, match=r"(?s)the saved state does not match like=.*missing in checkpoint"):
        bx.load_state(tmp_path / "adam", like=sgd_like)
    with pytest.raises(bx.CheckpointError, match=r"state= is saved only in folder checkpoints"):
        bx.save(tmp_path / "x.safetensors", params, state={"a": jnp.ones(2)})
    assert not (tmp_path / "x.safetensors").exists()
    with pytest.raises(bx.CheckpointError, match=r"\['a'\] is a str, which a checkpoint cannot store"):
        bx.save(tmp_path / "bad", params, state={"a": "text"})


def test_folder_or_file_is_decided_by_the_path(tmp_path):
    params = bx.Params({("w",): bx.Param(jnp.arange(3.0))})
    bx.save(tmp_path / "m.safetensors", params)
    bx.save(tmp_path / "m", params)
    assert (tmp_path / "m.safetensors").is_file() and (tmp_path / "m").is_dir()
    (tmp_path / "tiny").write_bytes(b"")  # an existing file stays a file, whatever its name
    assert not _orbax.is_folder(tmp_path / "tiny", saving=True)
    assert _orbax.is_folder(tmp_path / "m", saving=False) and not _orbax.is_folder(tmp_path / "new", saving=False)
    np.testing.assert_array_equal(bx.load(tmp_path / "m")["w"].value, [0.0, 1.0, 2.0])
    (tmp_path / "empty").mkdir()  # an empty folder may receive a checkpoint
    bx.save(tmp_path / "empty", params)
    assert _orbax.read_header(tmp_path / "empty").tensors[0].name == "w"


def test_existing_folder_is_never_replaced(tmp_path):
    bx.save(tmp_path / "c", bx.Params({("w",): bx.Param(jnp.ones(2))}))
    before = sorted(os.listdir(tmp_path / "c"))
    with pytest.raises(bx.CheckpointError, match="a folder checkpoint is already there. bx.save never replaces"):
        bx.save(tmp_path / "c", bx.Params({("w",): bx.Param(jnp.zeros(2))}))
    assert sorted(os.listdir(tmp_path / "c")) == before
    np.testing.assert_array_equal(bx.load(tmp_path / "c")["w"].value, [1.0, 1.0])


def test_incomplete_foreign_and_missing_folders(tmp_path):
    import orbax.checkpoint as ocp
    from orbax.checkpoint._src.path import atomicity_types

    assert (_orbax.TMP_SUFFIX, _orbax.COMMIT_FILE) == (
        atomicity_types.TMP_DIR_SUFFIX,
        atomicity_types.COMMIT_SUCCESS_FILE,
    )
    bx.save(tmp_path / "c", bx.Params({("w",): bx.Param(jnp.ones(2))}))
    # An uncommitted save as Orbax leaves it: the tmp name, no commit marker, no commit time.
    tmp = tmp_path / ("d" + _orbax.TMP_SUFFIX)
    shutil.copytree(tmp_path / "c", tmp)
    os.remove(tmp / _orbax.COMMIT_FILE)
    for folder, committed in ((tmp_path / "c", True), (tmp, False)):
        assert _orbax.is_committed(str(folder)) is committed
        assert ocp.path.step.is_path_finalized(folder) is committed  # our reading agrees with Orbax's
    for path in (tmp, tmp_path / "d"):  # the tmp folder itself, or the name it would have had
        with pytest.raises(bx.CheckpointError, match="incomplete checkpoint: its save never committed"):
            bx.load(path)
        with pytest.raises(bx.CheckpointError, match="incomplete checkpoint"):
            _orbax.read_header(path)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("x")
    with pytest.raises(bx.CheckpointError, match="not a checkpoint folder: there is no _CHECKPOINT_METADATA"):
        bx.load(tmp_path / "junk")
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "foreign", {"w": jnp.ones(2)})
    with pytest.raises(bx.CheckpointError, match="an Orbax checkpoint, but not one written by blox"):
        bx.load(tmp_path / "foreign")
    with pytest.raises(bx.CheckpointError, match="no such checkpoint folder or file"):
        _orbax.read_header(tmp_path / "nothing")


def test_manager_keeps_the_last_n_and_ignores_broken_saves(tmp_path):
    mesh = _mesh((8,), ("model",))
    params = _sharded(mesh)
    trainable, _ = params.split()
    opt = optax.adam(1e-3)
    with bx.CheckpointManager(tmp_path / "run", max_to_keep=2) as manager:
        for step in (10, 20, 30):
            bumped = params.map(lambda _, p, s=step: p.value + s if p.trainable else p.value)
            manager.save(step, bumped, state=opt.init(trainable), metadata={"step": step})
        manager.wait()
        assert manager.steps() == [20, 30] and manager.latest_step() == 30
        with pytest.raises(bx.CheckpointError, match="already there"):
            manager.save(30, params)
    # A save that died: the next manager on this directory skips it and removes it.
    shutil.copytree(tmp_path / "run" / "30", tmp_path / "run" / ("40" + _orbax.TMP_SUFFIX))
    os.remove(tmp_path / "run" / ("40" + _orbax.TMP_SUFFIX) / _orbax.COMMIT_FILE)
    manager = bx.CheckpointManager(tmp_path / "run", async_save=False)
    assert manager.steps() == [20, 30] and manager.latest_step() == 30
    like = _like(params, lambda _, p: NamedSharding(mesh, P(*(p.sharding or ()))))
    loaded = manager.load(like=like)
    kernel = "net/mlp/l\\/1/kernel"
    np.testing.assert_array_equal(loaded[kernel].value, np.asarray(params[kernel].value) + 30)
    np.testing.assert_array_equal(manager.load(20)[kernel].value, np.asarray(params[kernel].value) + 20)
    state = manager.load_state(like=jax.eval_shape(opt.init, trainable))
    assert int(state[0].count) == 0
    assert _orbax.read_header(manager.path(20)).tensors[0].name == "net/extra/half"
    manager.save(40, params)  # the broken step 40 is removed first (Orbax's cleanup), then saved whole (keeps 3)
    assert manager.steps() == [20, 30, 40] and not (tmp_path / "run" / ("40" + _orbax.TMP_SUFFIX)).exists()
    manager.close()


def test_async_save_owns_its_copy_while_training_goes_on(tmp_path):
    params = _sharded(_mesh((8,), ("model",)))
    expected = {path: _host(p.value) for path, p in params.items()}
    with bx.CheckpointManager(tmp_path / "run") as manager:
        manager.save(1, params)
        # What a train step with donate_argnums does to its inputs: the buffers are gone.
        for p in params.values():
            p.value.delete()
        manager.wait()
        loaded = manager.load(1)
    for path, p in loaded.items():
        np.testing.assert_array_equal(_host(p.value), expected[path])
