import os

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import blox as bx
from blox._checkpoint import read_header


def _model():
    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    node = graph / "mlp"
    mlp = bx.Sequential(
        node,
        [
            bx.Linear(node / "l/1", 4, rng, kernel_metadata={"sharding": (None, "model"), "note": "ü"}),
            bx.BatchNorm(node / "bn"),
        ],
    )
    return rng, mlp


def _params():
    rng, mlp = _model()
    _, params = jax.jit(lambda x: mlp(rng.seed(bx.Params(), 0), x, is_training=True))(jnp.ones((2, 3)))
    return params.set(("net", "extra", "half"), bx.Param(jnp.arange(3, dtype=jnp.bfloat16), trainable=False))


def _same(a: bx.Params, b: bx.Params):
    assert list(a) == list(b) and a.is_locked == b.is_locked
    for path in a:
        pa, pb = a[path], b[path]
        assert (pa.trainable, pa.metadata) == (pb.trainable, pb.metadata), path
        assert pa.value.dtype == pb.value.dtype and pa.value.shape == pb.value.shape, path
        va, vb = pa.value, pb.value
        if jnp.issubdtype(va.dtype, jax.dtypes.prng_key):
            va, vb = jax.random.key_data(va), jax.random.key_data(vb)
        np.testing.assert_array_equal(np.asarray(va), np.asarray(vb))


def test_round_trip_is_exact(tmp_path):
    params = _params().locked()
    file = tmp_path / "model.safetensors"
    bx.save(file, params)
    loaded = bx.load(file)
    _same(params, loaded)
    assert loaded["net/rng/seed"].value.dtype == params["net/rng/seed"].value.dtype
    assert loaded["net/extra/half"].value.dtype == ml_dtypes.bfloat16
    assert loaded["net/mlp/l\\/1/kernel"].sharding == (None, "model")
    _same(params.unlocked(), (bx.save(file, params.unlocked()), bx.load(file))[1])


def test_loaded_params_continue_the_rng_stream(tmp_path):
    rng, _ = _model()
    params = rng.seed(bx.Params(), 4)
    _, params = rng(params)
    bx.save(tmp_path / "r.safetensors", params)
    loaded = bx.load(tmp_path / "r.safetensors")
    np.testing.assert_array_equal(jax.random.key_data(rng(params)[0]), jax.random.key_data(rng(loaded)[0]))


def test_file_is_standard_safetensors_read_without_pickle(tmp_path):
    from safetensors.numpy import load_file

    params = _params()
    file = tmp_path / "model.safetensors"
    bx.save(file, params)
    tensors = load_file(str(file))
    np.testing.assert_array_equal(tensors["net/mlp/l\\/1/kernel"], params["net/mlp/l\\/1/kernel"].value)
    header = read_header(file)
    assert header.is_blox and not header.locked
    kernel = next(t for t in header.tensors if t.path == ("net", "mlp", "l/1", "kernel"))
    assert kernel.shape == (3, 4) and kernel.dtype == "float32" and kernel.trainable


def test_abstract_load_and_like(tmp_path):
    rng, mlp = _model()

    def init(x):
        return mlp(rng.seed(bx.Params(), 0), x, is_training=True)[1]

    abstract = jax.eval_shape(init, jnp.ones((2, 3)))
    file = tmp_path / "m.safetensors"
    bx.save(file, jax.jit(init)(jnp.ones((2, 3))))
    structure = bx.load(file, abstract=True)
    assert isinstance(structure["net/mlp/bn/mean"].value, jax.ShapeDtypeStruct)
    assert structure["net/rng/seed"].value.dtype == abstract["net/rng/seed"].value.dtype
    assert len(bx.load(file, like=abstract)) == len(abstract)


def test_a_failed_save_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    file = tmp_path / "m.safetensors"
    bx.save(file, bx.Params({("a",): bx.Param(jnp.ones(2))}))
    before = file.read_bytes()
    bad = bx.Params({("a",): bx.Param(jnp.zeros(2), metadata={"fn": object()})})
    with pytest.raises(bx.CheckpointError, match=r"a: Param metadata must be JSON-serialisable"):
        bx.save(file, bad)

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        bx.save(file, bx.Params({("a",): bx.Param(jnp.zeros(2))}))
    monkeypatch.undo()
    assert file.read_bytes() == before and os.listdir(tmp_path) == ["m.safetensors"]
    with pytest.raises(TypeError, match="bx.save expects blox Params, got dict"):
        bx.save(tmp_path / "x", {})


def test_metadata_that_would_not_round_trip_is_refused(tmp_path):
    params = bx.Params({("a",): bx.Param(jnp.zeros(2), metadata={1: "x"})})
    with pytest.raises(bx.CheckpointError, match=r"a: Param metadata \{1: 'x'\} would not load back unchanged"):
        bx.save(tmp_path / "m", params)
    assert not (tmp_path / "m").exists()


def test_saved_files_get_the_mode_a_plain_open_would(tmp_path):
    # Regression: atomic writes went through mkstemp and left files owner-only (0600).
    mask = os.umask(0o022)
    try:
        path = tmp_path / "ckpt.safetensors"
        bx.save(path, bx.Params({("net", "w"): bx.Param(jnp.ones(2))}))
        assert (path.stat().st_mode & 0o777) == 0o644
    finally:
        os.umask(mask)


@pytest.mark.parametrize(
    "value, metadata, match",
    [
        (
            jax.ShapeDtypeStruct((2,), jnp.float32),
            {},
            r"^w: the value is abstract \(ShapeDtypeStruct\); bx.save needs concrete",
        ),
        (np.ones(2, np.complex128), {}, r"^w: dtype complex128 cannot be stored in safetensors \(supported: BOOL"),
        (np.array(["a"]), {}, r"^w: dtype <U1 cannot be stored"),
        (jnp.ones(2), {"scale": float("nan")}, r"^w: Param metadata must be JSON-serialisable to be saved"),
    ],
)
def test_values_that_cannot_be_stored_are_refused(tmp_path, value, metadata, match):
    with pytest.raises(bx.CheckpointError, match=match):
        bx.save(tmp_path / "m.safetensors", bx.Params({("w",): bx.Param(value, metadata=metadata)}))
    assert not (tmp_path / "m.safetensors").exists()
