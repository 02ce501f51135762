"""Time to draw a diagram: DOT generation (``to_dot``) and layout (the engine writing SVG), per model.

Run: ``python -m benchmarks.graph_speed`` (or ``make bench``). Reports are synthetic ones with the
structure and sizes of GPT-2 small, ResNet-50 and Llama 3 70B (80 layers), built by
``tests/blox_inspect/graph_reports.py`` until the example models and the analysis are in main.
Each time is the best of 3 runs.
"""

from __future__ import annotations

import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "blox_inspect"))

import graph_reports  # noqa: E402

from blox_inspect.renderers import _layout  # noqa: E402
from blox_inspect.renderers.graphviz import build_graph  # noqa: E402

CASES = [
    ("GPT-2 small (12 layers), folded", graph_reports.gpt2, {}),
    ("GPT-2 small, --expand", graph_reports.gpt2, {"expand": True}),
    ("ResNet-50, folded", graph_reports.resnet50, {}),
    ("ResNet-50, --depth 2", graph_reports.resnet50, {"depth": 2}),
    ("Llama 70B (80 layers), folded", graph_reports.llama, {}),
    ("Llama 70B, --depth 1 --expand", graph_reports.llama, {"depth": 1, "expand": True}),
]


def _best(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    engine = _layout.find_engine()
    print(f"layout engine: {engine.path if engine else 'none (layout not timed)'}")
    print("| diagram | modules | nodes drawn | DOT generation | layout (SVG) | SVG size |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, make, options in CASES:
        report = make()
        t_dot, graph = _best(lambda: build_graph(report, **options))  # noqa: B023
        source = graph.source
        boxes = sum(1 for line in graph.body if " [label=" in line and " -> " not in line)
        if engine:
            t_layout, svg = _best(lambda: _layout.layout(engine, source, "svg", "bench.svg"))  # noqa: B023
            layout, size = f"{t_layout * 1000:.0f} ms", f"{len(svg) / 1024:.0f} KiB"
        else:
            layout, size = "-", "-"
        print(f"| {name} | {len(report.modules)} | {boxes} | {t_dot * 1000:.0f} ms | {layout} | {size} |")


if __name__ == "__main__":
    main()
