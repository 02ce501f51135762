"""Each HLO op's exclusive time and the device's busy time, from a trace's op events (:class:`OpEvents`).

An op event's exclusive time is its duration less the parts of the events nested in it on its thread (on the
CPU a ``while`` thunk encloses its body's thunks; a GPU's kernels mostly run one after another). The busy
time is the union of every op interval. One sort and a few numpy passes over the events: only the events that
sit under an enclosing event go through a stack in Python, to find the event they are nested in, and the sums
per op are one ``np.bincount``. The sums are taken event by event in the order of a plain Python walk over
each thread's sorted events (the test compares every number with such a walk).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from blox_inspect.analysis.trace_events import OpEvents


@dataclass
class OpStats:
    """Device op events of one HLO module, summed over every profiled step (seconds)."""

    seconds: dict[Any, float] = field(default_factory=dict)  # hlo_op -> exclusive time; ops in order of first run
    count: dict[Any, int] = field(default_factory=dict)  # hlo_op -> events
    busy: float = 0.0  # the union of every op interval
    events: int = 0
    modules_seen: list[str] = field(default_factory=list)  # hlo_module names in the trace
    matched: bool = True  # False: no event named our module, so every op event was used


def op_times(events: OpEvents, hlo_module: str) -> OpStats:
    """Exclusive seconds and event count per op of ``hlo_module``, and the busy seconds of its events.

    Where some op events sit in a ``/device:...`` process (an accelerator's own timeline), only those count:
    the host's launch annotations of the same ops would count them twice. When no event names
    ``hlo_module`` (the trace names its modules differently), every op event counts.

    Example:
        >>> from blox_inspect.analysis.trace_events import op_events
        >>> def ev(ts, dur, op, tid=1):
        ...     return {"ph": "X", "pid": 1, "tid": tid, "ts": ts, "dur": dur, "args": {"hlo_op": op, "hlo_module": "m"}}
        >>> trace = {"traceEvents": [ev(0, 10, "while"), ev(1, 4, "dot"), ev(6, 2, "add"), ev(20, 1, "dot", tid=2)]}
        >>> s = op_times(op_events(trace), "m")
        >>> {op: round(t * 1e6, 6) for op, t in s.seconds.items()}, round(s.busy * 1e6, 6), s.count["dot"]
        ({'while': 4.0, 'dot': 5.0, 'add': 2.0}, 11.0, 2)
    """
    chosen, thread_of_key, stats = _select(events, hlo_module)
    mask = chosen[events.key]
    everything = bool(mask.all())
    start = events.ts if everything else events.ts[mask]
    dur = events.dur if everything else events.dur[mask]
    op = events.op if everything else events.op[mask]
    n = len(start)
    stats.events = n
    if not n:
        return stats
    thread = thread_of_key[events.key if everything else events.key[mask]]  # numbered in order of first event
    neg = -dur
    rank = _sort_rank(events.op_names)[op]
    if not _is_sorted(thread, start, neg, rank):  # a thread's events by start, the longer first, then by name
        order = _sort_order(thread, start, neg, rank)
        thread, start, dur, neg, op = thread[order], start[order], dur[order], neg[order], op[order]
    end = start - neg
    top, parent = _nesting(thread, start, end)
    seconds = _exclusive(op, start, dur, end, top, parent, len(events.op_names))
    count = np.bincount(op, minlength=len(events.op_names))
    names, appeared = events.op_names, _in_order_of_appearance(op, len(events.op_names))
    stats.seconds = {names[i]: max(float(seconds[i]), 0.0) * 1e-6 for i in appeared}
    stats.count = {names[i]: int(count[i]) for i in appeared}
    stats.busy = _busy(thread[top], start[top], end[top]) * 1e-6
    return stats


def _select(events: OpEvents, hlo_module: str) -> tuple[np.ndarray, np.ndarray, OpStats]:
    """Which (pid, tid, module) keys count, each chosen key's thread, and the stats' module fields."""
    device = {pid for pid, name in events.process.items() if name.startswith("/device:")}
    kept = [pid in device for pid, _, _ in events.keys]
    if not any(kept):
        kept = [True] * len(kept)
    seen = sorted({str(m) for (_, _, m), keep in zip(events.keys, kept) if keep})
    matched = hlo_module in seen  # else: the trace names modules differently; every op event is kept
    chosen = np.zeros(len(events.keys), bool)
    thread_of_key = np.zeros(len(events.keys), np.intp)
    threads: dict[tuple[Any, Any], int] = {}
    for i, ((pid, tid, module), keep) in enumerate(zip(events.keys, kept)):
        if keep and (module == hlo_module or not matched):
            chosen[i] = True
            thread_of_key[i] = threads.setdefault((pid, tid), len(threads))
    return chosen, thread_of_key, OpStats(modules_seen=seen, matched=matched)


def _in_order_of_appearance(op: np.ndarray, size: int) -> list[int]:
    """The distinct values of ``op`` (all below ``size``) in the order they first appear."""
    first = np.full(size, len(op))
    np.minimum.at(first, op, np.arange(len(op)))
    present = np.flatnonzero(first < len(op))
    return present[np.argsort(first[present], kind="stable")].tolist()


def _sort_rank(names: list[Any]) -> np.ndarray:
    """Each op name's place in Python's sort of the names (strings; numbers in traces that have them)."""
    order = sorted(range(len(names)), key=lambda i: (isinstance(names[i], str), names[i]))
    rank = np.empty(len(names), np.intp)
    rank[order] = np.arange(len(names))
    return rank


def _sort_order(thread: np.ndarray, start: np.ndarray, neg: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """The stable order of the rows by (thread, start, neg, rank), as ``np.lexsort`` gives it.

    Sorted by thread and start first (cheap: a trace is mostly in time order already), then only the runs
    of rows that tie on both are sorted by the other two keys.
    """
    order = np.argsort(start, kind="stable")
    by_thread = thread[order]
    if by_thread.max() < 2**15:  # small integers sort stably in one linear pass (a radix sort)
        by_thread = by_thread.astype(np.int16)
    order = order[np.argsort(by_thread, kind="stable")]
    t, s = thread[order], start[order]
    tied = (t[1:] == t[:-1]) & (s[1:] == s[:-1])
    if tied.any():
        rows = np.flatnonzero(np.r_[tied, False] | np.r_[False, tied])
        block = np.cumsum(np.r_[True, ~tied])[rows]  # rows of one block tie on (thread, start)
        within = order[rows]
        order[rows] = within[np.lexsort((rank[within], neg[within], block))]
    return order


def _is_sorted(*keys: np.ndarray) -> bool:
    """Whether the rows ``zip(*keys)`` are in ascending lexicographic order already."""
    ok = np.ones(len(keys[0]) - 1, bool)  # rows i and i+1 ordered on every key looked at so far
    tied = np.ones(len(keys[0]) - 1, bool)
    for k in keys:
        a, b = k[:-1], k[1:]
        ok &= ~tied | (a <= b)
        tied &= a == b
    return bool(ok.all())


_LEVELS = 16  # nesting levels found with numpy; deeper ones by the stack walk


def _nesting(thread: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which events are outermost (nested in none), and each event's enclosing event (-1 for the outermost).

    A walk with a stack of open events gives an event the innermost one still open when it starts: the last
    earlier event of its thread that ends after it starts. That is found a nesting level at a time: the
    outermost events are those no earlier event of the thread reaches past (a running maximum of the ends);
    the events under one outermost event whose own earlier siblings do not reach past them sit directly in
    it; the rest repeat the question among those siblings, one level down. Nesting deeper than a few
    levels (never in a real trace) is finished by the stack walk itself.
    """
    n = len(start)
    parent = np.full(n, -1, np.intp)
    cur, group, head = np.arange(n), thread, parent.copy()  # the events in question, their groups and heads
    ranks = _EndRanks(end)
    outermost = None
    for _ in range(_LEVELS):
        top = ranks.reached(cur, group, start[cur])
        parent[cur[top]] = head[top]
        outermost = top if outermost is None else outermost
        nested = ~top
        if not nested.any():
            return outermost, parent
        run = np.cumsum(top) - 1  # under which of this level's outermost events each one sits
        head, group, cur = cur[top][run[nested]], run[nested], cur[nested]
    _walk(cur, group, head, start, end, parent)
    return outermost, parent


class _EndRanks:
    """Running maxima of event ends within contiguous groups, one numpy pass per question."""

    def __init__(self, end: np.ndarray):
        self.end = end
        self.by_end: np.ndarray | None = None
        self.rank: np.ndarray | None = None

    def reached(self, cur: np.ndarray, group: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Which of the events ``cur`` (in contiguous ``group``s) start where no earlier one of their group ends."""
        top = np.ones(len(cur), bool)
        if group[0] == group[-1]:  # one group: a plain running maximum
            top[1:] = start[1:] >= np.maximum.accumulate(self.end[cur])[:-1]
            return top
        if self.rank is None:  # across groups the maximum runs over (group, rank of the end) codes
            n = len(self.end)
            self.by_end = np.argsort(self.end, kind="stable")
            self.rank = np.empty(n, np.int64)
            self.rank[self.by_end] = np.arange(n)
        n = len(self.end)
        latest = np.maximum.accumulate(group.astype(np.int64) * n + self.rank[cur])[:-1]  # the latest end so far
        top[1:] = (group[1:] != group[:-1]) | (start[1:] >= self.end[self.by_end[latest % n]])
        return top


def _walk(
    cur: np.ndarray, group: np.ndarray, head: np.ndarray, start: np.ndarray, end: np.ndarray, parent: np.ndarray
) -> None:
    """The stack walk over the events ``cur`` (contiguous ``group``s): an event nested in none of its group
    sits in its group's ``head``."""
    stack: list[tuple[float, int]] = []  # the open events: (end, index)
    last = None
    for i, g, h, s, e in zip(cur.tolist(), group.tolist(), head.tolist(), start[cur].tolist(), end[cur].tolist()):
        if g != last:
            stack, last = [], g
        while stack and stack[-1][0] <= s:
            stack.pop()
        parent[i] = stack[-1][1] if stack else h
        stack.append((e, i))


def _exclusive(
    op: np.ndarray, start: np.ndarray, dur: np.ndarray, end: np.ndarray, top: np.ndarray, parent: np.ndarray, n_ops: int
) -> np.ndarray:
    """Per op: the sum of its events' durations less what the events nested in them cover.

    Event by event, in order, an event nested in another takes its overlap off the enclosing event's op,
    then adds its own duration to its op: the sequence of additions a Python walk with a stack makes, summed
    by ``np.bincount`` in that same order (so the sums are the same to the last bit).
    """
    nested = ~top
    if not nested.any():
        return np.bincount(op, dur, minlength=n_ops)
    inner = np.flatnonzero(nested)
    up = parent[inner]
    own = np.arange(len(op)) + np.cumsum(nested)  # where each event's own duration goes in the sequence
    seq_op = np.empty(len(op) + len(inner), np.intp)
    seq_w = np.empty(len(op) + len(inner), np.float64)
    seq_op[own], seq_w[own] = op, dur
    seq_op[own[inner] - 1] = op[up]
    seq_w[own[inner] - 1] = -(np.minimum(end[inner], end[up]) - start[inner])
    return np.bincount(seq_op, seq_w, minlength=n_ops)


def _busy(thread: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    """Total length covered by the outermost intervals (each thread's sorted and disjoint; threads may overlap)."""
    if thread[-1] == 0:  # one thread: its intervals are disjoint
        return float(sum((end - start).tolist()))
    same = thread[1:] == thread[:-1]
    if (same & (start[1:] == start[:-1]) & (end[1:] < end[:-1])).any():  # negative durations: a thread's
        cuts = np.flatnonzero(~same) + 1  # intervals out of (start, end) order; merge them as given
        pieces = zip(np.split(start, cuts), np.split(end, cuts))
        return _merged_length([list(zip(s.tolist(), e.tolist())) for s, e in pieces])
    order = np.lexsort((end, start))
    start, end = start[order], end[order]
    reach = np.empty(len(end))
    reach[0] = -np.inf
    reach[1:] = np.maximum.accumulate(end)[:-1]  # how far the intervals before each one reach
    new = end > reach
    gained = end[new] - np.maximum(start[new], reach[new])
    return float(np.cumsum(gained)[-1]) if len(gained) else 0.0  # cumsum: added one by one, in order


def _merged_length(per_thread: list[list[tuple[float, float]]]) -> float:
    busy, end = 0.0, float("-inf")
    for s, e in heapq.merge(*per_thread):
        if e <= end:
            continue
        busy += e - max(s, end)
        end = e
    return busy
