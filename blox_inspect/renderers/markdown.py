"""A GitHub-flavoured markdown table of modules plus a totals list."""

from __future__ import annotations

from blox_inspect.analysis.rows import (
    FOLD_NOTE,
    STATS_HEAD,
    stats_rows,
    table_head,
    table_rows,
    totals_items,
)
from blox_inspect.common.text import md_cell
from blox_inspect.report.model import Report


def _cell(text: str) -> str:
    return md_cell(text)


def render(report: Report, depth: int | None = None, fold: bool = True, times: dict | None = None, **_) -> str:
    head = table_head(report, times)
    lines = [
        f"# {_cell(report.model)}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * 3 + "---:|" * (len(head) - 3),
    ]
    shown = table_rows(report, depth, fold, times=times)
    for row in shown:
        name = "&nbsp;&nbsp;" * row.level + (f"**{_cell(row.label)}**" if row.folded else _cell(row.label))
        lines.append("| " + " | ".join([name] + [_cell(c) for c in row.cells]) + " |")
    lines += ["", "## Totals", ""]
    lines += [f"- **{_cell(label.strip())}**: {_cell(value)}" for label, value in totals_items(report)]
    stat_rows = stats_rows(report)
    if stat_rows:
        lines += ["", "## Parameter statistics", "", "| " + " | ".join(STATS_HEAD) + " |", "|---|---|" + "---:|" * 8]
        lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in stat_rows]
    notes = report.notes + ([FOLD_NOTE] if any(r.folded for r in shown) else [])
    if notes:
        lines += ["", "## Notes", ""] + [f"- {_cell(n)}" for n in notes]
    return "\n".join(lines) + "\n"
