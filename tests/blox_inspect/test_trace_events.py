"""Reading profiler traces and timing their op events: every number equals a plain Python walk over the events.

The reference below is the simple algorithm written out: pick the op events, sort each thread's events, walk
them with a stack (an event nested in the innermost open one takes its overlap off that one's time), sum per
op event by event, and sweep the outermost intervals for the busy time. The fast path (msgspec decode, numpy
columns, nesting found a level at a time, np.bincount) must give the same floats, bit for bit, and the
same order of ops.
"""

import gzip
import heapq
import json
import random
import re
from collections import Counter, defaultdict

import pytest

from blox_inspect.analysis.op_times import OpStats, op_times
from blox_inspect.analysis.trace_events import MSG_BAD_TRACE, op_events, read_trace
from blox_inspect.common.errors import InspectError

MODULE = "jit_step"


def reference(trace: dict, hlo_module: str) -> OpStats:
    """The op stats of a json-parsed trace, one event at a time in plain Python."""
    process, groups = {}, {}
    for e in trace["traceEvents"]:
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
        groups.setdefault((e.get("pid"), e.get("tid"), args.get("hlo_module", "")), []).append(
            (e["ts"], -e.get("dur", 0), op)
        )
    device = {pid for pid, name in process.items() if name.startswith("/device:")}
    if any(pid in device for pid, _, _ in groups):
        groups = {k: v for k, v in groups.items() if k[0] in device}
    seen = sorted({str(m) for _, _, m in groups})
    threads = defaultdict(list)
    for (pid, tid, module), rows in groups.items():
        if module == hlo_module or hlo_module not in seen:
            threads[(pid, tid)].extend(rows)
    seconds, count, outer = defaultdict(float), Counter(), []
    for items in threads.values():
        items.sort()
        stack, top = [], []  # the open events: (end, op)
        for start, neg, op in items:
            end = start - neg
            while stack and stack[-1][0] <= start:
                stack.pop()
            if stack:
                seconds[stack[-1][1]] -= min(end, stack[-1][0]) - start
            else:
                top.append((start, end))
            stack.append((end, op))
            seconds[op] -= neg
        count.update(op for _, _, op in items)
        outer.append(top)
    if len(outer) == 1:
        busy = sum(e - s for s, e in outer[0])
    else:
        busy, reach = 0.0, float("-inf")
        for s, e in heapq.merge(*outer):
            if e > reach:
                busy += e - max(s, reach)
                reach = e
    return OpStats(
        seconds={op: max(t, 0.0) * 1e-6 for op, t in seconds.items()},
        count=dict(count),
        busy=busy * 1e-6,
        events=sum(len(items) for items in threads.values()),
        modules_seen=seen,
        matched=hlo_module in seen,
    )


