"""Renders a ProfileReport as a rich table, markdown, CSV or JSON. Consumes the report only; never runs a model.

Each renderer is a plain function ``report -> str``. Rows follow the summary's tree, ``--depth`` and ×N folding
(:func:`blox_inspect.analysis.rows.rows` over the report's own summary); a folded row sums the measured times
of all N blocks, so shares still add up.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from blox_inspect.analysis.rows import FOLD_NOTE, rows
from blox_inspect.common.text import md_cell, visible
from blox_inspect.common.units import DASH, human, human_bytes, human_seconds
from blox_inspect.report.profile import OUTSIDE, ModuleTime, ProfileReport, Rates, rates

TOP_OPS = 10
COLUMNS = ["Module", "Type", "Self", "Total", "Share", "Calls", "Ops/step", "FLOPs", "FLOP/s", "Bytes/s", "Roofline"]
RIGHT = set(range(2, len(COLUMNS)))


@dataclass
class ProfileRow:
    """One shown row: a module, or a folded run of N identical blocks (its numbers summed over all N)."""

    path: str
    label: str
    type: str
    level: int
    repeat: int
    members: list[str]  # the module paths whose numbers this row sums
    self_seconds: float
    total_seconds: float
    calls: int
    ops: float
    flops: int
    bytes: int
    rates: Rates


def profile_rows(report: ProfileReport, depth: int | None = None, fold: bool = True) -> list[ProfileRow]:
    """The module rows to show, in tree order, then the time outside every module."""
    by_path = {m.path: m for m in report.modules}
    out: list[ProfileRow] = []
    for row in rows(report.summary, depth, fold):
        m = row.module
        members = [p for p in row.members if p in by_path]  # a folded row sums all the blocks it stands for
        out.append(_row(report, m.path, row.label, m.type, row.level, row.repeat, [by_path[p] for p in members]))
    t = report.totals
    if t.unattributed > 0:
        ops = sum(o.count for o in report.ops if "" in o.modules)
        out.append(_row(report, OUTSIDE, OUTSIDE, "", 0, 1, []))
        out[-1].self_seconds = out[-1].total_seconds = t.unattributed
        out[-1].ops = ops
    return out


def _row(
    report: ProfileReport, path: str, label: str, type_: str, level: int, repeat: int, ms: list[ModuleTime]
) -> ProfileRow:
    flops, nbytes = sum(m.flops for m in ms), sum(m.bytes for m in ms)
    total = sum(m.total_seconds for m in ms)
    return ProfileRow(
        path=path,
        label=label,
        type=type_,
        level=level,
        repeat=repeat,
        members=[m.path for m in ms],
        self_seconds=sum(m.self_seconds for m in ms),
        total_seconds=total,
        calls=sum(m.calls for m in ms),
        ops=sum(m.ops for m in ms),
        flops=flops,
        bytes=nbytes,
        rates=rates(flops, nbytes, total, report.peak),
    )


def _seconds(s: float) -> str:
    return human_seconds(s) if s > 0 else ""


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole > 0 else DASH


def _rate(value: float | None, unit: str) -> str:
    if value is None:
        return DASH
    if unit == "B/s":
        return human_bytes(int(round(value))) + "/s"
    return human(value, unit)  # SI prefixes with the unit: '65.5 KFLOP/s', '500 FLOP/s'


def _fraction(value: float | None) -> str:
    return DASH if value is None else f"{100 * value:.3g}%"


def table_rows(report: ProfileReport, depth: int | None = None, fold: bool = True) -> list[list[str]]:
    """The module table's cells (COLUMNS), shared by the rich table and markdown."""
    busy = report.totals.device_busy
    out = []
    for r in profile_rows(report, depth, fold):
        if r.path == OUTSIDE:
            label = OUTSIDE
        else:
            label = "  " * r.level + visible(r.label)
        out.append(
            [
                label,
                visible(r.type),
                _seconds(r.self_seconds),
                _seconds(r.total_seconds),
                _share(r.total_seconds, busy) if r.total_seconds else "",
                f"{r.calls:,}" if r.calls else "",
                f"{r.ops:,.4g}" if r.ops else "",
                human(r.flops, si=True) if r.flops else "",
                _rate(r.rates.flops_per_second, "FLOP/s") if r.flops else "",
                _rate(r.rates.bytes_per_second, "B/s") if r.bytes else "",
                _fraction(r.rates.roofline_fraction) if r.flops or r.bytes else "",
            ]
        )
    return out


