"""What a blox checkpoint stores: every dtype bit for bit, blox's facts apart from user metadata, any path.

The official ``safetensors`` library is the reference: ``safetensors.deserialize`` gives each
tensor's dtype code, shape and raw bytes without interpreting them.
"""

import json

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import safetensors
from safetensors.numpy import save_file

import blox as bx
from blox._checkpoint import read_header

# Every dtype a blox checkpoint stores, with the safetensors code it is stored under.
DTYPES = {
    "BOOL": np.bool_,
    "U8": np.uint8,
    "I8": np.int8,
    "U16": np.uint16,
    "I16": np.int16,
    "U32": np.uint32,
    "I32": np.int32,
    "U64": np.uint64,
    "I64": np.int64,
    "F16": np.float16,
    "BF16": ml_dtypes.bfloat16,
    "F32": np.float32,
    "F64": np.float64,
    "F8_E4M3": ml_dtypes.float8_e4m3fn,
    "F8_E5M2": ml_dtypes.float8_e5m2,
    "F8_E4M3FNUZ": ml_dtypes.float8_e4m3fnuz,
    "F8_E5M2FNUZ": ml_dtypes.float8_e5m2fnuz,
    "F8_E8M0": ml_dtypes.float8_e8m0fnu,
    "C64": np.complex64,
}


