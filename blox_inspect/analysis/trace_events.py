"""Reading the JAX profiler's ``*.trace.json.gz`` into columns of its op events.

The file is Chrome trace-event JSON (what Perfetto and TensorBoard open). Events that ran an HLO op carry
``args.hlo_op`` (the instruction name) and ``args.hlo_module``; times are in microseconds. Nothing here
depends on a backend beyond that: on a GPU or TPU the op events sit in a ``/device:...`` process (kernels,
one or more per op), on the CPU in the host process (one per thunk, a ``while`` loop enclosing its body's).

A profile can hold a million events, so the file is decoded by msgspec into structs that keep only the
fields read here (everything else is skipped unparsed), and the op events become numpy columns
(:class:`OpEvents`); :mod:`blox_inspect.analysis.op_times` works on those. A file the typed decoder
refuses (an event or its ``args`` not an object, a number msgspec does not read such as ``NaN``, a
``process_name`` event whose args lack the name) is read again with the standard ``json`` module, and
gives the same columns.
"""

from __future__ import annotations

import contextlib
import gc
import glob
import gzip
import itertools
import json
import math
import os
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from blox_inspect.common.errors import InspectError

MSG_NO_TRACE = (
    "the JAX profiler wrote no *.trace.json.gz under {folder} (found: {found}). This JAX may only write "
    "*.xplane.pb; blox-inspect profile reads the trace-event JSON. Check that the profiler works here: "
    "python -c \"import jax; jax.profiler.trace('/tmp/t').__enter__()\"."
)
MSG_BAD_TRACE = "{file}: not a readable trace-event file ({error}). Re-run the profile to write a fresh trace."
MSG_BAD_EVENT = (
    "{file}: op event {op!r} (args.hlo_op) has {field}={value!r}; expected a finite number of microseconds "
    "({what}). Re-run the profile to write a fresh trace."
)
MSG_BAD_KEY = (
    "{file}: an op event has pid/tid/args.hlo_module/args.hlo_op {value!r}; expected a string or a number. "
    "Re-run the profile to write a fresh trace."
)


@dataclass
class OpEvents:
    """The op events of a trace (``ph: X`` events with an ``args.hlo_op``) as columns, in file order.

    ``op`` and ``key`` index ``op_names`` and ``keys``, each numbered in order of first appearance.
    """

    ts: np.ndarray  # float64, start in microseconds
    dur: np.ndarray  # float64, duration in microseconds (0 where the event has none)
    op: np.ndarray  # intp -> op_names
    key: np.ndarray  # intp -> keys
    op_names: list[Any]  # the hlo_op values (strings in every trace JAX writes)
    keys: list[tuple[Any, Any, Any]]  # (pid, tid, hlo_module)
    process: dict[Any, str] = field(default_factory=dict)  # pid -> process_name (the last one given)


# --- the typed decoder: only the fields read below; every other field is skipped ----------------------------


class _Args(msgspec.Struct, gc=False):
    hlo_op: Any = None
    hlo_module: Any = ""
    name: Any = msgspec.UNSET  # a process_name event's name


class _Event(msgspec.Struct, gc=False):
    ph: Any = None
    pid: Any = None
    tid: Any = None
    ts: float | str | None = None
    dur: float | str | None = 0.0
    name: Any = None
    args: _Args | None = None


class _Trace(msgspec.Struct, gc=False):
    traceEvents: list[_Event]


_DECODER = msgspec.json.Decoder(_Trace | list[_Event])  # the object form, or the bare array of events


class _Ambiguous(Exception):
    """The typed decode cannot tell what the json reading would give: read the file with json instead."""