def totals_items(report: ProfileReport) -> list[tuple[str, str]]:
    """(label, value) lines of the totals block."""
    t = report.totals
    step = max(t.wall_mean, 1e-30)
    items = [
        ("Program", f"{report.program}: {t.steps} profiled steps after {t.warmup} warmup"),
        ("Device", f"{visible(report.device_kind)} ({report.backend})"),
        (
            "Wall step time",
            f"median {human_seconds(t.wall_median)} (min {human_seconds(t.wall_min)}, "
            f"max {human_seconds(t.wall_max)}, mean {human_seconds(t.wall_mean)})",
        ),
        ("Device busy", f"{human_seconds(t.device_busy)} per step ({_share(t.device_busy, step)} of the mean step)"),
        ("  in modules", f"{_seconds(t.in_modules) or '0'} ({_share(t.in_modules, t.device_busy)} of busy)"),
        (
            "  outside modules",
            f"{_seconds(t.unattributed) or '0'} ({_share(t.unattributed, t.device_busy)} of busy): device ops no "
            "module ran (a train step's loss and optimizer update)",
        ),
        ("Off the device", f"{human_seconds(t.off_device)} per step: host, transfers, idle (wall mean - busy)"),
        ("Compile", human_seconds(t.compile_seconds)),
        (
            "Peak device memory",
            human_bytes(t.peak_memory)
            if t.peak_memory is not None
            else f"not reported by the {report.backend} backend",
        ),
    ]
    whole = rates(t.flops, t.bytes, t.device_busy, report.peak)
    items.append(
        (
            "FLOPs per step (ours)",
            f"{human(t.flops, 'FLOP')}: {_rate(whole.flops_per_second, 'FLOP/s')} over the busy time, "
            f"{_rate(t.flops / t.wall_median if t.wall_median else None, 'FLOP/s')} over the median wall step",
        )
    )
    if report.peak is not None:
        p = report.peak
        items.append(
            (
                "Roofline peak",
                f"{visible(p.description)}: {p.peak_flops / 1e12:.1f} TFLOP/s ({p.dtype}), "
                f"{p.bandwidth / 1e9:,.0f} GB/s; the busy time reaches {_fraction(whole.roofline_fraction)} of it",
            )
        )
    else:
        items.append(("Roofline peak", f"{DASH} (none for this device; --device NAME compares against one)"))
    if t.split_ops:
        items.append(
            (
                "Shared fusions",
                f"{t.split_ops} fused op(s) hold ops of several modules: {human_seconds(t.split_seconds)} per step, "
                "split between them by their ops' FLOPs",
            )
        )
    items.append(("Trace", f"{visible(report.trace_file)} (open in ui.perfetto.dev or TensorBoard)"))
    return items


def top_ops(report: ProfileReport, limit: int = TOP_OPS) -> list[list[str]]:
    busy = report.totals.device_busy
    out = []
    for o in report.ops[:limit]:
        where = " + ".join(visible(m) or OUTSIDE for m in sorted(o.modules, key=lambda k: -o.modules[k]))
        out.append(
            [visible(o.name), visible(o.opcode), where, _seconds(o.seconds), _share(o.seconds, busy), f"{o.count:,.4g}"]
        )
    return out


OP_COLUMNS = ["HLO op", "Opcode", "Module", "Time/step", "Share", "Runs/step"]


def title(report: ProfileReport) -> str:
    return f"Profile of {visible(report.model)}: {report.program}, measured on {visible(report.device_kind)}"


def _notes(report: ProfileReport, shown: list[list[str]]) -> list[str]:
    notes = [visible(n) for n in report.notes]
    if any("×" in row[0] for row in shown):
        notes.append(FOLD_NOTE)
    return notes


# --- rich / text -----------------------------------------------------------------------------------------------


