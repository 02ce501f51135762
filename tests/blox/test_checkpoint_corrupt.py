"""Every malformed checkpoint is a CheckpointError naming the file and what is wrong; nothing else escapes.

The official library is the reference for what a valid file is: whatever ``bx.read_header``
accepts, ``safetensors.safe_open`` opens too, with the same tensors.
"""

import json
import os
import struct
import threading

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import safetensors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import blox as bx
from blox import _safetensors as st


def _write(path, header, data=b"", raw=None):
    body = raw if raw is not None else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + data)
    return path


def _f32(offsets, shape=(1,)):
    return {"dtype": "F32", "shape": list(shape), "data_offsets": list(offsets)}


CASES = {
    "overlap": (
        {"a": _f32([0, 8], [2]), "b": _f32([4, 12], [2])},
        12,
        r"tensors 'a' \(data bytes 0\.\.8\) and 'b' \(from byte 4\) overlap",
    ),
    "gap": ({"a": _f32([4, 8])}, 8, r"data bytes 0\.\.4 belong to no tensor \(a gap before 'a'\)"),
    "trailing": ({"a": _f32([0, 4])}, 8, r"4 bytes after the last tensor belong to no tensor"),
    "truncated": ({"a": _f32([0, 8], [2])}, 4, r"truncated: tensor 'a' ends at byte \d+ but the file has \d+ bytes"),
    "negative dim": ({"a": _f32([0, 4], [-1])}, 4, r"tensor 'a' has shape \[-1\]; expected a list of non-negative"),
    "float dim": ({"a": _f32([0, 8], [2.7])}, 8, r"tensor 'a' has shape \[2\.7\]"),
    "bool dim": ({"a": _f32([0, 4], [True])}, 4, r"tensor 'a' has shape \[True\]"),
    "shape not a list": ({"a": {"dtype": "F32", "shape": 3, "data_offsets": [0, 4]}}, 4, r"tensor 'a' has shape 3"),
    "int64-overflowing dims": (
        {"a": _f32([0, 0], [2**62, 2**62])},
        0,
        r"tensor 'a' has shape \[4611686018427387904, 4611686018427387904\], too large for any array",
    ),
    "overflow hidden by a zero": (
        {"a": _f32([0, 0], [0, 2**64])},
        0,
        r"tensor 'a' has shape \[0, 18446744073709551616\], too large for any array",
    ),
    "size": ({"w": _f32([0, 4], [2])}, 4, r"tensor 'w': 4 bytes stored but shape \(2,\) of F32 needs 8"),
    "offsets reversed": ({"a": _f32([4, 0])}, 4, r"tensor 'a' has data_offsets \[4, 0\]; expected \[start, end\]"),
    "offsets short": ({"a": _f32([0])}, 4, r"tensor 'a' has data_offsets \[0\]"),
    "offsets float": ({"a": _f32([0, 4.0])}, 4, r"tensor 'a' has data_offsets \[0, 4\.0\]"),
    "no offsets": ({"w": {"dtype": "F32", "shape": [2]}}, 8, r"tensor 'w' has a malformed header entry"),
    "entry not an object": ({"w": 5}, 0, r"tensor 'w' has a malformed header entry: 5"),
    "entry a list": ({"w": [1]}, 0, r"tensor 'w' has a malformed header entry: \[1\]"),
    "unknown dtype": (
        {"w": {"dtype": "X9", "shape": [1], "data_offsets": [0, 8]}},
        8,
        r"tensor 'w' has dtype 'X9', which blox cannot read \(supported: BOOL, U8",
    ),
    "dtype not a string": (
        {"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}},
        4,
        r"tensor 'w' has dtype \['F32'\]",
    ),
    "metadata a list": ({"__metadata__": [1]}, 0, r"__metadata__ is list, expected an object of strings"),
    "metadata value not text": (
        {"__metadata__": {"step": 100}},
        0,
        r"__metadata__ entry 'step' is int, expected a string",
    ),
    "not an object": (
        [1, 2],
        0,
        r"not a safetensors checkpoint: the header is not valid JSON \(header is not a JSON object\)",
    ),
    "lone surrogate": ({"\ud800": _f32([0, 4])}, 4, r"a tensor name is not valid UTF-8 text"),
}


@pytest.mark.parametrize("case", CASES)
def test_malformed_headers_are_clear_errors(tmp_path, case):
    header, size, match = CASES[case]
    f = _write(tmp_path / "bad.safetensors", header, b"\0" * size)
    with pytest.raises(bx.CheckpointError, match=r"bad.safetensors: (not a safetensors checkpoint: )?" + match):
        bx.read_header(f)
    with pytest.raises(safetensors.SafetensorError):  # the official library refuses it too
        safetensors.safe_open(str(f), "numpy")


@pytest.mark.parametrize(
    "raw, match",
    [
        (b"[" * 100_000 + b"]" * 100_000, r"not valid JSON \(nested too deeply\)"),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", r"not valid JSON \(nested too deeply\)"),
        (b'{"a": NaN}', r"not valid JSON \(NaN is not JSON\)"),
        (b"\xff\xfe{}", r"not valid JSON \('utf-8' codec can't decode"),
        (b"", r"not valid JSON \(Expecting value"),
        (b"{not json......}", r"not valid JSON \(Expecting property name"),
    ],
    ids=["deep list", "deep value", "NaN", "not utf-8", "empty", "not json"],
)
def test_unparseable_headers_are_clear_errors(tmp_path, raw, match):
    f = _write(tmp_path / "bad", None, raw=raw)
    with pytest.raises(bx.CheckpointError, match=r"bad: not a safetensors checkpoint: the header is " + match):
        bx.load(f)


def test_truncated_and_foreign_files_are_clear_errors(tmp_path):
    good = tmp_path / "m.safetensors"
    bx.save(good, bx.Params({("w",): bx.Param(jnp.ones(4))}))
    data = good.read_bytes()
    (tmp_path / "cut").write_bytes(data[:-5])
    with pytest.raises(bx.CheckpointError, match=r"cut: truncated: tensor 'w' ends at byte \d+ but the file has \d+"):
        bx.load(tmp_path / "cut")
    (tmp_path / "head").write_bytes(data[:40])
    with pytest.raises(bx.CheckpointError, match=r"head: not a safetensors checkpoint \(or truncated\): header claims"):
        bx.load(tmp_path / "head")
    (tmp_path / "tiny").write_bytes(b"abc")
    with pytest.raises(bx.CheckpointError, match=r"tiny: not a safetensors checkpoint: only 3 bytes"):
        bx.load(tmp_path / "tiny")
    (tmp_path / "pickle.pt").write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    with pytest.raises(bx.CheckpointError, match=r"pickle.pt: not a safetensors checkpoint"):
        bx.load(tmp_path / "pickle.pt")
    with pytest.raises(bx.CheckpointError, match=r"missing.safetensors: cannot read checkpoint: No such file"):
        bx.load(tmp_path / "missing.safetensors")


def test_a_header_over_the_format_limit_is_refused_unread(tmp_path):
    f = tmp_path / "huge"
    with open(f, "wb") as h:
        h.write(struct.pack("<Q", st.MAX_HEADER + 1))
        h.truncate(st.MAX_HEADER + 64)  # sparse: no disk used
    with pytest.raises(
        bx.CheckpointError, match=r"huge: .*header claims 100,000,001 bytes, more than the format's limit"
    ):
        bx.read_header(f)


def test_non_regular_files_are_refused_without_waiting(tmp_path):
    with pytest.raises(bx.CheckpointError, match=r"^/dev/zero: is a character device, not a checkpoint file"):
        bx.read_header("/dev/zero")
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    done = []
    # No writer ever opens the FIFO: a reader that waited for one would never finish.
    thread = threading.Thread(target=lambda: done.append(_error(bx.read_header, fifo)), daemon=True)
    thread.start()
    thread.join(20)
    assert done and "pipe.safetensors: is a FIFO (named pipe), not a checkpoint file" in done[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        bx.CheckpointError, match=r"empty: folder holds no model.safetensors.index.json or .safetensors file"
    ):
        bx.read_header(tmp_path / "empty")


def _error(fn, *args):
    try:
        fn(*args)
    except bx.CheckpointError as e:
        return str(e)
    return "no error"


def _blox_file(tmp_path, blox_meta):
    header = {"__metadata__": {"blox": blox_meta}, "w": _f32([0, 8], [2])}
    return _write(tmp_path / "b.safetensors", header, b"\0" * 8)


def _entry(**kw):
    return json.dumps({"format_version": 2, "locked": False, "tensors": {"w": {"path": ["w"], **kw}}})


@pytest.mark.parametrize(
    "blox_meta, match",
    [
        ("{oops", r"blox metadata in the header is damaged \(JSONDecodeError"),
        ("[]", r"blox metadata in the header is damaged \(no format_version\)"),
        (
            json.dumps({"format_version": 3}),
            r"written by a newer blox \(checkpoint format 3; this blox reads up to 2\)",
        ),
        (json.dumps({"format_version": 2, "locked": "no", "tensors": {}}), r"locked must be true/false"),
        (
            json.dumps({"format_version": 2, "locked": False, "tensors": {"w": {"path": ["w"]}, "v": {"path": ["v"]}}}),
            r"the blox metadata lists 1 tensor\(s\) the file does not hold \(e\.g\. 'v'\)",
        ),
        (_entry(path=[]), r"tensor 'w': path must be a non-empty list of strings"),
        (_entry(path="w"), r"tensor 'w': path must be a non-empty list of strings"),
        (_entry(trainable="yes"), r"tensor 'w': trainable must be true/false"),
        (
            _entry(key_impl="rbg", key_shape=[]),
            r"tensor 'w' is a PRNG key \(rbg, shape \(\)\) but holds F32\[2\]; expected U32\[4\]",
        ),
        (
            _entry(key_impl="nope", key_shape=[]),
            r"tensor 'w' is a PRNG key of implementation 'nope', which this JAX does not know",
        ),
        (
            _entry(key_impl="rbg", key_shape=[-1]),
            r"tensor 'w': key_impl must be a string and key_shape a list of sizes",
        ),
    ],
)
def test_damaged_blox_metadata_is_a_clear_error(tmp_path, blox_meta, match):
    f = _blox_file(tmp_path, blox_meta)
    with pytest.raises(
        bx.CheckpointError, match=r"b.safetensors: (blox metadata in the header is damaged \()?" + match
    ):
        bx.load(f)


def test_format_1_damaged_metadata(tmp_path):
    f = _write(tmp_path / "bad", {"__metadata__": {"format": "blox", "params": "{oops"}})
    with pytest.raises(bx.CheckpointError, match=r"bad: blox metadata in the header is damaged"):
        bx.load(f)
    # Format 1 described every tensor; format 2 leaves out the ones with default facts.
    f = _write(tmp_path / "v1", {"__metadata__": {"format": "blox", "params": "[]"}, "w": _f32([0, 4])}, b"\0" * 4)
    with pytest.raises(bx.CheckpointError, match=r"v1: tensor 'w' is missing from the blox metadata"):
        bx.load(f)


def test_two_foreign_names_for_one_path_are_refused(tmp_path):
    from safetensors.numpy import save_file

    save_file({"a.b": np.ones(1, np.float32), "a/b": np.ones(1, np.float32)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(bx.CheckpointError, match=r"x.safetensors: tensors 'a.b' and 'a/b' both map to the path 'a/b'"):
        bx.read_header(tmp_path / "x.safetensors")


def test_a_file_changed_after_its_header_was_read_is_detected(tmp_path):
    f = tmp_path / "m.safetensors"
    bx.save(f, bx.Params({("w",): bx.Param(jnp.ones(2))}))
    header = bx.read_header(f)
    bx.save(f, bx.Params({("w",): bx.Param(jnp.ones(3))}))
    with pytest.raises(bx.CheckpointError, match=r"tensor 'w' is now float32\[3\] but the header read earlier said"):
        bx.read_tensor(header, header.tensors[0])
    header.close()
    with open(f, "r+b") as h:  # cut after the header was read: the official reader refuses the file
        h.truncate(os.path.getsize(f) - 4)
    with pytest.raises(bx.CheckpointError, match=r"m.safetensors: the safetensors library cannot read tensor 'w': .*"):
        bx.read_tensor(header, header.tensors[0])


# --- fuzzing: damaged bytes and generated headers -------------------------------------------


def _seed_file(tmp_path):
    params = bx.Params(
        {
            ("net", "w"): bx.Param(jnp.arange(6.0).reshape(2, 3), metadata={"sharding": (None, "model")}),
            ("net", "b"): bx.Param(jnp.ones(3, jnp.bfloat16), trainable=False),
            ("net", "q"): bx.Param(jnp.ones(2, ml_dtypes.float8_e4m3fn)),
            ("rng", "seed"): bx.Param(jax.random.key(1), trainable=False),
        }
    ).locked()
    f = tmp_path / "seed.safetensors"
    bx.save(f, params, metadata={"note": "x"})
    return f.read_bytes()


def _check_only_checkpoint_errors(f):
    """load() succeeds or raises CheckpointError; an accepted header is one the official library accepts."""
    try:
        header = bx.read_header(f)
    except bx.CheckpointError:
        return
    with safetensors.safe_open(str(f), "numpy") as h:
        assert sorted(h.keys()) == sorted(t.name for t in header.tensors)
        for t in header.tensors:
            s = h.get_slice(t.name)
            assert (s.get_dtype(), tuple(s.get_shape())) == (t.stored, t.stored_shape)
    try:
        bx.load(f)
    except bx.CheckpointError:
        pass


_FUZZ = settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_FUZZ
@given(data=hs.data())
def test_fuzz_damaged_bytes(tmp_path, data):
    seed = _SEED.get("bytes") or _SEED.setdefault("bytes", _seed_file(tmp_path))
    buf = bytearray(seed)
    n = int.from_bytes(seed[:8], "little")
    for _ in range(data.draw(hs.integers(1, 4))):
        op = data.draw(hs.sampled_from(["flip", "cut", "insert", "length", "header char"]))
        if op == "flip" and buf:
            i = data.draw(hs.integers(0, len(buf) - 1))
            buf[i] ^= data.draw(hs.integers(1, 255))
        elif op == "cut":
            del buf[data.draw(hs.integers(0, len(buf))) :]
        elif op == "insert":
            i = data.draw(hs.integers(0, len(buf)))
            buf[i:i] = data.draw(hs.binary(min_size=1, max_size=8))
        elif op == "length" and len(buf) >= 8:
            buf[:8] = data.draw(hs.integers(0, 2**64 - 1)).to_bytes(8, "little")
        elif op == "header char" and len(buf) > 9:
            # Swap a header character for JSON punctuation: breaks structure rather than just text.
            i = data.draw(hs.integers(8, min(8 + n, len(buf)) - 1))
            buf[i] = ord(data.draw(hs.sampled_from(list('{}[]":,0-9 e.'))))
    f = tmp_path / "fuzz.safetensors"
    f.write_bytes(bytes(buf))
    _check_only_checkpoint_errors(f)


_SEED: dict = {}
_json = hs.recursive(
    hs.none() | hs.booleans() | hs.integers(-(2**65), 2**65) | hs.floats(allow_nan=False) | hs.text(max_size=4),
    lambda inner: hs.lists(inner, max_size=3) | hs.dictionaries(hs.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
_dim = hs.integers(-2, 4) | hs.sampled_from([2**31, 2**63, 2**64]) | _json
_entry_strategy = hs.fixed_dictionaries(
    {
        "dtype": hs.sampled_from(["F32", "BF16", "F8_E4M3", "U32", "I64", "BOOL", "C64", "F4", "X"]) | _json,
        "shape": hs.lists(_dim, max_size=3) | _json,
        "data_offsets": hs.lists(hs.integers(-1, 40), min_size=2, max_size=2) | _json,
    }
)


@_FUZZ
@given(
    entries=hs.dictionaries(hs.sampled_from(["a", "b", "c", "__metadata__", ""]), _entry_strategy | _json, max_size=3),
    metadata=hs.none()
    | hs.dictionaries(hs.sampled_from(["blox", "format", "params", "k"]), hs.text(max_size=8) | _json, max_size=2),
    data=hs.binary(max_size=48),
)
def test_fuzz_generated_headers(tmp_path, entries, metadata, data):
    header = dict(entries)
    if metadata is not None:
        header["__metadata__"] = metadata
    f = _write(tmp_path / "gen.safetensors", header, data)
    _check_only_checkpoint_errors(f)
