"""A GitHub-flavoured markdown table of modules plus a totals list."""

from __future__ import annotations

from .._report import Report
from ._rows import human, percent, rows, shapes, totals_items, type_label


def _cell(text: str) -> str:
    # dtypes such as key<fry> would read as HTML tags
    return text.replace("|", "\\|").replace("<", "&lt;")


def render(report: Report, depth: int | None = None, fold: bool = True, **_) -> str:
    train = report.totals.flops_train is not None
    head = ["Module", "Type", "Input -> Output", "Params", "%", "Non-train.", "Bytes", "FLOPs"]
    if train:
        head.append("Train FLOPs")
    lines = [f"# {report.model}", "", "| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * (len(head) - 3)]
    total = report.totals.params
    for row in rows(report, depth, fold):
        m = row.module
        cells = [
            "&nbsp;&nbsp;" * row.level + ("**" + row.label + "**" if row.repeat > 1 else row.label),
            type_label(m),
            shapes(m),
            human(m.params),
            percent(m.params, total),
            human(m.params - m.trainable_params),
            human(m.param_bytes, "B"),
            human(m.flops, si=True),
        ]
        if train:
            cells.append(human(m.flops_train, si=True))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "## Totals", ""]
    lines += [f"- **{_cell(label.strip())}**: {_cell(value)}" for label, value in totals_items(report)]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {_cell(n)}" for n in report.notes]
    return "\n".join(lines) + "\n"
