"""Renders a CheckpointDiff: a plain table, markdown, csv (exact numbers) or JSON. Paths are file data,
so control characters are shown escaped (``\\x1b``), never sent to the terminal."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

from blox_inspect.analysis.diff import STATUSES, CheckpointDiff, ParamDiff
from blox_inspect.common.text import md_cell, visible

COLUMNS = ("status", "path", "a", "b", "max |Δ|", "rel. norm Δ", "NaN/inf changed")


_safe = visible


def _spec(shape: list[int] | None, dtype: str | None) -> str:
    return "" if shape is None else f"{_safe(str(dtype))}{list(shape)}"


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


def _row(p: ParamDiff) -> list[str]:
    return [
        p.status,
        _safe(p.path),
        _spec(p.shape_a, p.dtype_a),
        _spec(p.shape_b, p.dtype_b),
        _num(p.max_abs),
        _num(p.rel_norm),
        str(p.nan_changed) if p.nan_changed else "",
    ]


def _counts(diff: CheckpointDiff) -> str:
    c = diff.counts()
    return ", ".join(f"{c[s]} {s}" for s in STATUSES if c[s]) or "both empty"


def render(diff: CheckpointDiff, fmt: str = "table", show_unchanged: bool = False) -> str:
    """The diff as text in ``fmt`` (table, markdown, csv or json)."""
    rows = [p for p in diff.params if show_unchanged or p.status != "unchanged"]
    if fmt == "json":
        data = {"a": diff.a, "b": diff.b, "counts": diff.counts(), "params": [dataclasses.asdict(p) for p in rows]}
        return json.dumps(data, indent=2, default=str)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["status", "path", "shape_a", "dtype_a", "shape_b", "dtype_b", "max_abs", "rel_norm", "nan_changed"])
        for p in rows:
            w.writerow(
                # Exact text, except control characters: shown escaped, as everywhere a terminal may print it.
                [p.status, _safe(p.path), p.shape_a, _safe(str(p.dtype_a)), p.shape_b, _safe(str(p.dtype_b))]
                + [p.max_abs, p.rel_norm, p.nan_changed]
            )
        return buf.getvalue()
    head = f"{_safe(diff.a)} -> {_safe(diff.b)}: {_counts(diff)}"
    if fmt == "markdown":
        lines = [head, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(md_cell(c) for c in _row(p)) + " |" for p in rows]
        return "\n".join(lines)
    table = [list(COLUMNS)] + [_row(p) for p in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = [head, ""] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    return "\n".join(lines) if rows else head
