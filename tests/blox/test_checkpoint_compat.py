"""Files written by earlier blox versions keep loading (fixtures made by fixtures/make_v1_checkpoints.py)."""

import os

import jax
import ml_dtypes
import numpy as np

import blox as bx

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def _expected():
    six = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    return six, {
        ("net", "dense", "kernel"): (six, True, {"sharding": (None, "model")}),
        ("net", "dense", "bias"): (six[0].astype(ml_dtypes.bfloat16), True, {}),
        ("net", "bn", "mean"): (six[1], False, {}),
        ("net", "q", "w"): (six.astype(ml_dtypes.float8_e4m3fn), True, {}),
        ("net", "a/b", "count"): (np.array([3, -4], np.int32), False, {}),
    }


def test_format_1_files_load_exactly():
    _, expected = _expected()
    params = bx.load(os.path.join(FIXTURES, "v1_locked.safetensors"))
    assert params.is_locked
    assert set(params) == set(expected) | {("net", "rng", "seed"), ("net", "rng2", "seed")}
    for path, (value, trainable, metadata) in expected.items():
        p = params[path]
        got = np.asarray(p.value)
        assert got.dtype == value.dtype and got.shape == value.shape, path
        assert got.tobytes() == value.tobytes(), path
        assert (p.trainable, dict(p.metadata)) == (trainable, metadata), path
    for path, ref in [
        (("net", "rng", "seed"), jax.random.key(7)),
        (("net", "rng2", "seed"), jax.random.key(9, impl="rbg")),
    ]:
        key = params[path].value
        assert key.dtype == ref.dtype and not params[path].trainable
        np.testing.assert_array_equal(jax.random.key_data(key), jax.random.key_data(ref))


def test_format_1_unlocked_file_and_header():
    params = bx.load(os.path.join(FIXTURES, "v1_unlocked.safetensors"))
    assert not params.is_locked and list(params) == [("net", "dense", "bias"), ("net", "dense", "kernel")]
    header = bx._checkpoint.read_header(os.path.join(FIXTURES, "v1_locked.safetensors"))
    assert header.is_blox and header.locked and header.format_version == 1
    assert header.metadata == {"note": "written by format 1"}  # blox's own format-1 keys are not user metadata
    seed = next(t for t in header.tensors if t.path == ("net", "rng", "seed"))
    assert (seed.shape, seed.key_impl, seed.trainable) == ((), "threefry2x32", False)
