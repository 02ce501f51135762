"""The safetensors format itself: a validated header, Hugging Face file layouts, tensor bytes, encoding.

Writing goes through the official ``safetensors`` package, and so does reading tensor data
(``safe_open``), except float8: the package's numpy framework looks that dtype up on numpy,
which has none, and fails, so float8 bytes are read directly at offsets both parsers checked.

The header is parsed here rather than with ``safe_open``, because blox needs each tensor's
offsets (the package does not expose them) and messages that say which tensor is wrong and
how; listing a header's tensors through ``safe_open`` plus one ``get_slice`` each is slower
(docs/benchmarks.md) and still gives no offsets. The checks are the package's rules (data
contiguous, non-overlapping and covering the file exactly; string metadata; known dtypes; shapes
that fit), so a header accepted here is one the package accepts (tests/blox/test_checkpoint_corrupt.py
fuzzes that).

Two readers give the same result. The fast one decodes the header with msgspec straight into
typed entries (exactly dtype, shape and data_offsets: no other keys, no float or bool sizes, a
known dtype) and checks the layout column by column; whatever it does not accept, for any
reason, goes to the slow one (``json`` and one check per tensor in turn), which says what is
wrong. So the messages are the slow reader's, and the fast one only has to be right about
what it accepts (tests/blox/test_safetensors_fast.py compares the two).
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import ml_dtypes
import msgspec
import numpy as np
import safetensors
import safetensors.numpy

from ._errors import CheckpointError
from ._files import file_kind
from ._gc import gc_paused as gc_paused  # st.gc_paused: used by _checkpoint too

# safetensors dtype code -> numpy dtype (bfloat16 and float8 come from ml_dtypes, as in JAX).
DTYPES: dict[str, np.dtype] = {
    code: np.dtype(t)
    for code, t in {
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
    }.items()
}
CODES: dict[np.dtype, str] = {v: k for k, v in DTYPES.items()}
NAMES: dict[str, str] = {k: v.name for k, v in DTYPES.items()}  # dtype.name is slow to compute per tensor
_ITEMSIZE = {k: v.itemsize for k, v in DTYPES.items()}
# safe_open(framework="numpy") cannot build these (safetensors 0.8 looks for numpy.float8_*).
_RAW_CODES = frozenset(c for c in DTYPES if c.startswith("F8"))

MAX_HEADER = 100_000_000  # the limit the safetensors package enforces
_MAX_BYTES = 2**63 - 1  # numpy's limit on an array's size in bytes
INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"

MSG_SHORT = "not a safetensors checkpoint: only {n} bytes, expected an 8-byte header length first."
MSG_CLAIMS = "not a safetensors checkpoint (or truncated): header claims {n} bytes but the file has {rest} after the length field."
MSG_TOO_BIG = "not a safetensors checkpoint: header claims {n:,} bytes, more than the format's limit of {limit:,}."
MSG_JSON = "not a safetensors checkpoint: the header is not valid JSON ({why})."
MSG_META = "not a safetensors checkpoint: __metadata__ is {got}, expected an object of strings."
MSG_META_VALUE = "not a safetensors checkpoint: __metadata__ entry {key!r} is {got}, expected a string."
MSG_ENTRY = "tensor {name!r} has a malformed header entry: {entry} (expected dtype, shape and data_offsets)."
MSG_DTYPE = "tensor {name!r} has dtype {code!r}, which blox cannot read (supported: {known})."
MSG_SHAPE = "tensor {name!r} has shape {shape}; expected a list of non-negative integers."
MSG_TOO_LARGE = "tensor {name!r} has shape {shape}, too large for any array (over 2**63 bytes of {code})."
MSG_OFFSETS = "tensor {name!r} has data_offsets {offsets}; expected [start, end] with 0 <= start <= end."
MSG_SIZE = "tensor {name!r}: {got} bytes stored but shape {shape} of {code} needs {need}."
MSG_TRUNCATED = (
    "truncated: tensor {name!r} ends at byte {end} but the file has {size} bytes. Re-save or re-download it."
)
MSG_OVERLAP = "tensors {a!r} (data bytes {a_lo}..{a_hi}) and {b!r} (from byte {b_lo}) overlap; the header is damaged."
MSG_GAP = "data bytes {lo}..{hi} belong to no tensor (a gap before {name!r}); the header is damaged."
MSG_TRAILING = "{n} bytes after the last tensor belong to no tensor; the file is damaged or was appended to."
MSG_NAME = "a tensor name is not valid UTF-8 text ({name!r})."
MSG_NOT_FILE = "is a {kind}, not a checkpoint file; pass a .safetensors file, an index .json or a folder."
MSG_OPEN = "cannot read checkpoint: {why}"
MSG_FOLDER_EMPTY = "folder holds no {index} or .safetensors file; pass a checkpoint file or its folder."
MSG_FOLDER_MANY = "folder holds several checkpoints ({found}); pass one of them."
MSG_INDEX = "not a safetensors index: {why}. Expected a JSON object whose weight_map maps tensor names to shard files."
MSG_INDEX_JSON = "not a safetensors index: the file is not valid JSON ({why})."
MSG_SHARD_NAME = "not a safetensors index: shard {shard!r} is not a plain file name in the index's folder."
MSG_SHARD_MISSING = "the index puts tensor {name!r} in shard {shard}, which does not hold it."
MSG_SHARD_EXTRA = "shard {shard} holds {n} tensor(s) the index does not list (e.g. {name!r}); the index is out of date."
MSG_LIBRARY = "the safetensors library cannot read tensor {name!r}: {why}"
MSG_CHANGED = (
    "tensor {name!r} is now {got} but the header read earlier said {want}; the file changed. Read its header again."
)


@dataclass(frozen=True)
class FileHeader:
    """One validated safetensors file: its metadata and its tensors as columns, in data order.

    Entry ``i`` of each column is one tensor; tensors are sorted by their offsets (relative to
    ``data_start``), then by name (only zero-size tensors can share offsets).
    """

    file: str
    data_start: int
    metadata: dict[str, str]
    names: list[str]
    codes: list[str]  # safetensors dtype codes
    shapes: list[tuple[int, ...]]
    offsets: list[tuple[int, int]]


def fail(file: str, what: str) -> CheckpointError:
    return CheckpointError(f"{file}: {what}")


def _open_regular(file: str) -> int:
    """An fd for a regular file. O_NONBLOCK: opening a FIFO must not wait for a writer."""
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise fail(file, MSG_OPEN.format(why=e.strerror or e)) from e
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise fail(file, MSG_NOT_FILE.format(kind=file_kind(mode)))
    return fd


def _pread(fd: int, n: int, offset: int) -> bytes:
    parts = []
    while n > 0:
        chunk = os.pread(fd, min(n, 1 << 30), offset)
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
        offset += len(chunk)
    return b"".join(parts)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(text: str) -> Any:
    with gc_paused():
        return json.loads(text, parse_constant=_no_constant)


def _decode(file: str, raw: bytes, msg: str) -> Any:
    try:
        return _parse_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        why = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise fail(file, msg.format(why=why)) from e


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def read_file_header(file: str) -> FileHeader:
    """Reads and validates one safetensors file's header (no tensor data)."""
    fd = _open_regular(file)
    try:
        size = os.fstat(fd).st_size
        head = _pread(fd, 8, 0)
        if len(head) < 8:
            raise fail(file, MSG_SHORT.format(n=len(head)))
        n = int.from_bytes(head, "little")
        if n > size - 8:
            raise fail(file, MSG_CLAIMS.format(n=n, rest=size - 8))
        if n > MAX_HEADER:
            raise fail(file, MSG_TOO_BIG.format(n=n, limit=MAX_HEADER))
        raw = _pread(fd, n, 8)
    except OSError as e:
        raise fail(file, MSG_OPEN.format(why=e.strerror or e)) from e
    finally:
        os.close(fd)
    return _fast_header(file, raw, 8 + n, size) or _slow_header(file, raw, 8 + n, size)


