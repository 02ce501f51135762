"""Checkpoints: Params in safetensors files, with trainable flags, Param metadata, PRNG keys and lock state.

A blox checkpoint is a standard safetensors file (written by the official ``safetensors``
package). Each param is one tensor, named by its path string; a PRNG key is stored as its
uint32 key data. Everything else blox knows (each tensor's true path, trainable flag,
Param metadata, key implementation and the lock state) is one JSON document under the
single ``__metadata__`` key ``"blox"``; user metadata sits beside it and can never
overwrite it. Files from other writers load too, as trainable params whose paths are
their names split on ``/`` (or else ``.``). Nothing is ever unpickled.

Reading: :func:`read_header` reads headers only, of a file, a Hugging Face index
(``model.safetensors.index.json``) or a folder holding either; :func:`read_tensor` reads
one tensor at a time; :func:`load` reads Params, checked against a model with ``like=``.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _safetensors as st
from ._checkpoint_match import check_matches as check_matches
from ._checkpoint_match import match_report as match_report
from ._errors import CheckpointError
from ._files import atomic_write as atomic_write  # re-exported: blox_inspect writes -o files with it
from ._params import Param, Params, freeze, thaw
from ._paths import Path, path_str

BLOX_KEY = "blox"  # the one __metadata__ entry blox owns
FORMAT_VERSION = 2
# Format 1 (blox before the safetensors package) kept its facts in these top-level keys.
_V1_KEYS = ("format", "format_version", "locked", "params")
_METADATA_NAME = "__metadata__"  # the header's own key, so no tensor may carry this name

MSG_BLOX_DAMAGED = "blox metadata in the header is damaged ({why})."
MSG_NEWER = "written by a newer blox (checkpoint format {version}; this blox reads up to {known}). Upgrade blox."
MSG_NOT_IN_BLOX = "tensor {name!r} is missing from the blox metadata."
MSG_ONLY_IN_BLOX = "the blox metadata lists {n} tensor(s) the file does not hold (e.g. {name!r})."
MSG_SAME_PATH = "tensors {a!r} and {b!r} both map to the path {path!r}; the checkpoint is ambiguous."
MSG_KEY = "tensor {name!r} is a PRNG key ({impl}, shape {shape}) but holds {code}{stored}; expected U32{want}."
MSG_KEY_IMPL = "tensor {name!r} is a PRNG key of implementation {impl!r}, which this JAX does not know ({why})."
MSG_EMPTY_PATH = (
    "cannot save a param at the empty path (): a checkpoint names every tensor by its path. Give it a name, "
    "e.g. params.set(('value',), param)."
)
MSG_ABSTRACT = "{name}: the value is abstract ({kind}); bx.save needs concrete arrays (run init, not jax.eval_shape)."
MSG_UNSUPPORTED = "{name}: dtype {dtype} cannot be stored in safetensors (supported: {known})."
MSG_PARAM_META = "{name}: Param metadata must be JSON-serialisable to be saved ({why})."
MSG_PARAM_META_CHANGES = (
    "{name}: Param metadata {meta!r} would not load back unchanged from JSON "
    "(keys must be str; values str, numbers, bools, None, lists or dicts)."
)
MSG_USER_META = (
    "bx.save(metadata=...): metadata must map strings to strings: {what}. safetensors stores text only; "
    "convert it first, e.g. metadata={{'step': str(step)}}."
)
MSG_RESERVED = (
    "bx.save(metadata=...): metadata key {key!r} is reserved for blox's own header entry (flags, keys, lock "
    "state); use another key."
)


class TensorInfo(NamedTuple):
    """One tensor of a checkpoint header: what is stored and where, without its data.

    ``shape`` and ``dtype`` are the param's (a PRNG key's dtype is ``key<impl>``); ``stored``
    is the safetensors dtype code of the bytes (U32 for a key's data). ``offsets`` are relative
    to ``data_start`` in ``file``, the file holding this tensor (a shard, for an index).
    An immutable record; a named tuple because a header may hold 300,000 of them, and a
    frozen dataclass takes 3x longer to build.
    """

    name: str
    path: Path
    shape: tuple[int, ...]
    dtype: str
    trainable: bool
    metadata: dict
    offsets: tuple[int, int]
    key_impl: str | None = None
    stored: str = "F32"
    file: str = ""
    data_start: int = 0

    @property
    def nbytes(self) -> int:
        return self.offsets[1] - self.offsets[0]

    @property
    def stored_shape(self) -> tuple[int, ...]:
        """The shape of the stored bytes: a key's shape plus its implementation's key-data words."""
        return self.shape + _key_trailing(self.key_impl) if self.key_impl else self.shape


@dataclass(frozen=True)
class CheckpointHeader:
    """A checkpoint's header: its tensors (in file and data order), lock state and user metadata.

    ``path`` is what was read (a file, an index, or the file or index found in a folder);
    ``files`` the safetensors files holding the tensors. ``data_start`` is the single
    file's data offset (0 for an index; each TensorInfo has its own). Tensor reads through
    :func:`read_tensor` keep each file open; ``close()`` (or ``with header:``) releases them.
    """

    path: str
    locked: bool
    tensors: list[TensorInfo]
    data_start: int
    is_blox: bool
    metadata: dict[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    format_version: int | None = None
    _readers: dict = field(default_factory=dict, repr=False, compare=False)

    def close(self) -> None:
        """Closes the files :func:`read_tensor` opened (it reopens them if asked again)."""
        readers = list(self._readers.values())
        self._readers.clear()
        for r in readers:
            r.close()

    def __enter__(self) -> CheckpointHeader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_header(path: str | os.PathLike) -> CheckpointHeader:
    """Reads a checkpoint's header only (no tensor data) and checks it whole.

    ``path`` is a ``.safetensors`` file, a Hugging Face index (``*.safetensors.index.json``,
    whose ``weight_map`` names shard files in its folder), or a folder holding
    ``model.safetensors.index.json``, ``model.safetensors``, or exactly one of either kind.
    Files written by other tools are accepted: their tensor names are split on ``/`` (or
    else ``.``) into paths, and every tensor counts as trainable. Anything malformed is a
    :class:`CheckpointError` naming the file and what is wrong.

    Example:
        >>> import jax.numpy as jnp, blox as bx, tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), 'c.safetensors')
        >>> bx.save(f, bx.Params({('net', 'w'): bx.Param(jnp.ones((2, 3)))}), metadata={'step': '7'})
        >>> h = bx.read_header(f)
        >>> [(t.path, t.shape, t.dtype) for t in h.tensors], h.metadata
        ([(('net', 'w'), (2, 3), 'float32')], {'step': '7'})
    """
    from . import _orbax  # imported here: _orbax imports this module

    if _orbax.is_folder(path, saving=False):
        return _orbax.read_header(path)
    with st.gc_paused():
        return _read_header(st.find_layout(os.fspath(path)))


def _read_header(layout: st.Layout) -> CheckpointHeader:
    tensors: list[TensorInfo] = []
    locks, blox, versions = [], [], []
    metadata = dict(layout.metadata)
    for file, expected in layout.shards.items():
        raw = st.read_file_header(file)
        st.check_shard(raw, expected)
        infos, locked, user, version = _interpret(raw)
        tensors += infos
        locks.append(locked)
        blox.append(version is not None)
        versions.append(version)
        if not layout.is_index:
            metadata = user
    # Names are unique within a file, so paths almost always are: one set in C says so, and only a
    # checkpoint that has a repeat pays for the loop that names it.
    if len({t.path for t in tensors}) != len(tensors):
        seen: dict[Path, str] = {}
        for t in tensors:
            other = seen.setdefault(t.path, t.name)
            if other != t.name:
                raise st.fail(layout.path, MSG_SAME_PATH.format(a=other, b=t.name, path=path_str(t.path)))
    is_blox = bool(blox) and all(blox)
    return CheckpointHeader(
        path=layout.path,
        locked=is_blox and all(locks),
        tensors=tensors,
        data_start=0 if layout.is_index else (tensors[0].data_start if tensors else 0),
        is_blox=is_blox,
        metadata=metadata,
        files=tuple(layout.shards),
        format_version=max(versions) if is_blox else None,
    )


def _interpret(raw: st.FileHeader) -> tuple[list[TensorInfo], bool, dict[str, str], int | None]:
    """TensorInfos of one file, its lock state, user metadata and blox format version (None: foreign)."""
    meta = raw.metadata
    if BLOX_KEY in meta:
        version, locked, entries = _blox_v2(raw)
        user = {k: v for k, v in meta.items() if k != BLOX_KEY}
    elif meta.get("format") == "blox":
        version, locked, entries = 1, meta.get("locked") == "true", _blox_v1(raw)
        user = {k: v for k, v in meta.items() if k not in _V1_KEYS}
    else:
        return _foreign_infos(raw), False, dict(meta), None
    held = {t[2] for t in raw.tensors}
    extra = [name for name in entries if name not in held]
    if extra:
        raise st.fail(raw.file, MSG_ONLY_IN_BLOX.format(n=len(extra), name=min(extra)))
    infos = []
    append = infos.append
    new, names, file, start = tuple.__new__, st.NAMES, raw.file, raw.data_start
    plain = _PLAIN if version >= 2 else None  # format 2 leaves out entries that hold only defaults
    for lo, hi, name, code, shape in raw.tensors:
        e = entries.get(name, plain)
        if e is None:
            raise st.fail(raw.file, MSG_NOT_IN_BLOX.format(name=name))
        # The two entries format 2 writes for most tensors (nothing, or only the flag), built in line:
        # what _blox_info would make of them, without a call and its checks per tensor.
        if e is _PLAIN:
            append(
                new(
                    TensorInfo,
                    (name, tuple(name.split("/")), shape, names[code], True, {}, (lo, hi), None, code, file, start),
                )
            )
        elif type(e) is dict and len(e) == 1 and e.get("trainable") is False:
            append(
                new(
                    TensorInfo,
                    (name, tuple(name.split("/")), shape, names[code], False, {}, (lo, hi), None, code, file, start),
                )
            )
        else:
            append(_blox_info(raw, e, name, code, shape, lo, hi))
    return infos, locked, user, version


_PLAIN: dict = {}


def _foreign_infos(raw: st.FileHeader) -> list[TensorInfo]:
    """The TensorInfos of a file from another writer: paths split on ``/`` (or else ``.``), all trainable.

    One comprehension that builds each named tuple directly (``tuple.__new__``: TensorInfo's own
    ``__new__`` is a Python function), as a header may hold 300,000 tensors.
    """
    new, names, file, start = tuple.__new__, st.NAMES, raw.file, raw.data_start
    return [
        new(
            TensorInfo,
            (
                name,
                tuple(name.split("/" if "/" in name else ".")),
                shape,
                names[code],
                True,
                {},
                (lo, hi),
                None,
                code,
                file,
                start,
            ),
        )
        for lo, hi, name, code, shape in raw.tensors
    ]


def _foreign_path(name: str) -> Path:
    sep = "/" if "/" in name else "."
    return tuple(name.split(sep))


def _loads(raw: st.FileHeader, text: str) -> Any:
    try:
        return st._parse_json(text)
    except (ValueError, RecursionError) as e:
        raise st.fail(raw.file, MSG_BLOX_DAMAGED.format(why=type(e).__name__ + ": " + str(e)[:200])) from e


def _blox_v2(raw: st.FileHeader) -> tuple[int, bool, dict[str, dict]]:
    doc = _loads(raw, raw.metadata[BLOX_KEY])
    if not isinstance(doc, dict) or type(doc.get("format_version")) is not int:
        raise st.fail(raw.file, MSG_BLOX_DAMAGED.format(why="no format_version"))
    version = doc["format_version"]
    if version > FORMAT_VERSION:
        raise st.fail(raw.file, MSG_NEWER.format(version=version, known=FORMAT_VERSION))
    locked, entries = doc.get("locked"), doc.get("tensors")
    if type(locked) is not bool or not isinstance(entries, dict):
        raise st.fail(raw.file, MSG_BLOX_DAMAGED.format(why="locked must be true/false and tensors an object"))
    return version, locked, entries


def _blox_v1(raw: st.FileHeader) -> dict[str, dict]:
    try:
        entries = _loads(raw, raw.metadata["params"])
        return {e["name"]: e for e in entries}
    except (KeyError, TypeError) as e:
        raise st.fail(raw.file, MSG_BLOX_DAMAGED.format(why=f"{type(e).__name__}: {e}")) from e


def _damaged(raw: st.FileHeader, name: str, why: str) -> CheckpointError:
    return st.fail(raw.file, MSG_BLOX_DAMAGED.format(why=f"tensor {name!r}: {why}"))


def _blox_info(raw: st.FileHeader, e: Any, name: str, code: str, shape: tuple, lo: int, hi: int) -> TensorInfo:
    if type(e) is not dict:
        raise _damaged(raw, name, f"entry is {type(e).__name__}, expected an object")
    # Format 2 stores a path only when it is not the name split on "/" (plain str.split, so the
    # rule never depends on how blox spells paths); format 1 stores every path.
    path, trainable, meta = e.get("path"), e.get("trainable", True), e.get("metadata", {})
    if path is None:
        path = name.split("/")
    if type(path) is not list or not path or not all(type(p) is str for p in path):
        raise _damaged(raw, name, "path must be a non-empty list of strings")
    if type(trainable) is not bool or type(meta) is not dict:
        raise _damaged(raw, name, "trainable must be true/false and metadata an object")
    impl = e.get("key_impl")
    dtype = st.NAMES[code]
    if impl is not None:
        key_shape = e.get("key_shape")
        if (
            type(impl) is not str
            or type(key_shape) is not list
            or not all(type(d) is int and d >= 0 for d in key_shape)
        ):
            raise _damaged(raw, name, "key_impl must be a string and key_shape a list of sizes")
        try:
            trailing = _key_trailing(impl)
        except (ValueError, TypeError, KeyError) as err:
            raise st.fail(raw.file, MSG_KEY_IMPL.format(name=name, impl=impl, why=err)) from err
        if code != "U32" or shape != tuple(key_shape) + trailing:
            raise st.fail(
                raw.file,
                MSG_KEY.format(
                    name=name,
                    impl=impl,
                    shape=tuple(key_shape),
                    code=code,
                    stored=list(shape),
                    want=list(key_shape) + list(trailing),
                ),
            )
        shape, dtype = tuple(key_shape), f"key<{impl}>"
    return TensorInfo(name, tuple(path), shape, dtype, trainable, meta, (lo, hi), impl, code, raw.file, raw.data_start)


@functools.cache
def _key_trailing(impl: str) -> tuple[int, ...]:
    return tuple(jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0, impl=impl))).shape)


def read_tensor(header: CheckpointHeader, info: TensorInfo) -> np.ndarray:
    """Reads one tensor's stored value from the file that holds it, as a numpy array.

    Every dtype comes back exactly as stored (64-bit ones too); a PRNG key comes back as its
    raw uint32 key data (``info.stored_shape``). Each file is opened once, at its first read,
    and stays open until ``header.close()``. Only that tensor's bytes are read.

    Example:
        >>> import jax.numpy as jnp, blox as bx, tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), 'c.safetensors')
        >>> bx.save(f, bx.Params({('a',): bx.Param(jnp.arange(3.0)), ('b',): bx.Param(jnp.ones(2))}))
        >>> with bx.read_header(f) as h:
        ...     bx.read_tensor(h, h.tensors[0]).tolist()
        [0.0, 1.0, 2.0]
    """
    reader = header._readers.get(info.file)
    if reader is None:
        reader = header._readers[info.file] = st.ShardReader(info.file)
    lo, hi = info.offsets
    return reader.read(info.name, info.stored, info.stored_shape, info.data_start + lo, info.data_start + hi)


def _read_array(f: Any, header: CheckpointHeader, t: TensorInfo) -> np.ndarray:
    """Kept for blox_inspect until it calls :func:`read_tensor` (``f`` is no longer used)."""
    return read_tensor(header, t)


def load(file: str | os.PathLike, like: Params | None = None, *, abstract: bool = False) -> Params:
    """Loads Params saved by :func:`save`, or any safetensors checkpoint :func:`read_header` reads.

    With ``like`` (e.g. ``jax.eval_shape`` of the model's init), every path, shape and dtype is
    checked against the model before any data is read, and all differences are listed in one
    :class:`CheckpointError` (see :func:`match_report`). With ``abstract=True`` only the header
    is read and values are ``jax.ShapeDtypeStruct``.

    Values come back bit for bit. A 64-bit tensor becomes a JAX array when ``jax_enable_x64``
    is on; otherwise it stays a numpy array, since JAX would narrow it to 32 bits.

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
    if like is not None:
        check_matches(header, like, where=header.path)
    data: dict[Path, Param] = {}
    with header:
        for t in header.tensors:
            value = _abstract(t) if abstract else _value(read_tensor(header, t), t)
            data[t.path] = Param(value, t.trainable, t.metadata)
    return Params(data, locked=header.locked)


def _abstract(t: TensorInfo) -> Any:
    if t.key_impl:
        raw = jax.ShapeDtypeStruct(t.stored_shape, jnp.uint32)
        return jax.eval_shape(lambda r: jax.random.wrap_key_data(r, impl=t.key_impl), raw)
    return jax.ShapeDtypeStruct(t.shape, st.DTYPES[t.stored])


def _value(arr: np.ndarray, t: TensorInfo) -> Any:
    if t.key_impl:
        return jax.random.wrap_key_data(jnp.asarray(arr), impl=t.key_impl)
    if jax.dtypes.canonicalize_dtype(arr.dtype) != arr.dtype:
        return arr  # JAX would narrow it (jax_enable_x64 is off): keep every bit in numpy
    return jnp.asarray(arr)


def save(
    file: str | os.PathLike, params: Params, *, metadata: Mapping[str, str] | None = None, state: Any = None
) -> None:
    """Saves Params atomically: the file (or folder) appears whole or not at all.

    Values (every dtype, PRNG keys included), trainable flags, Param metadata and the lock
    state are stored, and :func:`load` restores them exactly. ``metadata`` adds text entries
    to the file's ``__metadata__`` (strings only; the key ``"blox"`` is blox's own). An existing
    file is replaced only once the new one is complete, keeping its permissions; a failure
    leaves it unchanged (see :class:`OutputError`).

    A path ending in ``.safetensors`` (or an existing file) is one file, written from this
    process. Any other path is a folder checkpoint written through Orbax by every process at
    once, each writing its own shards; only folders take ``state`` (e.g. the optimizer state,
    restored by ``bx.load_state``). See ``blox._orbax.save``.

    Example:
        >>> import jax.numpy as jnp, blox as bx, tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), 'ckpt.safetensors')
        >>> bx.save(f, bx.Params({('w',): bx.Param(jnp.ones(2))}), metadata={'step': '100'})
        >>> bx.read_header(f).metadata
        {'step': '100'}
    """
    from . import _orbax  # imported here: _orbax imports this module

    if _orbax.is_folder(file, saving=True):
        return _orbax.save(file, params, metadata=metadata, state=state)
    _orbax.refuse_for_file(params, file, state)
    if not isinstance(params, Params):
        raise TypeError(f"bx.save expects blox Params, got {type(params).__name__}")
    user = _user_metadata(metadata)
    arrays: dict[str, np.ndarray] = {}
    entries: dict[str, dict] = {}
    for path, param in params.items():
        if path == ():
            raise CheckpointError(MSG_EMPTY_PATH)
        name = path_str(path)
        if name == _METADATA_NAME:
            name = "\\" + name  # path_str never starts a name with an escaped '_': unambiguous
        entry: dict[str, Any] = {}
        if list(path) != name.split("/"):
            entry["path"] = list(path)
        if not param.trainable:
            entry["trainable"] = False
        meta = _param_metadata(name, param)
        if meta:
            entry["metadata"] = meta
        value = param.value
        if isinstance(value, jax.ShapeDtypeStruct) or type(value).__name__ == "ShapeDtypeStruct":
            raise CheckpointError(MSG_ABSTRACT.format(name=name, kind=type(value).__name__))
        if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
            entry["key_impl"] = str(jax.random.key_impl(value))
            entry["key_shape"] = list(value.shape)
            value = jax.random.key_data(value)
        arr = np.asarray(jax.device_get(value), order="C")  # (ascontiguousarray would make a scalar 1-d)
        if arr.dtype not in st.CODES:
            raise CheckpointError(MSG_UNSUPPORTED.format(name=name, dtype=arr.dtype, known=", ".join(st.DTYPES)))
        arrays[name] = arr
        if entry:  # a plain trainable tensor whose path is its name needs no entry
            entries[name] = entry
    own = {"format_version": FORMAT_VERSION, "locked": params.is_locked, "tensors": entries}
    blob = st.encode(arrays, {**user, BLOX_KEY: json.dumps(own, separators=(",", ":"))})
    atomic_write(file, blob)


def _user_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    out = dict(metadata or {})
    for key, value in out.items():
        if type(key) is not str:
            raise CheckpointError(MSG_USER_META.format(what=f"key {key!r} is {type(key).__name__}"))
        if type(value) is not str:
            raise CheckpointError(MSG_USER_META.format(what=f"{key!r} is {type(value).__name__}"))
    if BLOX_KEY in out:
        raise CheckpointError(MSG_RESERVED.format(key=BLOX_KEY))
    return out


def _param_metadata(name: str, param: Param) -> dict:
    try:
        meta = json.loads(json.dumps(thaw(param.metadata), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise CheckpointError(MSG_PARAM_META.format(name=name, why=e)) from e
    if freeze(meta) != param.metadata:
        # e.g. int keys become strings in JSON; refuse rather than load something different.
        raise CheckpointError(MSG_PARAM_META_CHANGES.format(name=name, meta=thaw(param.metadata)))
    return meta
