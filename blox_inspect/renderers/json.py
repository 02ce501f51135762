"""The Report as JSON (exact integers; re-read with Report.from_json or ``--load``)."""

from __future__ import annotations

from blox_inspect.report.model import Report


def render(report: Report, **_) -> str:
    return report.to_json()
