"""`blox-inspect summary` on models of 1,000 and 10,000 tiny modules (run: python -m benchmarks.summary_scale).

The models are in ``benchmarks/models/wide.py``: a ``bx.Sequential`` of N ``bx.Linear(1)`` children sharing
one Rng (``build_1k``, ``build_10k``: 2N params, 5N equations in the forward program), and 100 nested
``bx.Sequential`` blocks of 100 layers (``build_deep``: 10,101 modules).

(a) The CLI end to end, each case a fresh process run once (interpreter start-up and imports included):
    ``--no-xla`` and ``--xla`` (XLA's compile of the forward program for its FLOP count and memory
    analysis; the default skips it above 5,000 equations, so both models here would skip it), table
    output to a file, and ``--format json``. Wall and CPU seconds, peak RSS.
(b) Where the time of ``--no-xla`` goes, in process (CPU seconds per phase, GC paused as
    ``summarize_loaded`` pauses it).

``--sizes=1k`` (or ``10k``, ``deep``, comma-separated) picks the models. The ``--xla`` row runs for
``build_1k`` only: XLA's CPU compile grows about quadratically with this program (3 s at 500 layers,
7 s at 1,000, 27 s at 2,000; 15 minutes and 3.8 GiB at 10,000), so ``--xla-all`` asks for it on every
model and ``--no-xla-only`` skips it.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = {"1k": "build_1k", "10k": "build_10k", "deep": "build_deep"}

PHASES = """
import gc, sys, time
from blox_inspect.analysis import summary as S
from blox_inspect.analysis.jaxpr import count_eqns
from blox_inspect.analysis.trace import Traces
from blox_inspect.load.model_file import load_model
from blox_inspect.renderers import render

times = {}
def lap(name, start=[time.process_time()]):
    now = time.process_time()
    times[name] = now - start[0]
    start[0] = now

loaded = load_model(sys.argv[1]); lap("load the model file")
gc.disable()
traces = Traces(loaded)
params = traces.params; lap("abstract init")
trace = traces.forward; lap("forward trace (observed)")
report = S._build_report(loaded, params, trace)
report.totals.train_memory_estimate = S.train_memory_estimate(report, trace); lap("report: params, FLOPs, edges")
gc.enable()
text = render(report, "table"); lap("table")
text = render(report, "json"); lap("JSON")
print("eqns", count_eqns(trace.jaxpr), "modules", len(report.modules))
for name, s in times.items():
    print(f"{name}={s:.3f}")
"""


def cli(spec: str, *extra: str) -> tuple[float, float, float]:
    """Wall s, CPU s and peak RSS (MiB) of one ``blox-inspect summary`` process."""
    out = os.path.join(tempfile.mkdtemp(), "out")
    argv = [sys.executable, "-m", "blox_inspect", "summary", spec, "-o", out, *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stderr.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main(argv: list[str]) -> None:
    sizes = ["1k", "10k"]
    for a in argv:
        if a.startswith("--sizes="):
            sizes = a.split("=", 1)[1].split(",")
    xla = "--no-xla-only" not in argv
    xla_all = "--xla-all" in argv
    with open("/proc/loadavg") as f:
        print(f"load average before: {f.read().split()[0]}\n")
    print("(a) `blox-inspect summary benchmarks/models/wide.py:FACTORY -o FILE ...`, one fresh process each\n")
    print("| model | flags | wall s | CPU s | peak RSS MiB |")
    print("|---|---|---:|---:|---:|")
    for size in sizes:
        spec = f"benchmarks/models/wide.py:{MODELS[size]}"
        cases = [("--no-xla",), ("--no-xla", "--format", "json")]
        if xla and (xla_all or size == "1k"):
            cases.append(("--xla",))
        for flags in cases:
            wall, cpu, rss = cli(spec, *flags)
            print(f"| {MODELS[size]} | `{' '.join(flags)}` | {wall:.2f} | {cpu:.2f} | {rss:,.0f} |", flush=True)
    print("\n(b) CPU seconds per phase of `--no-xla`, in process\n")
    for size in sizes:
        spec = f"benchmarks/models/wide.py:{MODELS[size]}"
        out = subprocess.run([sys.executable, "-c", PHASES, spec], cwd=ROOT, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(out.stderr)
        lines = out.stdout.strip().splitlines()
        print(f"{MODELS[size]} ({lines[0]}):")
        for line in lines[1:]:
            name, value = line.rsplit("=", 1)
            print(f"  {name:32s} {float(value):7.3f}")
    with open("/proc/loadavg") as f:
        print(f"\nload average after: {f.read().split()[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