def random_trace(rng: random.Random, n: int, negative: bool = False) -> dict:
    """Op events on several processes and threads, nested (loops around bodies, kernels sharing a start,
    children running past their parent's end), zero and missing durations, integer and float times, ops the
    program does not have, other modules, other phases, metadata and events without args; in random order."""
    ops = [f"fusion.{i}" for i in range(6)] + ["while", "copy.1", "unknown_op"]
    pids = rng.sample([1, 2, 3, "host"], rng.randint(1, 3))
    events = [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "/host:CPU"}}]
    if 2 in pids and rng.random() < 0.5:
        events.append({"ph": "M", "pid": 2, "name": "process_name", "args": {"name": "/device:GPU:0"}})
    events.append({"ph": "M", "pid": 1, "tid": 5, "name": "thread_name", "args": {"name": "main"}})
    events.append({"ph": "M", "pid": 1, "name": "process_sort_index", "args": {"sort_index": 1}})

    def time(x: float):
        return int(x) if rng.random() < 0.2 else round(x, 3)

    def event(pid, tid, ts, dur, module):
        op = rng.choice(ops)
        e = {"ph": "X", "pid": pid, "tid": tid, "ts": ts, "name": op, "args": {"hlo_op": op, "run_id": "7"}}
        if dur is not None:
            e["dur"] = dur
        if module is not None:
            e["args"]["hlo_module"] = module
        return e

    for _ in range(n):
        pid, tid = rng.choice(pids), rng.choice([5, 6, "7"])
        module = rng.choice([MODULE, MODULE, MODULE, "jit_other", None])
        t = rng.uniform(0, 10 * n)
        dur = rng.choice([0, rng.uniform(0, 30), rng.uniform(0, 300), None])
        if negative and rng.random() < 0.1:
            dur = -rng.uniform(0, 10)
        if rng.random() < 0.3:  # a group of events under this one
            d = rng.uniform(10, 200)
            events.append(event(pid, tid, time(t), time(d), module))
            for _ in range(rng.randint(1, 4)):
                s = t + rng.choice([0.0, rng.uniform(0, d)])
                events.append(event(pid, tid, time(s), time(rng.choice([0, rng.uniform(0, d), d])), module))
            continue
        events.append(event(pid, tid, time(t), None if dur is None else time(dur), module))
    events.append({"ph": "i", "pid": 1, "tid": 5, "ts": 3.0, "args": {"hlo_op": "fusion.1", "hlo_module": MODULE}})
    events.append({"ph": "X", "pid": 1, "tid": 5, "ts": 4.0, "dur": 1.0, "name": "python", "args": {"a": "1"}})
    events.append({"ph": "X", "pid": 1, "tid": 5, "ts": 4.5, "dur": "2", "name": "host"})
    rng.shuffle(events)
    return {"displayTimeUnit": "ns", "traceEvents": events, "metadata": {"x": [1, {"y": None}]}}


def same(a: OpStats, b: OpStats) -> None:
    assert list(a.seconds.items()) == list(b.seconds.items())  # the same floats, ops in the same order
    assert list(a.count.items()) == list(b.count.items())
    assert (a.busy, a.events, a.modules_seen, a.matched) == (b.busy, b.events, b.modules_seen, b.matched)


def write(tmp_path, trace, name="t.trace.json.gz") -> str:
    path = str(tmp_path / name)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(trace, f)
    return path


@pytest.mark.parametrize("seed", range(12))
def test_op_times_equal_a_plain_walk_over_the_events(seed, tmp_path):
    rng = random.Random(seed)
    trace = random_trace(rng, rng.choice([1, 5, 40, 300]))
    path = write(tmp_path, trace)
    with gzip.open(path, "rt") as f:
        parsed = json.load(f)  # the file as json reads it (what the reference takes)
    for module in (MODULE, "jit_absent"):
        want = reference(parsed, module)
        same(op_times(read_trace(path), module), want)  # typed decode
        same(op_times(op_events(parsed), module), want)  # already-parsed dicts


