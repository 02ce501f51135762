"""The terminal table: a rich Table of modules plus a totals block."""

from __future__ import annotations

import io

from blox_inspect.analysis.rows import (
    FOLD_NOTE,
    STATS_HEAD,
    percent,
    rows,
    shapes,
    stats_rows,
    totals_items,
    type_label,
)
from blox_inspect.common.text import ellipsize, visible
from blox_inspect.common.units import human
from blox_inspect.report.model import Report

# The widest a module name may make its column; longer names are cut in the middle (both ends stay readable).
NAME_WIDTH = 60


def render_rich(report: Report, depth: int | None = None, fold: bool = True, **_):
    """A rich renderable (a Group of the module table, the totals and any notes)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    train = report.totals.flops_train is not None
    table = Table(title=Text(visible(report.model)), title_justify="left", show_lines=False, pad_edge=False)
    table.add_column("Module", no_wrap=True, max_width=NAME_WIDTH)
    table.add_column("Type")
    table.add_column("Input -> Output")
    table.add_column("Params", justify="right")
    table.add_column("%", justify="right")
    table.add_column("Non-train.", justify="right")
    table.add_column("Bytes", justify="right")
    table.add_column("FLOPs", justify="right")
    if train:
        table.add_column("Train FLOPs", justify="right")
    total = report.totals.params
    shown = rows(report, depth, fold)
    for row in shown:
        m = row.module
        params, trainable = row.total("params"), row.total("trainable_params")
        bytes_, flops, flops_train = row.total("param_bytes"), row.total("flops"), row.total("flops_train")
        # One very long name must not squeeze every other column to nothing: cut it in the middle.
        name = ellipsize(visible(row.label), max(8, NAME_WIDTH - 2 * row.level))
        label = Text("  " * row.level + name, style="bold" if row.repeat > 1 else "")
        cells = [
            label,
            type_label(m),
            shapes(m),
            human(params) if params else "",
            percent(params, total) if params else "",
            human(params - trainable) if params - trainable else "",
            human(bytes_, "B") if bytes_ else "",
            human(flops, si=True) if flops else "",
        ]
        if train:
            cells.append(human(flops_train, si=True) if flops_train else "")
        table.add_row(*(c if isinstance(c, Text) else Text(visible(c)) for c in cells))  # never parsed as markup
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
    notes = report.notes + ([FOLD_NOTE] if any(r.repeat > 1 for r in shown) else [])
    if notes:
        parts.append(Text("\n".join(f"note: {visible(n)}" for n in notes), style="yellow"))
    return Group(*parts)


def render_text(report: Report, depth: int | None = None, fold: bool = True, width: int = 160) -> str:
    """The table as plain text (no colour), e.g. for ``print(report)`` or ``-o summary.txt``."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False, legacy_windows=False)
    console.print(render_rich(report, depth, fold))
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def render(report: Report, depth: int | None = None, fold: bool = True, **_) -> str:
    return render_text(report, depth, fold)
