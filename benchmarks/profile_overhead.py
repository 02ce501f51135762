"""What `blox-inspect profile` costs (run: python -m benchmarks.profile_overhead [--quick] [--overhead-only]).

(a) Profiler overhead: the same compiled program, in one process, timed step by step with and without
    ``jax.profiler.trace`` around the steps (with the options the profile command uses). Rounds alternate
    which goes first; the ratio is the median over rounds of (profiled step median / plain step median).
    Starting and stopping the trace (writing the file) is timed apart: it happens once per profile.
    Models: a pre-norm transformer block's train step (many small ops: where per-event cost shows) and the
    test fixture's forward pass with one 134 MFLOP matmul.
(b) Trace to table: a synthetic trace of N op events (one thread, back to back) over the real HLO ops of the
    transformer block's train step, written as *.trace.json.gz, then read (``read_trace``: gunzip, msgspec
    decode, op-event columns), attributed to modules (``build_report``) and rendered as the table. Target:
    linear in N, 1M events in a few seconds.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import statistics
import sys
import tempfile
import time

import jax
import numpy as np

from benchmarks.overhead import BLOCK, blox_model
from blox_inspect.analysis.op_modules import hlo_ops
from blox_inspect.analysis.op_times import op_times
from blox_inspect.analysis.profile import _init, _profiler_options, _real_args, _Runner, build_report, real_inputs
from blox_inspect.analysis.programs import build_program
from blox_inspect.analysis.summary import summarize_loaded
from blox_inspect.analysis.trace import abstractify
from blox_inspect.analysis.trace_events import OpEvents, read_trace
from blox_inspect.load.model_file import LoadedModel, load_model
from blox_inspect.renderers.profile import render_table

MIX = "tests/blox_inspect/models/profile_mix.py"


def _block() -> LoadedModel:
    _, net = blox_model("block")
    x = jax.ShapeDtypeStruct((BLOCK["batch"], BLOCK["seq"], BLOCK["width"]), "float32")
    return LoadedModel(model=net, inputs=(x,), source="transformer block")


def _compiled(loaded: LoadedModel, train: bool):
    loaded = LoadedModel(loaded.model, real_inputs(loaded.inputs), loaded.kwargs, loaded.source)
    params = _init(loaded, 0)
    program = build_program(loaded, train, abstractify(params))
    compiled = program.jitted().lower(*program.args).compile()
    runner = _Runner(compiled, _real_args(loaded, train, params, loaded.inputs), train, 1, program.name, "bench")
    return loaded, compiled, runner


def overhead(loaded: LoadedModel, train: bool, rounds: int, steps: int) -> dict[str, float]:
    _, _, runner = _compiled(loaded, train)
    for _ in range(3):
        runner.step()
    plain, profiled, ratios, start_stop = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        # The first profiler session of a process starts its tracers (a one-off cost): not a round.
        with jax.profiler.trace(folder, profiler_options=_profiler_options()):
            runner.step()
        for r in range(rounds):
            timed = {}
            for which in ("plain", "profiled") if r % 2 == 0 else ("profiled", "plain"):
                if which == "plain":
                    timed[which] = statistics.median(runner.step() for _ in range(steps))
                    continue
                t0 = time.perf_counter()
                tracer = jax.profiler.trace(folder, profiler_options=_profiler_options())
                tracer.__enter__()
                t1 = time.perf_counter()
                times = [runner.step() for _ in range(steps)]
                t2 = time.perf_counter()
                tracer.__exit__(None, None, None)
                start_stop.append(t1 - t0 + time.perf_counter() - t2)
                timed[which] = statistics.median(times)
            plain.append(timed["plain"])
            profiled.append(timed["profiled"])
            ratios.append(timed["profiled"] / timed["plain"])
    quartiles = statistics.quantiles(ratios, n=4)
    return {
        "plain": statistics.median(plain),
        "profiled": statistics.median(profiled),
        "ratio": statistics.median(ratios),
        "q1": quartiles[0],
        "q3": quartiles[2],
        "start_stop": statistics.median(start_stop),
    }


def trace_to_table(n_events: int, seed: int = 0) -> dict[str, float]:
    loaded, compiled, _ = _compiled(_block(), True)
    text = compiled.as_text()
    summary = summarize_loaded(loaded, train=True, xla=False)
    ops = [name for name, op in hlo_ops(text, {m.path for m in summary.modules}).items() if op.bytes]
    module = text.split()[1].rstrip(",")
    rng = random.Random(seed)
    events = [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "/host:CPU"}}]
    ts = 0.0
    for i in range(n_events):
        dur = rng.uniform(1.0, 50.0)
        name = ops[i % len(ops)]
        events.append(
            {"ph": "X", "pid": 1, "tid": 2, "ts": round(ts, 3), "dur": round(dur, 3), "name": name,
             "args": {"hlo_op": name, "hlo_module": module, "run_id": str(i // len(ops))}}
        )  # fmt: skip
        ts += dur + 0.5
    steps = max(n_events // len(ops), 1)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "synthetic.trace.json.gz")
        with gzip.open(path, "wt", encoding="utf-8") as f:
            json.dump({"traceEvents": events}, f)
        size = os.path.getsize(path)
        del events
        t0 = time.perf_counter()
        trace = read_trace(path)
        t1 = time.perf_counter()
        report = build_report(summary=summary, text=text, trace=trace, steps=steps, warmup=0, times=[1.0], train=True)
        t2 = time.perf_counter()
        render_table(report)
        t3 = time.perf_counter()
    return {"events": n_events, "mb": size / 1e6, "read": t1 - t0, "attribute": t2 - t1, "render": t3 - t2}


def nested_op_times(n_events: int = 1_000_000, threads: int = 8, seed: int = 0) -> float:
    """Seconds of ``op_times`` over CPU-like nesting: ``threads`` threads of back to back events in which
    every 11th is a loop around the next 10, given in time order across threads (so they need sorting).

    Run: python -c "from benchmarks.profile_overhead import nested_op_times; print(nested_op_times())"
    """
    rng = np.random.default_rng(seed)
    per = n_events // threads
    starts, durs = [], []
    for _ in range(threads):
        dur = rng.uniform(1.0, 50.0, per).round(3)
        start = np.cumsum(dur + 0.5) - dur
        loops = np.arange(0, per - 10, 11)
        dur[loops] = start[loops + 10] + dur[loops + 10] - start[loops]
        starts.append(start)
        durs.append(dur)
    key = np.repeat(np.arange(threads), per)
    order = np.argsort(np.concatenate(starts), kind="stable")
    ops = np.arange(len(key)) % 120
    events = OpEvents(
        np.concatenate(starts)[order], np.concatenate(durs)[order], ops[order], key[order],
        [f"fusion.{i}" for i in range(120)], [(1, t, "jit_step") for t in range(threads)],
    )  # fmt: skip
    t0 = time.perf_counter()
    op_times(events, "jit_step")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    rounds, steps = (4, 5) if quick else (30, 20)
    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, load average {os.getloadavg()[0]:.1f}")
    print(f"(a) {rounds} rounds of {steps} steps each way; times are step medians\n")
    print("| program | plain step | profiled step | profiled / plain (quartiles of the rounds) | trace start + stop |")
    print("|---|---:|---:|---:|---:|")
    for name, loaded, train in (
        ("transformer block, train step", _block(), True),
        ("profile_mix.py, forward (134 MFLOP matmul)", load_model(MIX), False),
    ):
        r = overhead(loaded, train, rounds, steps)
        print(
            f"| {name} | {r['plain'] * 1e3:.3f} ms | {r['profiled'] * 1e3:.3f} ms "
            f"| {r['ratio']:.3f}x ({r['q1']:.3f}-{r['q3']:.3f}) "
            f"| {r['start_stop']:.2f} s |"
        )
    if "--overhead-only" in argv:
        return
    print("\n(b) trace to table, synthetic traces over the block train step's HLO ops\n")
    print("| op events | file (gz) | read (gunzip + decode) | attribute to modules | render table | total |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        r = trace_to_table(n)
        total = r["read"] + r["attribute"] + r["render"]
        print(
            f"| {n:,} | {r['mb']:.1f} MB | {r['read']:.2f} s | {r['attribute']:.2f} s | {r['render']:.3f} s "
            f"| {total:.2f} s |"
        )
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