def _random(dtype, shape, seed):
    """Arbitrary bit patterns (NaN payloads, subnormals, negative zero), except bool, which is 0/1."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    return np.frombuffer(rng.bytes(int(np.prod(shape)) * dtype.itemsize), dtype).reshape(shape).copy()


def _reference(file):
    """name -> (dtype code, shape, raw bytes), read by the official library."""
    with open(file, "rb") as f:
        return {
            name: (t["dtype"], tuple(t["shape"]), bytes(t["data"])) for name, t in safetensors.deserialize(f.read())
        }


def _bits(value):
    if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        value = jax.random.key_data(value)
    return np.asarray(value).tobytes()


def _every_dtype_params():
    data = {}
    for i, (code, dtype) in enumerate(DTYPES.items()):
        value = _random(dtype, (2, 3), i)
        # 64-bit values live in numpy arrays (a JAX array would be 32-bit without jax_enable_x64).
        if np.dtype(dtype).itemsize < 8 or code == "C64":
            value = jnp.asarray(value)
        data[("net", code.lower(), "w")] = bx.Param(value, trainable=i % 2 == 0, metadata={"i": i})
    data[("net", "rng", "threefry")] = bx.Param(jax.random.split(jax.random.key(5), 3), trainable=False)
    data[("net", "rng", "rbg")] = bx.Param(jax.random.key(6, impl="rbg"), trainable=False)
    data[("net", "dense", "kernel")] = bx.Param(jnp.ones((2, 4)), metadata={"sharding": (None, "model")})
    return bx.Params(data)


@pytest.mark.parametrize("locked", [True, False])
def test_every_dtype_round_trips_bit_for_bit(tmp_path, locked):
    params = _every_dtype_params()
    params = params.locked() if locked else params
    f = tmp_path / "all.safetensors"
    bx.save(f, params, metadata={"step": "100"})
    loaded = bx.load(f)
    assert list(loaded) == list(params) and loaded.is_locked == locked
    for path, p in params.items():
        q = loaded[path]
        assert (q.trainable, q.metadata) == (p.trainable, p.metadata), path
        assert q.value.dtype == p.value.dtype and q.value.shape == p.value.shape, path
        assert _bits(q.value) == _bits(p.value), path
    # The official library sees the same dtype codes, shapes and bytes.
    ref = _reference(f)
    for code in DTYPES:
        path = ("net", code.lower(), "w")
        assert ref[bx.path_str(path)] == (code, (2, 3), _bits(params[path].value)), code
    assert ref["net/rng/rbg"][:2] == ("U32", (4,)) and ref["net/rng/threefry"][:2] == ("U32", (3, 2))
    assert read_header(f).metadata == {"step": "100"}


def test_64_bit_values_are_never_truncated(tmp_path):
    big = np.array([2**40 + 7, -(2**62)], np.int64)
    precise = np.array([np.pi, 1 + 2**-50], np.float64)
    huge = np.array([2**64 - 1], np.uint64)
    params = bx.Params({("a",): bx.Param(big), ("b",): bx.Param(precise), ("c",): bx.Param(huge)})
    f = tmp_path / "x64.safetensors"
    bx.save(f, params)
    ref = _reference(f)
    assert ref["a"] == ("I64", (2,), big.tobytes()) and ref["b"] == ("F64", (2,), precise.tobytes())
    loaded = bx.load(f)
    for path, want in [("a", big), ("b", precise), ("c", huge)]:
        got = loaded[path].value
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), path
    with jax.enable_x64(True):
        loaded = bx.load(f)
        got = loaded["a"].value
        assert isinstance(got, jax.Array) and got.dtype == jnp.int64 and np.asarray(got).tobytes() == big.tobytes()
        assert bx.load(f, abstract=True)["b"].value.dtype == np.float64


def test_foreign_64_bit_tensors_load_exactly(tmp_path):
    f = tmp_path / "hf.safetensors"
    ids = np.arange(2**40, 2**40 + 4, dtype=np.int64)
    save_file({"embeddings.position_ids": ids}, str(f))
    got = bx.load(f)["embeddings/position_ids"].value
    assert got.dtype == np.int64 and np.array_equal(got, ids)


@pytest.mark.parametrize("key", ["params", "format", "format_version", "locked", "__metadata__"])
def test_user_metadata_never_overwrites_bloxs_own(tmp_path, key):
    params = bx.Params(
        {("rng", "seed"): bx.Param(jax.random.key(1), trainable=False), ("w",): bx.Param(jnp.ones(2))}
    ).locked()
    f = tmp_path / "m.safetensors"
    bx.save(f, params, metadata={key: "[]"})
    loaded = bx.load(f)
    assert loaded.is_locked and not loaded["rng/seed"].trainable
    assert loaded["rng/seed"].value.dtype == params["rng/seed"].value.dtype
    assert read_header(f).metadata == {key: "[]"}
    with safetensors.safe_open(str(f), "numpy") as h:
        assert h.metadata()[key] == "[]"


def test_the_reserved_metadata_key_is_refused(tmp_path):
    with pytest.raises(bx.CheckpointError, match=r"metadata key 'blox' is reserved for blox's own header entry"):
        bx.save(tmp_path / "m.safetensors", bx.Params({("w",): bx.Param(jnp.ones(2))}), metadata={"blox": "x"})
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("metadata, match", [({"step": 100}, r"'step' is int"), ({3: "x"}, r"key 3 is int")])
def test_user_metadata_must_be_strings(tmp_path, metadata, match):
    with pytest.raises(bx.CheckpointError, match=r"metadata must map strings to strings: " + match):
        bx.save(tmp_path / "m.safetensors", bx.Params({("w",): bx.Param(jnp.ones(2))}), metadata=metadata)
    assert not (tmp_path / "m.safetensors").exists()


def test_awkward_paths_round_trip(tmp_path):
    paths = [("__metadata__",), ("",), ("a", ""), ("", "a"), ("a/b",), ("a", "b"), ("\\",), ("\\__metadata__",)]
    params = bx.Params({p: bx.Param(jnp.full(2, i, jnp.float32)) for i, p in enumerate(paths)})
    f = tmp_path / "odd.safetensors"
    bx.save(f, params)
    loaded = bx.load(f)
    assert sorted(loaded) == sorted(paths)
    for i, p in enumerate(paths):
        assert loaded[p].value.tolist() == [i, i], p
    with safetensors.safe_open(str(f), "numpy") as h:  # every tensor is visible to the official reader
        assert len(h.keys()) == len(paths)


def test_the_empty_path_is_refused(tmp_path):
    with pytest.raises(bx.CheckpointError, match=r"cannot save a param at the empty path \(\)"):
        bx.save(tmp_path / "m.safetensors", bx.Params({(): bx.Param(jnp.ones(2))}))
    assert not (tmp_path / "m.safetensors").exists()


def test_foreign_files_load_with_paths_split_from_their_names(tmp_path):
    f = tmp_path / "foreign.safetensors"
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_file({"encoder.layer.0.weight": w, "decoder/out": w[0], "plain": w[1]}, str(f), metadata={"a": "b"})
    params = bx.load(f)
    assert sorted(params) == [("decoder", "out"), ("encoder", "layer", "0", "weight"), ("plain",)]
    assert all(p.trainable and not p.metadata for p in params.values()) and not params.is_locked
    np.testing.assert_array_equal(params["encoder/layer/0/weight"].value, w)
    header = read_header(f)
    assert not header.is_blox and header.metadata == {"a": "b"}


def test_files_we_write_read_back_with_the_official_library(tmp_path):
    params = _every_dtype_params()
    f = tmp_path / "all.safetensors"
    bx.save(f, params)
    with safetensors.safe_open(str(f), "numpy") as h:
        for code, dtype in DTYPES.items():
            if code.startswith("F8"):  # safetensors' numpy framework has no float8 types
                continue
            path = ("net", code.lower(), "w")
            got = h.get_tensor(bx.path_str(path))
            assert got.dtype == np.dtype(dtype) and got.tobytes() == _bits(params[path].value), code


def test_the_blox_entry_describes_only_what_differs_from_defaults(tmp_path):
    params = bx.Params(
        {
            ("net", "w"): bx.Param(jnp.ones(2)),
            ("net", "a/b"): bx.Param(jnp.ones(2)),
            ("net", "bn", "mean"): bx.Param(jnp.ones(2), trainable=False),
            ("net", "k"): bx.Param(jnp.ones(2), metadata={"sharding": ("model",)}),
        }
    ).locked()
    f = tmp_path / "m.safetensors"
    bx.save(f, params)
    with safetensors.safe_open(str(f), "numpy") as h:
        own = json.loads(h.metadata()["blox"])
    assert own == {
        "format_version": 2,
        "locked": True,
        "tensors": {
            "net/a\\/b": {"path": ["net", "a/b"]},
            "net/bn/mean": {"trainable": False},
            "net/k": {"metadata": {"sharding": ["model"]}},
        },
    }
