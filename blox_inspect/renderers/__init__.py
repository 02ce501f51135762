"""Renderers consume a finished Report (never a model). A small registry by format name.

Each entry maps a format to ``(module, function, file extensions)``; the function
takes ``(report, **options)`` and returns ``str`` (or ``bytes``). Other tools add
their formats here (e.g. graphviz).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from blox_inspect.common.errors import InspectError
from blox_inspect.report.model import Report

RENDERERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "table": ("blox_inspect.renderers.table", "render", (".txt",)),
    "json": ("blox_inspect.renderers.json", "render", (".json",)),
    "markdown": ("blox_inspect.renderers.markdown", "render", (".md", ".markdown")),
    "csv": ("blox_inspect.renderers.csv", "render", (".csv",)),
}


def guess_format(path: str | None, default: str = "table") -> str:
    """The format for an output file from its extension (``default`` when unknown or stdout)."""
    if not path or path == "-":
        return default
    ext = os.path.splitext(path)[1].lower()
    for name, (_, _, exts) in RENDERERS.items():
        if ext in exts:
            return name
    return default


def render(report: Report, fmt: str = "table", **options: Any) -> str | bytes:
    """Renders ``report`` in format ``fmt`` (a key of :data:`RENDERERS`)."""
    if fmt not in RENDERERS:
        raise InspectError(f"unknown format {fmt!r}; expected one of: {', '.join(RENDERERS)}.")
    module, func, _ = RENDERERS[fmt]
    return getattr(importlib.import_module(module), func)(report, **options)
