"""Renders check findings: rich text grouped by severity, or JSON with a ``findings`` list."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from blox_inspect.common.text import visible
from blox_inspect.report.finding import SEVERITIES, Finding

STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
TITLE = {"error": "Errors", "warning": "Warnings", "info": "Info"}


def to_dict(findings: Sequence[Finding], model: str) -> dict:
    counts = {s: sum(f.severity == s for f in findings) for s in SEVERITIES}
    return {"model": model, "counts": counts, "findings": [f.to_dict() for f in findings]}


def render_json(findings: Sequence[Finding], model: str) -> str:
    """JSON: ``{"model", "counts", "findings": [{code, severity, path, message, fix}, ...]}``."""
    return json.dumps(to_dict(findings, model), indent=2)


def render_rich(findings: Sequence[Finding], model: str):
    """A rich renderable: one section per severity, each finding with its path, message and fix."""
    from rich.console import Group
    from rich.text import Text

    parts = []
    counts = {s: sum(f.severity == s for f in findings) for s in SEVERITIES}
    summary = ", ".join(f"{n} {s}{'s' if n != 1 and s != 'info' else ''}" for s, n in counts.items())
    parts.append(
        Text.assemble(("blox-inspect check ", "bold"), (visible(model), "bold"), f": {summary or 'no findings'}")
    )
    if not findings:
        parts.append(Text("No problems found.", style="green"))
    for severity in SEVERITIES:
        group = [f for f in findings if f.severity == severity]
        if not group:
            continue
        parts.append(Text(""))
        parts.append(Text(f"{TITLE[severity]} ({len(group)})", style=STYLE[severity] + " underline"))
        for f in group:
            parts.append(
                Text.assemble(
                    (f"{f.code} ", STYLE[severity]), (visible(f.path or "<model>"), "bold"), ": ", visible(f.message)
                )
            )
            parts.append(Text.assemble(("    fix: ", "dim"), visible(f.fix)))
    return Group(*parts)


def render_text(findings: Sequence[Finding], model: str, width: int = 120, color: bool = False) -> str:
    """The rich rendering as a string (plain text unless ``color``)."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(
        file=buf, width=width, color_system="standard" if color else None, force_terminal=color, legacy_windows=False
    )
    console.print(render_rich(findings, model))
    return buf.getvalue()
