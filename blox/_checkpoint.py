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
import itertools
import json
import operator
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _checkpoint_doc as blox_doc
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
    distinct = len(layout.shards) == 1
    for file, expected in layout.shards.items():
        raw = st.read_file_header(file)
        st.check_shard(raw, expected)
        infos, locked, user, version, split = _interpret(raw)
        tensors += infos
        locks.append(locked)
        blox.append(version is not None)
        versions.append(version)
        distinct = distinct and split
        if not layout.is_index:
            metadata = user
    # Names are unique within a file, so paths almost always are: when every path is its name split
    # by one rule there is nothing to check, else one set in C says so, and only a checkpoint that
    # has a repeat pays for the loop that names it.
    if not distinct and len(set(map(_PATH, tensors))) != len(tensors):
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


_PATH = operator.attrgetter("path")


def _interpret(raw: st.FileHeader) -> tuple[list[TensorInfo], bool, dict[str, str], int | None, bool]:
    """TensorInfos of one file, its lock state, user metadata, blox format version (None: foreign), and
    whether every path is the tensor's name split by one separator (so no two tensors share a path)."""
    meta = raw.metadata
    if BLOX_KEY in meta:
        user = {k: v for k, v in meta.items() if k != BLOX_KEY}
        typed = blox_doc.typed_entries(meta[BLOX_KEY], FORMAT_VERSION)
        if typed is not None:  # the usual case, decoded fast; anything else is read and checked below
            locked, frozen, other = typed
            infos, split = _blox_v2_infos(raw, frozen, other)
            return infos, locked, user, FORMAT_VERSION, split
        version, locked, entries = _blox_v2(raw)
    elif meta.get("format") == "blox":
        version, locked, entries = 1, meta.get("locked") == "true", _blox_v1(raw)
        user = {k: v for k, v in meta.items() if k not in _V1_KEYS}
    else:
        infos, split = _foreign_infos(raw)
        return infos, False, dict(meta), None, split
    if version < 2:
        _check_listed(raw, len(entries), sum(map(entries.__contains__, raw.names)), entries)
        return _blox_v1_infos(raw, entries), locked, user, version, False
    infos, split = _blox_v2_infos(raw, *blox_doc.sort_entries(entries))
    return infos, locked, user, version, split


def _check_listed(raw: st.FileHeader, listed: int, held: int, *names: Iterable[str]) -> None:
    """Raises unless every tensor the blox metadata lists (``listed`` names, ``held`` of them in the
    file) is in the file. Names are unique, so counting says it."""
    if held != listed:
        have = set(raw.names)
        extra = [name for group in names for name in group if name not in have]
        raise st.fail(raw.file, MSG_ONLY_IN_BLOX.format(n=len(extra), name=min(extra)))


def _columns(raw: st.FileHeader, paths: list, trainable: Any) -> list[TensorInfo]:
    """One TensorInfo per tensor of ``raw``, built in C (``map``/``zip``, no Python per tensor): a header
    may hold 300,000. ``trainable`` is a list, or one flag for all."""
    n = len(raw.names)
    flags = itertools.repeat(trainable, n) if type(trainable) is bool else trainable
    return list(
        map(
            tuple.__new__,  # TensorInfo's own __new__ is a Python function
            itertools.repeat(TensorInfo, n),
            zip(
                raw.names,
                paths,
                raw.shapes,
                map(st.NAMES.__getitem__, raw.codes),
                flags,
                map(dict.copy, itertools.repeat({}, n)),  # a metadata dict of its own per tensor
                raw.offsets,
                itertools.repeat(None, n),
                raw.codes,
                itertools.repeat(raw.file, n),
                itertools.repeat(raw.data_start, n),
            ),
        )
    )


def _split_all(names: list[str], sep: str) -> list[Path]:
    return list(map(tuple, map(str.split, names, itertools.repeat(sep, len(names)))))


def _blox_v2_infos(raw: st.FileHeader, frozen: set[str], other: dict[str, Any]) -> tuple[list[TensorInfo], bool]:
    """Format 2 leaves out the entry of a plain trainable tensor whose path is its name split on "/"
    and writes only ``{"trainable": false}`` for most others (``frozen``): those are columns. Each
    entry in ``other`` goes through :func:`_blox_info`, in data order, so the first bad one is the one named.

    Also whether every path is the name split on "/"."""
    names = raw.names
    trainable = list(map(operator.not_, map(frozen.__contains__, names))) if frozen else True
    at = list(itertools.compress(range(len(names)), map(other.__contains__, names))) if other else []
    held = (trainable.count(False) if frozen else 0) + len(at)
    _check_listed(raw, len(frozen) + len(other), held, frozen, other)
    infos = _columns(raw, _split_all(names, "/"), trainable)
    for i in at:
        name, code, shape, (lo, hi) = names[i], raw.codes[i], raw.shapes[i], raw.offsets[i]
        e = other[name]
        if e is None:  # an entry of null: no facts about this tensor at all
            raise st.fail(raw.file, MSG_NOT_IN_BLOX.format(name=name))
        infos[i] = _blox_info(raw, e, name, code, shape, lo, hi)
    return infos, all(e.get("path") is None for e in other.values())  # (all dicts now: _blox_info checked)


def _blox_v1_infos(raw: st.FileHeader, entries: dict) -> list[TensorInfo]:
    """Format 1 described every tensor, each in full."""
    infos = []
    for name, code, shape, (lo, hi) in zip(raw.names, raw.codes, raw.shapes, raw.offsets):
        e = entries.get(name)
        if e is None:
            raise st.fail(raw.file, MSG_NOT_IN_BLOX.format(name=name))
        infos.append(_blox_info(raw, e, name, code, shape, lo, hi))
    return infos


def _foreign_infos(raw: st.FileHeader) -> tuple[list[TensorInfo], bool]:
    """The TensorInfos of a file from another writer: paths split on ``/`` (or else ``.``), all trainable.

    Also whether one separator split every name (so the paths are as distinct as the names).
    """
    names = raw.names
    n = len(names)
    # One scan of all names in C finds the usual case, no "/" anywhere; counting per name is the other.
    slashes = sum(map(str.__contains__, names, itertools.repeat("/", n))) if "/" in "".join(names) else 0
    if slashes in (0, n):
        paths = _split_all(names, "/" if slashes else ".")
    else:
        paths = [_foreign_path(name) for name in names]
    return _columns(raw, paths, True), slashes in (0, n)


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