def read_trace(path: str) -> OpEvents:
    """The op events of a trace-event ``.json.gz`` (or plain ``.json``) file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:  # EOFError: a truncated .gz
        raise InspectError(MSG_BAD_TRACE.format(file=path, error=f"{type(e).__name__}: {e}")) from e
    with _no_gc():
        try:
            decoded = _DECODER.decode(data)
            return _typed_columns(decoded if isinstance(decoded, list) else decoded.traceEvents, path)
        except (msgspec.DecodeError, msgspec.ValidationError, _Ambiguous):
            pass
        try:
            trace = json.loads(data)
        except (ValueError, RecursionError) as e:  # ValueError: JSON and UTF-8 errors
            raise InspectError(MSG_BAD_TRACE.format(file=path, error=f"{type(e).__name__}: {e}")) from e
        if isinstance(trace, list):  # the array form of the format
            trace = {"traceEvents": trace}
        if not isinstance(trace, dict) or not isinstance(trace.get("traceEvents"), list):
            raise InspectError(MSG_BAD_TRACE.format(file=path, error="no traceEvents list"))
        return op_events(trace, path)


def op_events(trace: dict[str, Any], file: str = "(given)") -> OpEvents:
    """The op events of a trace already parsed by ``json`` (``{"traceEvents": [...]}``).

    Example:
        >>> trace = {"traceEvents": [
        ...     {"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "/device:GPU:0"}},
        ...     {"ph": "X", "pid": 1, "tid": 2, "ts": 5, "dur": 3, "name": "dot", "args": {"hlo_op": "dot"}}]}
        >>> e = op_events(trace)
        >>> e.ts.tolist(), e.dur.tolist(), e.op_names, e.keys, e.process
        ([5.0], [3.0], ['dot'], [(1, 2, '')], {1: '/device:GPU:0'})
    """
    with _no_gc():
        return _dict_columns(trace["traceEvents"], file)


def _typed_columns(events: list[_Event], file: str) -> OpEvents:
    process: dict[Any, str] = {}
    for e in [e for e in events if e.name == "process_name"]:
        if e.args is not None and e.args.hlo_op is None:
            if e.args.name is msgspec.UNSET:  # json would skip empty args but name a process '' otherwise
                raise _Ambiguous
            process[e.pid] = str(e.args.name)
    ops = [e for e in events if (a := e.args) is not None and a.hlo_op is not None and e.ph == "X"]
    args = [e.args for e in ops]
    keys = ((e.pid, e.tid, a.hlo_module) for e, a in zip(ops, args))
    try:
        return _columns([e.ts for e in ops], [e.dur for e in ops], [a.hlo_op for a in args], keys, process, file)
    except TypeError:  # a list or an object as a pid, tid, module or op: the json reading names it
        raise _Ambiguous from None


def _dict_columns(events: list[Any], file: str) -> OpEvents:
    process: dict[Any, str] = {}
    ts, dur, ops, keys = [], [], [], []
    for e in events:
        args = e.get("args") if isinstance(e, dict) else None
        if not args or not isinstance(args, dict):
            continue
        op = args.get("hlo_op")
        if op is None:
            if e.get("name") == "process_name":
                process[e.get("pid")] = str(args.get("name", ""))
            continue
        if e.get("ph") != "X":
            continue
        ts.append(e.get("ts"))
        dur.append(e.get("dur", 0))
        ops.append(op)
        keys.append((e.get("pid"), e.get("tid"), args.get("hlo_module", "")))
    try:
        return _columns(ts, dur, ops, keys, process, file)
    except TypeError as e:
        bad = next(v for v in [*ops, *(x for k in keys for x in k)] if not _hashable(v))
        raise InspectError(MSG_BAD_KEY.format(file=file, value=bad)) from e


def _columns(ts: list, dur: list, ops: list, keys: Iterable[tuple], process: dict[Any, str], file: str) -> OpEvents:
    """Raises TypeError for a value that cannot be a dict key (a list or an object) among ``ops`` and ``keys``."""
    op_ids, op_names = _numbered(ops, len(ops))
    key_ids, key_list = _numbered(keys, len(ops))
    return OpEvents(
        _times(ts, "ts", ops, file, "the event's start"),
        _times(dur, "dur", ops, file, "its duration; leave it out for 0"),
        op_ids,
        key_ids,
        op_names,
        key_list,
        process,
    )


def _numbered(values: Iterable, n: int) -> tuple[np.ndarray, list]:
    """Each value's index in the list of distinct values, in order of first appearance."""
    index: dict[Any, int] = defaultdict(itertools.count().__next__)  # a new value gets the next number
    return np.fromiter(map(index.__getitem__, values), np.intp, n), list(index)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _times(values: list, name: str, ops: list, file: str, what: str) -> np.ndarray:
    try:
        out = np.array(values, dtype=np.float64)  # numbers, and numbers written as strings
    except (TypeError, ValueError, OverflowError):
        out = None
    if out is not None and np.isfinite(out).all():
        return out
    for op, v in zip(ops, values):  # the first bad value, for the message
        try:
            number = float(v)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if not math.isfinite(number):
            raise InspectError(MSG_BAD_EVENT.format(file=file, op=op, field=name, value=v, what=what))
    return np.array([float(v) for v in values], dtype=np.float64)  # strings float() reads and numpy does not


def find_trace_file(folder: str, before: set[str] | frozenset[str] = frozenset()) -> str:
    """The newest ``*.trace.json.gz`` under ``folder`` that is not in ``before``."""
    found = set(glob.glob(os.path.join(folder, "**", "*.trace.json.gz"), recursive=True)) - set(before)
    if not found:
        listed = sorted(os.path.relpath(p, folder) for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True))
        raise InspectError(MSG_NO_TRACE.format(folder=folder, found=", ".join(listed[:8]) or "nothing"))
    return max(found, key=os.path.getmtime)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pauses the cycle collector: a million fresh event objects would trigger it over and over (no cycles here)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
