"""blox_inspect.analysis.diff: checkpoint differences, with value deltas against numpy."""

import jax.numpy as jnp
import numpy as np
import pytest

import blox as bx
from blox_inspect.analysis.diff import compare_values, diff_checkpoints


def _save(path, arrays):
    bx.save(path, bx.Params({bx.parse_path(k): bx.Param(jnp.asarray(v)) for k, v in arrays.items()}))
    return str(path)


def test_statuses_and_value_deltas(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    w2 = w.copy()
    w2[1, 2] += 0.5
    a = _save(
        tmp_path / "a.safetensors",
        {
            "net/w": w,
            "net/same": np.ones(3, np.float32),
            "net/gone": np.zeros(2, np.float32),
            "net/grow": np.zeros(2, np.float32),
            "net/cast": np.ones(2, np.float32),
        },
    )
    b = _save(
        tmp_path / "b.safetensors",
        {
            "net/w": w2,
            "net/same": np.ones(3, np.float32),
            "net/new": np.zeros(1, np.float32),
            "net/grow": np.zeros(3, np.float32),
            "net/cast": np.ones(2, np.float16),
        },
    )
    d = diff_checkpoints(a, b)
    by = {p.path: p for p in d.params}
    assert {k: p.status for k, p in by.items()} == {
        "net/w": "changed",
        "net/same": "unchanged",
        "net/gone": "removed",
        "net/grow": "shape",
        "net/cast": "dtype",
        "net/new": "added",
    }
    ref = w2.astype(np.float64) - w.astype(np.float64)
    assert by["net/w"].max_abs == pytest.approx(np.abs(ref).max())
    assert by["net/w"].rel_norm == pytest.approx(np.linalg.norm(ref) / np.linalg.norm(w.astype(np.float64)))
    assert by["net/same"].max_abs == 0.0 and by["net/same"].rel_norm == 0.0
    assert by["net/grow"].max_abs is None and (by["net/grow"].shape_a, by["net/grow"].shape_b) == ([2], [3])
    assert by["net/cast"].dtype_b == "float16" and by["net/cast"].max_abs == 0.0
    assert d.counts() == {"added": 1, "removed": 1, "shape": 1, "dtype": 1, "changed": 1, "unchanged": 1}


def test_non_finite_values():
    a = np.array([1.0, np.nan, np.inf, 0.0])
    assert compare_values(a, a.copy()) == (0.0, 0.0, 0)
    b = np.array([1.0, 2.0, -np.inf, 0.0])
    max_abs, rel, nan_changed = compare_values(a, b)
    assert (max_abs, rel, nan_changed) == (0.0, 0.0, 2)
    # from all zeros to something: infinitely large relative change
    assert compare_values(np.zeros(2), np.array([0.0, 1.0]))[1] == float("inf")


def test_bad_file_is_a_clear_error(tmp_path):
    from blox_inspect import InspectError

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 4)
    good = _save(tmp_path / "a.safetensors", {"w": np.ones(1, np.float32)})
    with pytest.raises(InspectError, match=r"bad.safetensors: not a safetensors checkpoint.*Pass a .safetensors file"):
        diff_checkpoints(good, bad)
