"""Reading the JAX profiler's ``*.trace.json.gz``: device op events, their exclusive times, the device's busy time.

The file is Chrome trace-event JSON (what Perfetto and TensorBoard open). Events that ran an HLO op carry
``args.hlo_op`` (the instruction name) and ``args.hlo_module``; times are in microseconds. Nothing here
depends on a backend beyond that: on a GPU or TPU the op events sit in a ``/device:...`` process (kernels,
one or more per op), on the CPU in the host process (one per thunk, a ``while`` loop enclosing its body's).
Everything is one pass over the events plus a sort, so the cost grows linearly with the trace (n log n).
"""

from __future__ import annotations

import contextlib
import gc
import glob
import gzip
import heapq
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from blox_inspect.common.errors import InspectError

MSG_NO_TRACE = (
    "the JAX profiler wrote no *.trace.json.gz under {folder} (found: {found}). This JAX may only write "
    "*.xplane.pb; blox-inspect profile reads the trace-event JSON. Check that the profiler works here: "
    "python -c \"import jax; jax.profiler.trace('/tmp/t').__enter__()\"."
)
MSG_BAD_TRACE = "{file}: not a readable trace-event file ({error}). Re-run the profile to write a fresh trace."


@dataclass
class OpStats:
    """Device op events of one HLO module, summed over every profiled step (seconds)."""

    seconds: dict[str, float] = field(default_factory=dict)  # hlo_op -> exclusive time
    count: dict[str, int] = field(default_factory=dict)  # hlo_op -> events
    busy: float = 0.0  # the union of every op interval
    events: int = 0
    modules_seen: list[str] = field(default_factory=list)  # hlo_module names in the trace
    matched: bool = True  # False: no event named our module, so every op event was used


def find_trace_file(folder: str, before: set[str] | frozenset[str] = frozenset()) -> str:
    """The newest ``*.trace.json.gz`` under ``folder`` that is not in ``before``."""
    found = set(glob.glob(os.path.join(folder, "**", "*.trace.json.gz"), recursive=True)) - set(before)
    if not found:
        listed = sorted(os.path.relpath(p, folder) for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True))
        raise InspectError(MSG_NO_TRACE.format(folder=folder, found=", ".join(listed[:8]) or "nothing"))
    return max(found, key=os.path.getmtime)


def read_trace(path: str) -> dict[str, Any]:
    """The trace-event JSON of a ``.json.gz`` (or plain ``.json``) file."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f, _no_gc():
            data = json.loads(f.read())  # bytes in one go: text-mode gzip decodes several times slower
    except (OSError, ValueError) as e:
        raise InspectError(MSG_BAD_TRACE.format(file=path, error=f"{type(e).__name__}: {e}")) from e
    if isinstance(data, list):  # the array form of the format
        data = {"traceEvents": data}
    if not isinstance(data, dict) or not isinstance(data.get("traceEvents"), list):
        raise InspectError(MSG_BAD_TRACE.format(file=path, error="no traceEvents list"))
    return data


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pauses the cycle collector: a million fresh event dicts would trigger it over and over (no cycles here)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


Threads = dict[Any, list[tuple[float, float, str]]]  # (pid, tid) -> [(start, -duration, hlo_op)], microseconds


def op_events(trace: dict[str, Any], hlo_module: str) -> tuple[Threads, OpStats]:
    """The device op events of ``hlo_module``, per thread, as ``(start, -duration, hlo_op)`` in microseconds.

    Where some op events sit in a ``/device:...`` process (an accelerator's own timeline), only those count:
    the host's launch annotations of the same ops would count them twice.
    """
    with _no_gc():
        return _op_events(trace, hlo_module)


def _op_events(trace: dict[str, Any], hlo_module: str) -> tuple[Threads, OpStats]:
    process: dict[Any, str] = {}
    groups: dict[tuple, list[tuple[float, float, str]]] = {}
    for e in trace["traceEvents"]:  # the hot loop of a profile: a million events take about a second
        args = e.get("args")
        if not args:
            continue
        op = args.get("hlo_op")
        if op is None:
            if e.get("name") == "process_name":
                process[e.get("pid")] = str(args.get("name", ""))
            continue
        if e.get("ph") != "X":
            continue
        key = (e.get("pid"), e.get("tid"), args.get("hlo_module", ""))
        rows = groups.get(key)
        if rows is None:
            rows = groups[key] = []
        rows.append((e["ts"], -e.get("dur", 0), op))
    device = {pid for pid, name in process.items() if name.startswith("/device:")}
    if any(pid in device for pid, _, _ in groups):
        groups = {k: v for k, v in groups.items() if k[0] in device}
    seen = sorted({str(m) for _, _, m in groups})
    stats = OpStats(modules_seen=seen)
    threads: Threads = defaultdict(list)
    for (pid, tid, module), rows in groups.items():
        if module == hlo_module or hlo_module not in seen:
            threads[(pid, tid)].extend(rows)
    stats.matched = hlo_module in seen  # else: the trace names modules differently; every op event was kept
    return dict(threads), stats


def exclusive_times(threads: Threads, stats: OpStats | None = None) -> OpStats:
    """Sums each op's exclusive time (its duration less the events nested in it on its thread) and the busy time.

    Input times are microseconds, the sums are seconds.

    Example:
        >>> threads = {'t': [(0, -10, 'while'), (1, -4, 'dot'), (6, -2, 'add')], 'u': [(20, -1, 'dot')]}
        >>> s = exclusive_times(threads)
        >>> sorted((op, round(t * 1e6, 6)) for op, t in s.seconds.items()), round(s.busy * 1e6, 6)  # in us
        ([('add', 2.0), ('dot', 5.0), ('while', 4.0)], 11.0)
    """
    stats = stats or OpStats()
    seconds: dict[str, float] = defaultdict(float)
    count: Counter = Counter()
    outer: list[list[tuple[float, float]]] = []  # per thread, its outermost events (sorted, disjoint)
    for items in threads.values():
        items.sort()
        ends: list[float] = []  # the stack of open events: their ends and ops
        opens: list[str] = []
        top: list[tuple[float, float]] = []
        for start, neg, op in items:
            end = start - neg
            while ends and ends[-1] <= start:
                ends.pop()
                opens.pop()
            if ends:  # nested in the innermost open event: not part of that event's own time
                seconds[opens[-1]] -= min(end, ends[-1]) - start
            else:
                top.append((start, end))
            ends.append(end)
            opens.append(op)
            seconds[op] -= neg
        count.update(op for _, _, op in items)
        outer.append(top)
    stats.seconds = {op: max(t, 0.0) * 1e-6 for op, t in seconds.items()}
    stats.count = dict(count)
    stats.events = sum(len(items) for items in threads.values())
    stats.busy = _union(outer) * 1e-6
    return stats


def _union(per_thread: list[list[tuple[float, float]]]) -> float:
    """Total length covered by the intervals (each thread's are sorted and disjoint; threads may overlap)."""
    if len(per_thread) == 1:
        return sum(e - s for s, e in per_thread[0])
    busy, end = 0.0, float("-inf")
    for s, e in heapq.merge(*per_thread):
        if e <= end:
            continue
        busy += e - max(s, end)
        end = e
    return busy
