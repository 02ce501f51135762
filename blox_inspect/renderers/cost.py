"""Renders a CostReport as rich tables, plain text or markdown. Consumes the report only; never traces.

Both formats come from one list of :class:`Section`s, so table and markdown always show the same numbers.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field

from blox_inspect.common.text import md_cell, visible
from blox_inspect.common.units import human, human_bytes, human_seconds
from blox_inspect.report.cost import CostReport, ShardingReport


@dataclass
class Section:
    title: str
    columns: list[str]
    rows: list[list[str]]
    lines: list[str] = field(default_factory=list)  # free text after the table
    right: set[int] = field(default_factory=set)  # right-aligned (numeric) columns
    style: str = ""  # 'good' / 'bad' colours the title in rich output


def sections(report: CostReport, depth: int | None = None, max_modules: int = 40) -> list[Section]:
    """The report as format-neutral sections; ``depth`` limits module rows to that many levels below the top."""
    out = [_comparison(report)]
    if report.memory is not None:
        out.append(_memory(report))
    if report.roofline is not None:
        out.append(_roofline(report))
    out.append(_modules(report, depth, max_modules))
    if report.sharding is not None:
        out.extend(_sharding(report.sharding))
    if report.notes:
        out.append(Section("Notes", [], [], lines=list(report.notes)))
    return out


def title(report: CostReport) -> str:
    where = f"{report.devices} devices" if report.devices > 1 else "1 device"
    return f"Cost of {report.model}: {report.program}, compiled for {report.backend} ({where})"


def _metric(metric: str, n: int | None) -> str:
    """FLOPs and transcendentals with SI prefixes, bytes in binary units (the one formatter's rules)."""
    return human_bytes(n) if metric == "bytes accessed" else human(n, si=True)


def _comparison(r: CostReport) -> Section:
    rows = [
        [
            c.metric,
            _metric(c.metric, c.ours),
            _metric(c.metric, c.lowered),
            _metric(c.metric, c.compiled),
            c.note,
        ]
        for c in r.comparison
    ]
    lines = []
    if r.flops_matmul:
        lines.append(
            f"matmul/conv FLOPs (ours): {r.flops_matmul:,} of {r.flops:,} "
            f"({100 * r.flops_matmul / max(r.flops, 1):.1f}%)"
        )
    if r.loops:
        counts = Counter(str(lp.trip_count) if lp.trip_count else "?" for lp in r.loops)
        trips = ", ".join(f"{t} (x{n})" if n > 1 else t for t, n in counts.items())
        lines.append(f"while loops in the compiled program: {len(r.loops)} (trip counts: {trips})")
    return Section(
        "FLOPs and bytes: ours vs XLA",
        ["metric", "ours (jaxpr, loop-aware)", "XLA lowered", "XLA compiled", "why they differ"],
        rows,
        lines,
        right={1, 2, 3},
    )


def _memory(r: CostReport) -> Section:
    m = r.memory
    per = " per device" if r.devices > 1 else ""
    train = r.program != "forward"
    rows = [
        [
            "arguments",
            human_bytes(m.argument),
            f"{m.argument:,}",
            "params, optimizer state, inputs" if train else "params, inputs",
        ],
        ["outputs", human_bytes(m.output), f"{m.output:,}", ""],
        ["aliased", human_bytes(m.alias), f"{m.alias:,}", "outputs written into donated argument buffers"],
        [
            "temp",
            human_bytes(m.temp),
            f"{m.temp:,}",
            "activations, gradients, scratch" if train else "activations, scratch",
        ],
        ["peak (XLA)", human_bytes(m.xla_peak), f"{m.xla_peak:,}", "XLA's peak_memory_in_bytes"],
        ["peak (all live)", human_bytes(m.total), f"{m.total:,}", "arguments + outputs - aliased + temp"],
    ]
    if m.generated_code:
        rows.append(["generated code", human_bytes(m.generated_code), f"{m.generated_code:,}", ""])
    return Section(f"Memory of the compiled program{per}", ["", "size", "bytes", ""], rows, right={1, 2})


def _roofline(r: CostReport) -> Section:
    f = r.roofline
    per = " per device" if r.devices > 1 else ""
    rows = [
        ["peak compute", f"{f.peak_flops / 1e12:.1f} TFLOP/s ({f.dtype})"],
        ["memory bandwidth", f"{f.bandwidth / 1e9:,.0f} GB/s"],
        [f"FLOPs{per} (ours)", f"{f.flops:,}"],
        [f"bytes accessed{per} (XLA compiled)", f"{f.bytes:,}"],
        ["arithmetic intensity", f"{f.intensity:.2f} FLOP/byte (ridge point {f.ridge:.1f})"],
        ["bound", f"{f.bound}-bound"],
        [
            "time lower bound",
            f"{human_seconds(f.seconds)} (compute {human_seconds(f.compute_seconds)}, "
            f"memory {human_seconds(f.memory_seconds)})",
        ],
    ]
    lines = [f"Peaks: {f.source}. A lower bound: no kernel reaches peak, and communication is not included."]
    return Section(f"Roofline on {f.description}", ["", ""], rows, lines)


def _modules(r: CostReport, depth: int | None, limit: int) -> Section:
    total = max(r.flops, 1)
    top = min((m.depth for m in r.modules if m.type), default=0)
    visible = [m for m in r.modules if depth is None or not m.type or m.depth - top <= depth]
    shown = visible[:limit]
    rows = []
    for m in shown:
        indent = max(m.depth - top, 0) if m.type else 0
        name = "  " * indent + (m.name or m.path) if indent else m.path
        rows.append([name, m.type, f"{m.flops_own:,}", f"{m.flops:,}", f"{100 * m.flops / total:.1f}%"])
    hidden = len(r.modules) - len(shown)
    more = "--depth N, --format json" if depth is None else "a larger --depth, --format json"
    lines = [f"... {hidden} more modules (see {more})"] if hidden else []
    return Section(
        f"FLOPs by module ({r.program}, ours)",
        ["module", "type", "own", "total", "share"],
        rows,
        lines,
        right={2, 3, 4},
    )


def _sharding(s: ShardingReport) -> list[Section]:
    mesh = ",".join(f"{k}={v}" for k, v in s.mesh.items())
    d = s.per_device
    rows = [
        ["parameters", human_bytes(d.params), f"{d.params:,}"],
        ["gradients (estimate)", human_bytes(d.gradients), f"{d.gradients:,}"],
        ["optimizer state", human_bytes(d.optimizer_state), f"{d.optimizer_state:,}"],
        ["inputs", human_bytes(d.inputs), f"{d.inputs:,}"],
        ["activations & temporaries", human_bytes(d.activations), f"{d.activations:,}"],
        ["peak", human_bytes(d.peak), f"{d.peak:,}"],
        ["device memory", human_bytes(s.device_memory), f"{s.device_memory:,}"],
    ]
    verdict = "FITS" if s.fits else "DOES NOT FIT"
    head = f"headroom {human_bytes(s.headroom)}" if s.fits else f"over by {human_bytes(-s.headroom)}"
    lines = [f"Verdict: {verdict} ({human_bytes(d.peak)} peak of {human_bytes(s.device_memory)}; {head})"]
    lines += [f"advice: {a}" for a in s.advice]
    lines += [f"note: {n}" for n in s.notes]
    out = [
        Section(
            f"Per device: mesh {mesh}, --sharding {s.strategy}, {s.devices} devices (compiled {s.how})",
            ["", "size", "bytes"],
            rows,
            lines,
            right={1, 2},
            style="good" if s.fits else "bad",
        )
    ]
    if s.collectives:
        crow = [
            [
                c.kind,
                str(c.count),
                str(c.in_loops) if c.in_loops else "",
                human_bytes(c.bytes),
                human_bytes(c.bytes_per_step),
                human_bytes(c.largest),
                c.examples[0] if c.examples else "",
            ]
            for c in s.collectives
        ]
        out.append(
            Section(
                "Collectives in the compiled program (per device)",
                ["kind", "ops", "in loops", "bytes (ops)", "bytes per step", "largest", "largest: shape, module, op"],
                crow,
                lines=["bytes (ops): each op once; bytes per step: ops inside loops times their trip counts"],
                right={1, 2, 3, 4, 5},
            )
        )
    else:
        out.append(Section("Collectives in the compiled program", [], [], lines=["none"]))
    top = sorted(s.params, key=lambda p: -p.device_bytes)[:10]
    prow = [
        [p.path, "x".join(map(str, p.shape)) or "scalar", p.dtype, p.spec, str(p.shards), human_bytes(p.device_bytes)]
        for p in top
    ]
    more = [f"... {len(s.params) - len(top)} more params (see --format json)"] if len(s.params) > len(top) else []
    out.append(
        Section(
            "Largest params per device",
            ["param", "shape", "dtype", "spec", "shards", "per device"],
            prow,
            more,
            right={4, 5},
        )
    )
    return out


# --- rich / text --------------------------------------------------------------------------------------------


def render_rich(report: CostReport, depth: int | None = None, **_):
    """A rich renderable (a Group of titled tables)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts = [Text(visible(title(report)), style="bold")]
    for sec in sections(report, depth):
        colour = {"good": "bold green", "bad": "bold red"}.get(sec.style, "bold cyan")
        parts.append(Text(sec.title, style=colour))
        if sec.columns:
            table = Table(show_header=any(sec.columns), header_style="bold", expand=False)
            for i, col in enumerate(sec.columns):
                table.add_column(
                    col,
                    justify="right" if i in sec.right else "left",
                    overflow="fold",
                    max_width=70 if i == len(sec.columns) - 1 else None,
                )
            for row in sec.rows:
                table.add_row(*(Text(visible(c)) for c in row))  # model-derived text is never markup
            parts.append(table)
        for line in sec.lines:
            style = (
                "bold red" if line.startswith("Verdict: DOES") else "bold green" if line.startswith("Verdict") else ""
            )
            parts.append(Text(visible(line), style=style))
        parts.append(Text(""))
    return Group(*parts)


def render_text(report: CostReport, width: int = 140, color: bool = False, depth: int | None = None) -> str:
    from rich.console import Console

    buf = io.StringIO()
    console = Console(
        file=buf, width=width, force_terminal=color, color_system="auto" if color else None, no_color=not color
    )
    console.print(render_rich(report, depth))
    return buf.getvalue()


# --- markdown -------------------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return md_cell(text)


def render_markdown(report: CostReport, depth: int | None = None) -> str:
    out = [f"# {md_cell(title(report))}", ""]
    for sec in sections(report, depth):
        out.append(f"## {sec.title}")
        out.append("")
        if sec.columns:
            out.append("| " + " | ".join(_md_cell(c) or " " for c in sec.columns) + " |")
            out.append("|" + "|".join("---:" if i in sec.right else "---" for i in range(len(sec.columns))) + "|")
            for row in sec.rows:
                out.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
            out.append("")
        for line in sec.lines:
            out.append(f"- {md_cell(line)}" if sec.columns or len(sec.lines) > 1 else md_cell(line))
        if sec.lines:
            out.append("")
    return "\n".join(out).rstrip() + "\n"
