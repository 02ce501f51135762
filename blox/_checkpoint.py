"""Checkpoints in the safetensors format: values, flags, metadata and lock state.

The format is an 8-byte little-endian header length, a JSON header, then raw
little-endian tensor bytes. We read and write it directly so that every JAX
dtype (bfloat16, float8, PRNG keys as their uint32 data) round-trips, the header
can be read without the data, and nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from ._errors import CheckpointError
from ._params import Param, Params, freeze, thaw
from ._paths import Path, path_str

FORMAT = "blox"
FORMAT_VERSION = "1"
_MAX_HEADER = 100 * 1024 * 1024

_DTYPES: dict[str, Any] = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": ml_dtypes.bfloat16,
    "F8_E4M3": ml_dtypes.float8_e4m3fn,
    "F8_E5M2": ml_dtypes.float8_e5m2,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U64": np.uint64,
    "U32": np.uint32,
    "U16": np.uint16,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}


@dataclass(frozen=True)
class TensorInfo:
    """One entry of a checkpoint header: what is stored, without its data."""

    name: str
    path: Path
    shape: tuple[int, ...]
    dtype: str  # numpy/jax dtype name, e.g. 'float32' or 'key<fry>'
    trainable: bool
    metadata: dict
    offsets: tuple[int, int]
    key_impl: str | None = None
    stored: str = "F32"  # the safetensors dtype code of the bytes (a key's raw data is U32)

    @property
    def nbytes(self) -> int:
        return self.offsets[1] - self.offsets[0]


@dataclass(frozen=True)
class CheckpointHeader:
    path: str
    locked: bool
    tensors: list[TensorInfo]
    data_start: int
    is_blox: bool


def _fail(file: str, what: str) -> CheckpointError:
    return CheckpointError(f"{file}: {what}")


def read_header(file: str | os.PathLike) -> CheckpointHeader:
    """Reads a safetensors header only (no tensor data).

    Files written by other tools are accepted too: their tensor names are
    split on ``/`` or ``.`` into paths and every tensor counts as trainable.
    """
    file = os.fspath(file)
    try:
        size = os.path.getsize(file)
        with open(file, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise _fail(
                    file,
                    f"not a safetensors checkpoint: only {len(head)} bytes, expected an 8-byte header length first.",
                )
            (n,) = struct.unpack("<Q", head)
            if n > min(_MAX_HEADER, size - 8):
                raise _fail(
                    file,
                    f"not a safetensors checkpoint (or truncated): header claims {n} bytes but the file has {size - 8} after the length field.",
                )
            raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"{file}: cannot read checkpoint: {e.strerror or e}") from e
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (UnicodeDecodeError, ValueError) as e:
        raise _fail(file, f"not a safetensors checkpoint: the header is not valid JSON ({e}).") from e
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict):
        raise _fail(file, f"not a safetensors checkpoint: __metadata__ is {type(meta).__name__}, expected an object.")
    is_blox = meta.get("format") == FORMAT
    entries = {}
    if is_blox:
        try:
            entries = {e["name"]: e for e in json.loads(meta["params"])}
        except (KeyError, ValueError, TypeError) as e:
            raise _fail(file, f"blox metadata in the header is damaged ({e}).") from e
    data_start = 8 + n
    tensors = []
    for name, info in header.items():
        try:
            code, shape, (lo, hi) = info["dtype"], tuple(int(s) for s in info["shape"]), info["data_offsets"]
            code, lo, hi = str(code), int(lo), int(hi)
        except (KeyError, TypeError, ValueError) as e:
            raise _fail(file, f"tensor {name!r} has a malformed header entry: {info!r}.") from e
        if code not in _DTYPES:
            raise _fail(
                file, f"tensor {name!r} has dtype {code!r}, which blox cannot read (supported: {', '.join(_DTYPES)})."
            )
        expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(_DTYPES[code]).itemsize
        if hi - lo != expected or lo < 0:
            raise _fail(file, f"tensor {name!r}: {hi - lo} bytes stored but shape {shape} of {code} needs {expected}.")
        if data_start + hi > size:
            raise _fail(
                file,
                f"truncated: tensor {name!r} ends at byte {data_start + hi} but the file has {size} bytes. Re-save or re-download it.",
            )
        e = entries.get(name)
        if is_blox and e is None:
            raise _fail(file, f"tensor {name!r} is missing from the blox metadata.")
        dtype = np.dtype(_DTYPES[code]).name
        if e is not None and e.get("key_impl"):
            dtype = f"key<{e['key_impl']}>"
        tensors.append(
            TensorInfo(
                name=name,
                path=tuple(e["path"]) if e else _foreign_path(name),
                shape=shape if not (e and e.get("key_impl")) else tuple(e["key_shape"]),
                dtype=dtype,
                trainable=bool(e["trainable"]) if e else True,
                metadata=e.get("metadata", {}) if e else {},
                offsets=(int(lo), int(hi)),
                key_impl=e.get("key_impl") if e else None,
                stored=code,
            )
        )
    tensors.sort(key=lambda t: t.offsets[0])
    return CheckpointHeader(file, meta.get("locked") == "true", tensors, data_start, is_blox)


def _foreign_path(name: str) -> Path:
    sep = "/" if "/" in name else "."
    return tuple(name.split(sep))


def _read_array(f, header: CheckpointHeader, t: TensorInfo) -> np.ndarray:
    f.seek(header.data_start + t.offsets[0])
    arr = np.frombuffer(f.read(t.nbytes), dtype=np.dtype(_DTYPES[t.stored]).newbyteorder("<"))
    # A key's stored shape adds its impl's trailing words; callers reshape it (see load).
    return arr if t.key_impl else arr.reshape(t.shape)


def load(file: str | os.PathLike, like: Params | None = None, *, abstract: bool = False) -> Params:
    """Loads Params saved by :func:`save` (or any safetensors file).

    With ``like`` (e.g. ``jax.eval_shape`` of the model's init), every path,
    shape and dtype is checked against the model, and a mismatch raises a
    :class:`CheckpointError` listing what differs. With ``abstract=True``
    only the header is read and values are ``jax.ShapeDtypeStruct``.

    Example:
        >>> import jax.numpy as jnp, blox as bx, tempfile, os
        >>> p = bx.Params({('net', 'w'): bx.Param(jnp.arange(3.0))}).locked()
        >>> f = os.path.join(tempfile.mkdtemp(), 'ckpt.safetensors')
        >>> bx.save(f, p)
        >>> q = bx.load(f)
        >>> q['net/w'].value.tolist(), q.is_locked
        ([0.0, 1.0, 2.0], True)

    A folder (see :func:`save`) is a sharded Orbax checkpoint: see ``blox._orbax.load``.
    """
    from . import _orbax  # imported here: _orbax imports this module

    if _orbax.is_folder(file, saving=False):
        return _orbax.load(file, like, abstract=abstract)
    header = read_header(file)
    data: dict[Path, Param] = {}
    with open(header.path, "rb") as f:
        for t in header.tensors:
            if t.path in data:
                raise _fail(header.path, f"two tensors map to the same path {path_str(t.path)!r}.")
            if abstract:
                if t.key_impl:
                    value = _abstract_key(t.shape, t.key_impl)
                else:
                    value = jax.ShapeDtypeStruct(t.shape, np.dtype(t.dtype))
            else:
                arr = _read_array(f, header, t)
                if t.key_impl:
                    raw = arr.reshape(t.shape + _key_trailing(t.key_impl))
                    value = jax.random.wrap_key_data(jnp.asarray(raw), impl=t.key_impl)
                else:
                    value = jnp.asarray(arr)
            data[t.path] = Param(value, t.trainable, t.metadata)
    params = Params(data, locked=header.locked)
    if like is not None:
        check_matches(params, like, where=header.path)
    return params


def _abstract_key(shape: tuple[int, ...], impl: str) -> Any:
    raw = jnp.zeros(shape + _key_trailing(impl), jnp.uint32)
    return jax.eval_shape(lambda r: jax.random.wrap_key_data(r, impl=impl), raw)


def _key_trailing(impl: str) -> tuple[int, ...]:
    return tuple(jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0, impl=impl))).shape)


def check_matches(params: Params, like: Params, where: str = "checkpoint") -> None:
    """Raises CheckpointError unless ``params`` has exactly ``like``'s paths, shapes and dtypes."""
    missing = [p for p in like if p not in params]
    extra = [p for p in params if p not in like]
    wrong = []
    for path, ref in like.items():
        got = params.get(path)
        if got is None:
            continue
        gs, rs = tuple(got.value.shape), tuple(ref.value.shape)
        gd, rd = str(got.value.dtype), str(ref.value.dtype)
        if gs != rs or gd != rd:
            wrong.append(f"{path_str(path)}: checkpoint has {gd}{list(gs)}, model needs {rd}{list(rs)}")
    if not (missing or extra or wrong):
        return
    lines = [f"{where}: does not match the model."]
    if missing:
        lines.append(f"  missing in checkpoint ({len(missing)}): " + ", ".join(path_str(p) for p in missing[:8]))
    if extra:
        lines.append(f"  not in the model ({len(extra)}): " + ", ".join(path_str(p) for p in extra[:8]))
    lines += ["  " + w for w in wrong[:8]]
    lines.append("Check that the model is built with the same graph names and sizes as the one that saved it.")
    raise CheckpointError("\n".join(lines))


def save(
    file: str | os.PathLike, params: Params, *, metadata: Mapping[str, str] | None = None, state: Any = None
) -> None:
    """Saves Params atomically: the file appears whole or not at all.

    Values, dtypes (PRNG keys included), trainable flags, Param metadata and
    the lock state are stored; ``load`` restores them exactly.

    A path ending in ``.safetensors`` (or an existing file) is one file, written
    from this process. Any other path is a folder checkpoint written through
    Orbax by every process at once, each writing its own shards; only folders
    take ``state`` (e.g. the optimizer state, restored by ``bx.load_state``).
    See ``blox._orbax.save``.
    """
    from . import _orbax  # imported here: _orbax imports this module

    if _orbax.is_folder(file, saving=True):
        return _orbax.save(file, params, metadata=metadata, state=state)
    _orbax.refuse_for_file(params, file, state)
    file = os.fspath(file)
    if not isinstance(params, Params):
        raise TypeError(f"bx.save expects blox Params, got {type(params).__name__}")
    header: dict[str, Any] = {}
    entries = []
    blobs = []
    offset = 0
    for path, param in params.items():
        name = path_str(path)
        value = param.value
        key_impl = None
        key_shape = None
        if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
            key_impl = str(jax.random.key_impl(value))
            key_shape = list(value.shape)
            value = jax.random.key_data(value)
        arr = np.asarray(jax.device_get(value))
        code = _CODES.get(arr.dtype)
        if code is None:
            raise CheckpointError(
                f"{name}: dtype {arr.dtype} cannot be stored in safetensors (supported: {', '.join(_DTYPES)})."
            )
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
        try:
            meta_json = json.loads(json.dumps(thaw(param.metadata)))
        except TypeError as e:
            raise CheckpointError(f"{name}: Param metadata must be JSON-serialisable to be saved ({e}).") from e
        if freeze(meta_json) != param.metadata:
            # e.g. int keys become strings in JSON; refuse rather than load something different.
            raise CheckpointError(
                f"{name}: Param metadata {thaw(param.metadata)!r} would not load back unchanged from JSON "
                "(keys must be str; values str, numbers, bools, None, lists or dicts)."
            )
        entry = {"name": name, "path": list(path), "trainable": param.trainable, "metadata": meta_json}
        if key_impl:
            entry["key_impl"] = key_impl
            entry["key_shape"] = key_shape
        entries.append(entry)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "locked": "true" if params.is_locked else "false",
        "params": json.dumps(entries),
    }
    meta.update(metadata or {})
    header["__metadata__"] = meta
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)  # data starts 8-byte aligned, as the format recommends
    atomic_write(file, [struct.pack("<Q", len(head)), head, *blobs])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(file: str, chunks: list[bytes] | bytes) -> None:
    """Writes to a temporary file beside ``file`` and renames it into place."""
    if isinstance(chunks, (bytes, bytearray)):
        chunks = [chunks]
    directory = os.path.dirname(os.path.abspath(file))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(file), dir=directory)
    try:
        # mkstemp makes the file owner-only; give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, file)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