def _slow_header(file: str, raw: bytes, data_start: int, size: int) -> FileHeader:
    """``json``, then each check in turn: the first thing wrong is the message."""
    header = _decode(file, raw, MSG_JSON)
    if not isinstance(header, dict):
        raise fail(file, MSG_JSON.format(why="header is not a JSON object"))
    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise fail(file, MSG_META.format(got=_type(meta)))
    for key, value in meta.items():
        if type(value) is not str:
            raise fail(file, MSG_META_VALUE.format(key=key, got=_type(value)))
    # JSON escapes can spell lone surrogates, which are not text (the package refuses them). One
    # scan of the raw header finds out whether any string needs checking.
    if _SURROGATE.search(raw):
        for text in (*meta, *meta.values(), *header):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as e:
                raise fail(file, MSG_NAME.format(name=text)) from e
    rows = _tensors(file, header, data_start, size)
    return FileHeader(
        file,
        data_start,
        meta,
        [r[2] for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
        [(r[0], r[1]) for r in rows],
    )


_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _tensors(file: str, header: dict, data_start: int, size: int) -> list[tuple[int, int, str, str, tuple[int, ...]]]:
    """Each entry checked once (linear), then the data layout checked in offset order."""
    data_len = size - data_start
    out = []
    append = out.append
    end_max, end_name = 0, ""
    for name, entry in header.items():
        try:
            code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        except (TypeError, KeyError, IndexError) as e:
            raise fail(file, MSG_ENTRY.format(name=name, entry=_short(entry))) from e
        if type(code) is not str or code not in _ITEMSIZE:
            raise fail(file, MSG_DTYPE.format(name=name, code=code, known=", ".join(DTYPES)))
        itemsize = _ITEMSIZE[code]
        if type(shape) is not list:
            raise fail(file, MSG_SHAPE.format(name=name, shape=_short(shape)))
        count, nonzero, limit = 1, 1, _MAX_BYTES // itemsize
        for d in shape:
            if type(d) is not int or d < 0:
                raise fail(file, MSG_SHAPE.format(name=name, shape=_short(shape)))
            if d:
                nonzero *= d
                if nonzero > limit:  # checked per dimension, so a long shape list stays linear
                    raise fail(file, MSG_TOO_LARGE.format(name=name, shape=_short(shape), code=code))
            else:
                count = 0
        count = count and nonzero
        if type(offsets) is not list or len(offsets) != 2:
            raise fail(file, MSG_OFFSETS.format(name=name, offsets=_short(offsets)))
        lo, hi = offsets
        if type(lo) is not int or type(hi) is not int or not 0 <= lo <= hi:
            raise fail(file, MSG_OFFSETS.format(name=name, offsets=_short(offsets)))
        if hi - lo != count * itemsize:
            raise fail(
                file, MSG_SIZE.format(name=name, got=hi - lo, shape=tuple(shape), code=code, need=count * itemsize)
            )
        if hi > end_max:
            end_max, end_name = hi, name
        append((lo, hi, name, code, tuple(shape)))
    if end_max > data_len:
        raise fail(file, MSG_TRUNCATED.format(name=end_name, end=data_start + end_max, size=size))
    out.sort()
    pos, prev = 0, None
    for lo, hi, name, _, _ in out:
        if lo < pos:
            raise fail(file, MSG_OVERLAP.format(a=prev[2], a_lo=prev[0], a_hi=prev[1], b=name, b_lo=lo))
        if lo > pos:
            raise fail(file, MSG_GAP.format(lo=pos, hi=lo, name=name))
        pos, prev = hi, (lo, hi, name)
    if pos != data_len:
        raise fail(file, MSG_TRAILING.format(n=data_len - pos))
    return out


# --- the fast reader ----------------------------------------------------------------------------

_Code = Literal[tuple(DTYPES)]  # type: ignore[valid-type]
_Size = Annotated[int, msgspec.Meta(ge=0)]


class _Entry(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A tensor's header entry as the fast reader accepts it: these three keys and nothing else.

    Nothing else also means no nesting beyond them, so this reader never accepts a header nested
    more deeply than ``json`` can read.
    """

    dtype: _Code
    shape: tuple[_Size, ...]
    data_offsets: tuple[int, int]


_ENTRIES = msgspec.json.Decoder(dict[str, _Entry])
_METADATA = msgspec.json.Decoder(dict[str, str])
_META_FIRST = b'{"__metadata__":'  # how the safetensors package writes it: first, no spaces
_META_END = b'"},"'  # a string's closing quote, the object's brace, the next key's quote
_DECODE_ERRORS = (msgspec.MsgspecError, ValueError, RecursionError)
_GET_DTYPE = operator.attrgetter("dtype")
_GET_SHAPE = operator.attrgetter("shape")
_GET_OFFSETS = operator.attrgetter("data_offsets")
_FIRST, _SECOND = operator.itemgetter(0), operator.itemgetter(1)


def _fast_header(file: str, raw: bytes, data_start: int, size: int) -> FileHeader | None:
    """The header, if msgspec's typed decode and the column checks accept it; else None (the slow reader's turn)."""
    if not raw.isascii():
        try:
            raw.decode("utf-8")  # msgspec checks the strings it decodes; the slow reader checks every byte
        except UnicodeDecodeError:
            return None
    split = _split_metadata(raw)
    if split is None:
        return None
    meta, body = split
    try:
        with gc_paused():
            entries = _ENTRIES.decode(body)
    except _DECODE_ERRORS:
        return None
    if "__metadata__" in entries:  # a second one, or one not first: the slow reader sorts it out
        return None
    columns = _checked_columns(entries, size - data_start)
    return None if columns is None else FileHeader(file, data_start, meta, *columns)


def _split_metadata(raw: bytes) -> tuple[dict[str, str], bytes] | None:
    """The metadata and the rest of the header as a JSON object of tensor entries.

    Only the layout the safetensors package writes is taken apart: ``{"__metadata__":{...},"name":...``.
    An object of strings ends at a string's closing quote and a brace, and the next key opens with
    a quote: the first ``"},"`` whose first quote is not escaped (not after an odd run of
    backslashes). Whatever is cut there is checked to decode whole as an object of strings, and a
    JSON value ends where it ends, so a wrong cut could only fail. A header that does not start so
    has no metadata, or has it elsewhere, and then the tensor decode below sees that key.
    """
    if not raw.startswith(_META_FIRST):
        return {}, raw
    start = len(_META_FIRST)
    if raw.startswith(b'{},"', start):
        return {}, b"{" + memoryview(raw)[start + 3 :]
    end = raw.find(_META_END, start)
    while end >= 0 and _escaped(raw, end):
        end = raw.find(_META_END, end + 1)
    if end < 0:
        return None
    try:
        meta = _METADATA.decode(memoryview(raw)[start : end + 2])
    except _DECODE_ERRORS:
        return None
    return meta, b"{" + memoryview(raw)[end + 3 :]  # one copy of the rest (a slice first would be two)


def _escaped(raw: bytes, i: int) -> bool:
    """Whether the quote at ``raw[i]`` is escaped: an odd number of backslashes before it."""
    j = i
    while j > 0 and raw[j - 1] == 0x5C:
        j -= 1
    return (i - j) % 2 == 1


def _checked_columns(entries: dict[str, _Entry], data_len: int) -> tuple[list, list, list, list] | None:
    """Names, codes, shapes and offsets in data order, if the slow reader's checks would all pass.

    The decode already checked each entry's types, its dtype and that no size is negative.
    What is left, over whole columns: in offset order the tensors follow each other from 0 to
    the end of the file with no gap or overlap, and each one's bytes are its shape's size. Those
    imply 0 <= start <= end, and no shape over 2**63 bytes for a tensor with data; a zero-size
    tensor's nonzero sizes are checked on their own, as the slow reader does.
    """
    names = list(entries)
    n = len(names)
    if not n:
        return ([], [], [], []) if data_len == 0 else None
    codes = list(map(_GET_DTYPE, entries.values()))
    shapes = list(map(_GET_SHAPE, entries.values()))
    offsets = list(map(_GET_OFFSETS, entries.values()))
    if codes.count(codes[0]) == n:  # one dtype
        need = list(map(operator.mul, map(math.prod, shapes), itertools.repeat(_ITEMSIZE[codes[0]], n)))
    else:
        need = list(map(operator.mul, map(math.prod, shapes), map(_ITEMSIZE.__getitem__, codes)))
    ties = False
    if 0 in need:
        for shape, code, size in zip(shapes, codes, need):
            if not size and math.prod(filter(None, shape)) > _MAX_BYTES // _ITEMSIZE[code]:
                return None
        # Zero-size tensors at one offset are ordered by name, which the file order need not be.
        ties = any(map(operator.eq, offsets, itertools.islice(offsets, 1, None)))
    # Writers lay tensors out in header order: then each tensor's offsets are the running total of
    # the sizes before it and that plus its own size, which checks every size and the layout at once.
    if not ties and sum(need) == data_len:
        expected = zip(itertools.chain((0,), itertools.accumulate(need)), itertools.accumulate(need))
        if all(map(operator.eq, offsets, expected)):
            return names, codes, shapes, offsets
    starts, ends = list(map(_FIRST, offsets)), list(map(_SECOND, offsets))
    if need != list(map(operator.sub, ends, starts)):
        return None
    rows = sorted(zip(starts, ends, names, range(n)))  # the slow reader's order
    if rows[0][0] != 0 or rows[-1][1] != data_len or any(a[1] != b[0] for a, b in zip(rows, rows[1:])):
        return None
    order = [r[3] for r in rows]
    return [names[i] for i in order], [codes[i] for i in order], [shapes[i] for i in order], [offsets[i] for i in order]


# --- Hugging Face layouts: one file, an index naming shards, or a folder holding either ---------


@dataclass(frozen=True)
class Layout:
    """Where a checkpoint's tensors live: ``shards`` maps each file to the names the index puts there."""

    path: str
    shards: dict[str, set[str] | None]  # None: a single file, whatever it holds
    metadata: dict[str, str]
    is_index: bool


def find_layout(path: str) -> Layout:
    """Resolves a file, an index ``.json`` or a folder into the safetensors files to read."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise fail(path, MSG_OPEN.format(why=e.strerror or e)) from e
    if stat.S_ISDIR(st.st_mode):
        path = _pick_in_folder(path)
    if path.endswith(".json"):
        return _read_index(path)
    return Layout(path, {path: None}, {}, False)


def _pick_in_folder(folder: str) -> str:
    for name in (INDEX_NAME, SINGLE_NAME):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    try:
        names = sorted(os.listdir(folder))
    except OSError as e:
        raise fail(folder, MSG_OPEN.format(why=e.strerror or e)) from e
    for suffix in (".safetensors.index.json", ".safetensors"):
        found = [n for n in names if n.endswith(suffix)]
        if len(found) == 1:
            return os.path.join(folder, found[0])
        if found:
            raise fail(folder, MSG_FOLDER_MANY.format(found=", ".join(found[:6]) + (", ..." if len(found) > 6 else "")))
    raise fail(folder, MSG_FOLDER_EMPTY.format(index=INDEX_NAME))


def _read_index(path: str) -> Layout:
    fd = _open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > MAX_HEADER:
            raise fail(path, MSG_INDEX.format(why=f"{size:,} bytes, more than {MAX_HEADER:,}"))
        raw = _pread(fd, size, 0)
    except OSError as e:
        raise fail(path, MSG_OPEN.format(why=e.strerror or e)) from e
    finally:
        os.close(fd)
    index = _decode(path, raw, MSG_INDEX_JSON)
    if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
        raise fail(path, MSG_INDEX.format(why="no weight_map object"))
    meta = index.get("metadata") or {}
    if not isinstance(meta, dict):
        raise fail(path, MSG_INDEX.format(why=f"metadata is {_type(meta)}"))
    folder = os.path.dirname(path)
    shards: dict[str, set[str]] = {}
    for name, shard in index["weight_map"].items():
        if type(shard) is not str:
            raise fail(path, MSG_INDEX.format(why=f"tensor {name!r} maps to {_type(shard)}, not a file name"))
        if shard in ("", ".", "..") or os.sep in shard or "/" in shard or "\0" in shard:
            raise fail(path, MSG_SHARD_NAME.format(shard=shard))
        shards.setdefault(os.path.join(folder, shard), set()).add(name)
    # Index metadata is free-form JSON (e.g. total_size: 123); keep it as text like file metadata.
    text = {str(k): v if type(v) is str else json.dumps(v) for k, v in meta.items()}
    return Layout(path, dict(sorted(shards.items())), text, True)


def check_shard(header: FileHeader, expected: set[str] | None) -> None:
    """Raises unless a shard holds exactly the tensors its index puts there."""
    if expected is None:
        return
    held = set(header.names)
    missing = expected - held
    if missing:
        raise fail(header.file, MSG_SHARD_MISSING.format(name=min(missing), shard=os.path.basename(header.file)))
    extra = held - expected
    if extra:
        raise fail(
            header.file, MSG_SHARD_EXTRA.format(shard=os.path.basename(header.file), n=len(extra), name=min(extra))
        )


# --- tensor bytes ----------------------------------------------------------------------------


class ShardReader:
    """Reads tensors of one file on demand; opens it (once) at the first read.

    ``safe_open``'s pread backend copies just the asked-for tensor into memory; its mmap
    backend would keep every page read so far mapped, so reading a checkpoint one tensor
    at a time would still end up holding all of it.
    """

    def __init__(self, file: str):
        self.file = file
        self._safe: Any = None
        self._fd: int | None = None

    def read(self, name: str, code: str, shape: tuple[int, ...], start: int, end: int) -> np.ndarray:
        want = DTYPES[code]
        if code in _RAW_CODES:
            arr = self._read_raw(start, end).view(want).reshape(shape)
        else:
            arr = self._read_safe(name)
        if arr.dtype != want or arr.shape != shape:
            raise fail(
                self.file,
                MSG_CHANGED.format(name=name, got=f"{arr.dtype}{list(arr.shape)}", want=f"{want}{list(shape)}"),
            )
        return arr

    def _read_safe(self, name: str) -> np.ndarray:
        try:
            if self._safe is None:
                self._safe = safetensors.safe_open(self.file, framework="numpy", backend="pread")
            return self._safe.get_tensor(name)
        except (safetensors.SafetensorError, OSError) as e:
            raise fail(self.file, MSG_LIBRARY.format(name=name, why=e)) from e

    def _read_raw(self, start: int, end: int) -> np.ndarray:
        """``start``/``end`` are absolute file offsets, inside the data the header validated."""
        if self._fd is None:
            self._fd = _open_regular(self.file)
        out = np.empty(end - start, np.uint8)
        view, pos = memoryview(out), start
        try:
            while view:
                n = os.preadv(self._fd, [view[: 1 << 30]], pos)
                if n == 0:
                    raise OSError(0, "file ended early (it changed since its header was read)")
                view, pos = view[n:], pos + n
        except OSError as e:
            raise fail(self.file, MSG_OPEN.format(why=e.strerror or e)) from e
        return out

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._safe = None  # safe_open closes its file when dropped


def encode(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    """The bytes of a safetensors file, written by the official package."""
    return safetensors.numpy.save(dict(arrays), metadata=dict(metadata))
