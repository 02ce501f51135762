"""Time to draw a diagram: DOT generation (``build_graph``) and layout (the engine writing SVG), per model.

Run: ``python -m benchmarks.graph_speed`` (or ``make bench``). Models: GPT-2 small, ResNet-50 and
Llama 3 70B (80 layers) from ``examples/``, analysed once (that time is shown apart). Where an
example file is missing, a synthetic report with the same structure and sizes stands in, built by
``tests/blox_inspect/graph_reports.py``. Each drawing time is the best of 3 runs.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "blox_inspect"))

import graph_reports  # noqa: E402

from blox_inspect import InspectError  # noqa: E402
from blox_inspect.analysis.diagram import plan  # noqa: E402
from blox_inspect.renderers import _layout  # noqa: E402
from blox_inspect.renderers.graphviz import build_graph  # noqa: E402

LIMIT = 30  # seconds one layout may take here
MODELS = [
    ("GPT-2 small", "examples/gpt2.py", graph_reports.gpt2),
    ("ResNet-50", "examples/resnet50.py", graph_reports.resnet50),
    ("Llama 70B (80 layers)", "examples/llama.py:build_70b", graph_reports.llama),
]
VIEWS = {
    "GPT-2 small": [("folded", {}), ("--expand", {"expand": True})],
    "ResNet-50": [("folded", {}), ("--depth 2", {"depth": 2})],
    "Llama 70B (80 layers)": [("folded", {}), ("--depth 1 --expand", {"depth": 1, "expand": True})],
}


def _best(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _report(spec: str, synthetic):
    """The example's real report (and the analysis time), or the synthetic stand-in."""
    if os.path.exists(ROOT / spec.split(":")[0]):
        from blox_inspect.analysis.summary import summarize_loaded
        from blox_inspect.load.model_file import load_model

        t0 = time.perf_counter()
        report = summarize_loaded(load_model(str(ROOT / spec)), xla=False)
        return report, f"{time.perf_counter() - t0:.1f} s", spec
    return synthetic(), "-", "synthetic"


def main() -> None:
    engine = _layout.find_engine()
    print(f"layout engine: {engine.path if engine else 'none (layout not timed)'}")
    print("| model | source | analysis | view | modules | boxes drawn | DOT generation | layout (SVG) | SVG size |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for name, spec, synthetic in MODELS:
        report, analysis, source = _report(spec, synthetic)
        for view, options in VIEWS[name]:
            t_dot, graph = _best(lambda: build_graph(report, **options))  # noqa: B023
            dot = graph.source
            nodes = len(plan(report, **options).boxes())  # modules drawn as boxes, plus inputs and outputs
            layout, size = "-", "-"
            if engine:
                try:
                    t_layout, svg = _best(lambda: _layout.layout(engine, dot, "svg", "b.svg", timeout=LIMIT))  # noqa: B023
                    layout, size = f"{t_layout * 1000:.0f} ms", f"{len(svg) / 1024:.0f} KiB"
                except InspectError:
                    layout = f"> {LIMIT} s (gave up)"
            print(
                f"| {name} | {source} | {analysis} | {view} | {len(report.modules)} | {nodes} "
                f"| {t_dot * 1000:.0f} ms | {layout} | {size} |"
            )


if __name__ == "__main__":
    main()
