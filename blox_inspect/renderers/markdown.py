"""A GitHub-flavoured markdown table of modules plus a totals list."""

from __future__ import annotations

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
from blox_inspect.common.text import md_cell
from blox_inspect.common.units import human
from blox_inspect.report.model import Report


def _cell(text: str) -> str:
    return md_cell(text)


def render(report: Report, depth: int | None = None, fold: bool = True, **_) -> str:
    train = report.totals.flops_train is not None
    head = ["Module", "Type", "Input -> Output", "Params", "%", "Non-train.", "Bytes", "FLOPs"]
    if train:
        head.append("Train FLOPs")
    lines = [
        f"# {_cell(report.model)}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * 3 + "---:|" * (len(head) - 3),
    ]
    total = report.totals.params
    shown = rows(report, depth, fold)
    for row in shown:
        m = row.module
        params, trainable = row.total("params"), row.total("trainable_params")
        cells = [
            row.label,
            type_label(m),
            shapes(m),
            human(params),
            percent(params, total),
            human(params - trainable),
            human(row.total("param_bytes"), "B"),
            human(row.total("flops"), si=True),
        ]
        if train:
            cells.append(human(row.total("flops_train"), si=True))
        name = "&nbsp;&nbsp;" * row.level + (f"**{_cell(row.label)}**" if row.repeat > 1 else _cell(row.label))
        lines.append("| " + " | ".join([name] + [_cell(c) for c in cells[1:]]) + " |")
    lines += ["", "## Totals", ""]
    lines += [f"- **{_cell(label.strip())}**: {_cell(value)}" for label, value in totals_items(report)]
    stat_rows = stats_rows(report)
    if stat_rows:
        lines += ["", "## Parameter statistics", "", "| " + " | ".join(STATS_HEAD) + " |", "|---|---|" + "---:|" * 8]
        lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in stat_rows]
    notes = report.notes + ([FOLD_NOTE] if any(r.repeat > 1 for r in shown) else [])
    if notes:
        lines += ["", "## Notes", ""] + [f"- {_cell(n)}" for n in notes]
    return "\n".join(lines) + "\n"
