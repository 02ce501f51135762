"""The terminal table: a rich Table of modules plus a totals block."""

from __future__ import annotations

import io

from blox_inspect.analysis.rows import (
    FOLD_NOTE,
    STATS_HEAD,
    stats_rows,
    table_head,
    table_rows,
    totals_items,
)
from blox_inspect.common.text import ellipsize, visible
from blox_inspect.report.model import Report

# The widest a module name may make its column; longer names are cut in the middle (both ends stay readable).
NAME_WIDTH = 60


def render_rich(report: Report, depth: int | None = None, fold: bool = True, times: dict | None = None, **_):
    """A rich renderable (a Group of the module table, the totals and any notes)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(visible(report.model)), title_justify="left", show_lines=False, pad_edge=False)
    for k, name in enumerate(table_head(report, times)):
        if k == 0:
            table.add_column(name, no_wrap=True, max_width=NAME_WIDTH)
        else:
            table.add_column(name, justify="right" if k >= 3 else "left")
    shown = table_rows(report, depth, fold, blank_zeros=True, times=times)
    for row in shown:
        # One very long name must not squeeze every other column to nothing: cut it in the middle.
        name = ellipsize(visible(row.label), max(8, NAME_WIDTH - 2 * row.level))
        label = Text("  " * row.level + name, style="bold" if row.folded else "")
        table.add_row(label, *(Text(visible(c)) for c in row.cells))  # never parsed as markup
    totals = Table.grid(padding=(0, 2))
    totals.add_column(style="bold")
    totals.add_column()
    for label, value in totals_items(report):
        totals.add_row(Text(visible(label)), Text(visible(value)))
    parts = [table, totals]
    stat_rows = stats_rows(report)
    if stat_rows:
        stats = Table(title="Parameter statistics", title_justify="left", pad_edge=False)
        for i, name in enumerate(STATS_HEAD):
            stats.add_column(name, justify="left" if i < 2 else "right")
        for r in stat_rows:
            stats.add_row(*(Text(visible(c)) for c in r))
        parts.append(stats)
    notes = report.notes + ([FOLD_NOTE] if any(r.folded for r in shown) else [])
    if notes:
        parts.append(Text("\n".join(f"note: {visible(n)}" for n in notes), style="yellow"))
    return Group(*parts)


def render_text(
    report: Report, depth: int | None = None, fold: bool = True, width: int = 160, times: dict | None = None
) -> str:
    """The table as plain text (no colour), e.g. for ``print(report)`` or ``-o summary.txt``."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False, legacy_windows=False)
    console.print(render_rich(report, depth, fold, times=times))
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def render(report: Report, depth: int | None = None, fold: bool = True, times: dict | None = None, **_) -> str:
    return render_text(report, depth, fold, times=times)