def test_nesting_on_one_thread_and_negative_durations():
    rng = random.Random(99)
    for negative in (False, True):
        trace = random_trace(rng, 3000, negative=negative)
        for e in trace["traceEvents"]:
            if e.get("ph") == "X":
                e["pid"], e["tid"] = 1, 5
        same(op_times(op_events(trace), MODULE), reference(trace, MODULE))
        many = random_trace(rng, 200, negative=negative)
        same(op_times(op_events(many), MODULE), reference(many, MODULE))

    def ev(tid, ts, dur, op="add"):
        return {"ph": "X", "pid": 1, "tid": tid, "ts": ts, "dur": dur, "args": {"hlo_op": op, "hlo_module": MODULE}}

    # A long thread of back to back events (a device stream), some with kernels under them.
    t, events = rng.random(), []
    for i in range(5000):
        d = round(rng.uniform(0.1, 50), 3)
        events.append(ev(5, round(t, 3), d, f"fusion.{i % 7}"))
        if i % 10 == 0:
            events.append(ev(5, round(t + d / 3, 3), round(d / 2, 3), "kernel"))
        t += d + rng.choice([0, 0.5])
    trace = {"traceEvents": events}
    same(op_times(op_events(trace), MODULE), reference(trace, MODULE))

    # Nesting 40 deep (each event inside the one before, some running past its end), on two threads.
    deep = [ev(5 + i % 2, i // 2 + 0.125 * (i % 3), 100 - i // 2 + (i % 5 == 0), f"fusion.{i % 4}") for i in range(80)]
    trace = {"traceEvents": deep[::-1] + [ev(5, 10.5, 1, "add"), ev(6, 30, 200, "mul")]}
    same(op_times(op_events(trace), MODULE), reference(trace, MODULE))

    # Outermost intervals that share a start with their ends out of order (an empty one, then a negative one):
    # merged as given, the negative one lies inside the empty one's reach and adds nothing.
    trace = {"traceEvents": [ev(5, 5, 0), ev(5, 5, -2, "mul"), ev(6, 100, 1.5), ev(6, 100.5, 0.25), ev(5, 9, 1)]}
    same(op_times(op_events(trace), MODULE), reference(trace, MODULE))
    assert reference(trace, MODULE).busy == pytest.approx(2.5e-6)


def test_the_array_form_and_files_the_typed_decoder_refuses_read_as_json_does(tmp_path):
    rng = random.Random(5)
    trace = random_trace(rng, 50)
    want = reference(trace, MODULE)
    same(op_times(read_trace(write(tmp_path, trace["traceEvents"], "array.trace.json.gz")), MODULE), want)
    plain = tmp_path / "plain.trace.json"
    plain.write_text(json.dumps(trace))
    same(op_times(read_trace(str(plain)), MODULE), want)
    odd = [
        {"ph": "M", "name": "x", "args": []},  # args that are not an object (empty: skipped)
        {"ph": "C", "ts": True, "args": {"v": float("nan")}},  # a bool time, a NaN the json module writes
        {"ph": "M", "pid": 1, "name": "process_name", "args": {"sort_index": 3}},  # a process named ''
        {"ph": "M", "pid": 2, "name": "process_name", "args": {}},  # empty args: skipped
    ]
    trace["traceEvents"] += odd
    same(op_times(read_trace(write(tmp_path, trace, "odd.trace.json.gz")), MODULE), reference(trace, MODULE))


def test_numbers_written_as_strings_outside_op_events_are_read(tmp_path):
    trace = random_trace(random.Random(3), 20)
    trace["traceEvents"].append({"ph": "X", "pid": 1, "ts": "12.5", "dur": "3", "name": "host", "args": {"n": 1}})
    want = reference(trace, MODULE)
    same(op_times(read_trace(write(tmp_path, trace)), MODULE), want)
    same(op_times(op_events(trace), MODULE), want)


def test_unreadable_files_and_bad_op_events_say_what_is_wrong(tmp_path):
    good = write(tmp_path, random_trace(random.Random(1), 30), "good.trace.json.gz")
    data = open(good, "rb").read()
    prefix = ".*" + re.escape(MSG_BAD_TRACE.split("{error}")[0].format(file=""))
    for name, content in [("cut.trace.json.gz", data[: len(data) // 2]), ("junk.trace.json.gz", b"not gzip")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InspectError, match=prefix + r"(EOFError|BadGzipFile)"):
            read_trace(str(tmp_path / name))
    half = gzip.decompress(data)[:1000]
    for name, content in [("half.trace.json.gz", gzip.compress(half)), ("none.trace.json.gz", gzip.compress(b"{}"))]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InspectError, match=prefix + r"(JSONDecodeError|no traceEvents list)"):
            read_trace(str(tmp_path / name))
    with pytest.raises(InspectError, match=prefix + "FileNotFoundError"):
        read_trace(str(tmp_path / "missing.trace.json.gz"))
    op = {"ph": "X", "pid": 1, "tid": 1, "dur": 1, "name": "add", "args": {"hlo_op": "add"}}
    for given, message in [({}, "ts=None"), ({"ts": "soon"}, "ts='soon'"), ({"ts": 1, "dur": None}, "dur=None")]:
        path = write(tmp_path, {"traceEvents": [{**op, **given}]}, "bad.trace.json.gz")
        with pytest.raises(InspectError, match=rf"op event 'add' \(args.hlo_op\) has {message}; expected a finite"):
            read_trace(path)
    with pytest.raises(InspectError, match=r"pid/tid/args.hlo_module/args.hlo_op \[1\]; expected a string"):
        op_events({"traceEvents": [{**op, "ts": 0, "tid": [1]}]})
