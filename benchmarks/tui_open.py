"""How fast `blox-inspect tui` opens and responds on a 10,014-module report (headless, Pilot).

Run: `python -m benchmarks.tui_open`. The report comes from the test builder
(tests/blox_inspect/tui_reports.py): a GPT-style model with 910 blocks.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "blox_inspect"))

from tui_reports import gpt_report  # noqa: E402

from blox_inspect.tui import make_app  # noqa: E402

REPEATS = 3


async def _once(report) -> dict[str, float]:
    out = {}
    t0 = time.perf_counter()
    app = make_app(report)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        out["open (first screen)"] = time.perf_counter() - t0
        tree = app.screen.query_one("#tree")
        t = time.perf_counter()
        tree.nodes["gpt/blocks"].expand()
        await pilot.pause()
        out["expand gpt/blocks"] = time.perf_counter() - t
        t = time.perf_counter()
        await pilot.press("pagedown", "pagedown", "pagedown")
        await pilot.pause()
        out["3 × page down"] = time.perf_counter() - t
        search = app.screen.query_one("#search")
        t = time.perf_counter()
        search.value = "b909mlpdown"
        await pilot.pause()
        out["fuzzy search (one query)"] = time.perf_counter() - t
        search.value = ""
        await pilot.pause()
        t = time.perf_counter()
        await pilot.press("s")
        await pilot.pause()
        out["re-sort by params"] = time.perf_counter() - t
    return out


def main() -> None:
    small = gpt_report(2)
    t = time.perf_counter()
    big = gpt_report(910)
    build = time.perf_counter() - t
    asyncio.run(_once(small))  # warm-up: imports, CSS parsing
    runs = {}
    for name, report in (("35 modules", small), (f"{len(big.modules):,} modules", big)):
        runs[name] = [asyncio.run(_once(report)) for _ in range(REPEATS)]
    print(f"big report: {len(big.modules):,} modules, {len(big.params):,} params (built in {build:.2f} s)")
    print(f"median of {REPEATS} runs, seconds")
    names = list(runs)
    print(f"{'step':32s} " + " ".join(f"{n:>15s}" for n in names))
    for key in runs[names[0]][0]:
        row = [statistics.median(r[key] for r in runs[n]) for n in names]
        print(f"{key:32s} " + " ".join(f"{v:15.3f}" for v in row))


if __name__ == "__main__":
    main()