def render_rich(report: ProfileReport, depth: int | None = None, fold: bool = True, **_):
    """A rich renderable: the module table, the totals, the heaviest ops and the notes."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    shown = table_rows(report, depth, fold)
    table = Table(title=Text(visible(title(report))), title_justify="left", pad_edge=False)
    for i, col in enumerate(COLUMNS):
        table.add_column(col, justify="right" if i in RIGHT else "left", no_wrap=i == 0)
    for cells in shown:  # Text cells: names from the model file are never read as markup
        table.add_row(*(Text(visible(c)) for c in cells))
    totals = Table.grid(padding=(0, 2))
    totals.add_column(style="bold")
    totals.add_column()
    for label, value in totals_items(report):
        totals.add_row(Text(visible(label)), Text(visible(value)))
    ops = Table(title="Heaviest HLO ops", title_justify="left", pad_edge=False)
    for i, col in enumerate(OP_COLUMNS):
        ops.add_column(col, justify="right" if i >= 3 else "left")
    for cells in top_ops(report):
        ops.add_row(*(Text(visible(c)) for c in cells))
    parts = [table, totals, ops]
    notes = _notes(report, shown)
    if notes:
        parts.append(Text("\n".join(f"note: {visible(n)}" for n in notes), style="yellow"))
    return Group(*parts)


def render_table(
    report: ProfileReport, depth: int | None = None, fold: bool = True, width: int = 160, color: bool = False
) -> str:
    """The table as text (``color=True`` keeps ANSI styles, for a terminal)."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(
        file=buf, width=width, force_terminal=color, color_system="auto" if color else None, no_color=not color
    )
    console.print(render_rich(report, depth, fold))
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


# --- markdown, csv, json --------------------------------------------------------------------------------------


def _md(text: str) -> str:
    return md_cell(text)


def _md_table(columns: list[str], body: list[list[str]], right: set[int]) -> list[str]:
    out = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(columns))) + "|",
    ]
    out += ["| " + " | ".join(_md(c.replace("  ", "\u00a0\u00a0")) for c in row) + " |" for row in body]
    return out


def render_markdown(report: ProfileReport, depth: int | None = None, fold: bool = True) -> str:
    shown = table_rows(report, depth, fold)
    out = [f"# {_md(title(report))}", "", *_md_table(COLUMNS, shown, RIGHT), ""]
    out += [
        "## Totals",
        "",
        *(f"- **{_md(label.strip())}**: {_md(value)}" for label, value in totals_items(report)),
        "",
    ]
    out += ["## Heaviest HLO ops", "", *_md_table(OP_COLUMNS, top_ops(report), {3, 4, 5}), ""]
    notes = _notes(report, shown)
    if notes:
        out += ["## Notes", "", *(f"- {_md(n)}" for n in notes), ""]
    return "\n".join(out).rstrip() + "\n"


CSV_COLUMNS = [
    "path",
    "type",
    "level",
    "repeat",
    "members",
    "self_seconds",
    "total_seconds",
    "share_of_busy",
    "calls",
    "ops_per_step",
    "flops",
    "bytes",
    "flops_per_second",
    "bytes_per_second",
    "roofline_fraction",
]


def render_csv(report: ProfileReport, depth: int | None = None, fold: bool = False) -> str:
    """One row per shown module (unfolded by default), exact numbers: seconds per step, counts, rates."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    busy = report.totals.device_busy
    for r in profile_rows(report, depth, fold):
        w.writerow(
            [
                visible(r.path),
                visible(r.type),
                r.level,
                r.repeat,
                len(r.members) or "",
                r.self_seconds,
                r.total_seconds,
                r.total_seconds / busy if busy else "",
                r.calls,
                r.ops,
                r.flops,
                r.bytes,
                "" if r.rates.flops_per_second is None else r.rates.flops_per_second,
                "" if r.rates.bytes_per_second is None else r.rates.bytes_per_second,
                "" if r.rates.roofline_fraction is None else r.rates.roofline_fraction,
            ]
        )
    return buf.getvalue()


def render_json(report: ProfileReport, **_: object) -> str:
    return report.to_json()
