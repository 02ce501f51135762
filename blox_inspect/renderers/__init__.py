"""Renderers turn a finished data model (never a model file) into text or bytes: one registry for every command.

``REGISTRY[kind][format]`` is a :class:`Renderer`: the function that renders (``"module:function"``,
imported on first use so ``--help`` stays fast), the file extensions that pick the format from
``-o FILE``, and optionally a terminal variant (a Rich renderable, used when writing to a terminal).
The kinds are the data models: ``summary`` (Report), ``cost`` (CostReport), ``profile`` (ProfileReport), ``findings`` (check
results), ``diff`` (CheckpointDiff), ``graph`` (a Report drawn as a diagram), ``program`` (HLO or
jaxpr text). Every command writes through :func:`emit`, so ``-o FILE`` behaves the same everywhere
(atomic write, then ``wrote FILE (N bytes)`` on stderr).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

from blox_inspect.common.errors import InspectError


@dataclass(frozen=True)
class Renderer:
    """How one kind of result is written in one format."""

    target: str  # "module:function", called as function(data, **fixed, **options) -> str | bytes
    extensions: tuple[str, ...] = ()
    terminal: str | None = None  # "module:function" -> a Rich renderable, for a terminal
    fixed: dict[str, Any] = field(default_factory=dict)

    def __call__(self, data: Any, **options: Any) -> str | bytes:
        return _resolve(self.target)(data, **self.fixed, **options)


_R = "blox_inspect.renderers."
_MD = (".md", ".markdown")
REGISTRY: dict[str, dict[str, Renderer]] = {
    "summary": {
        "table": Renderer(_R + "table:render", (".txt",), terminal=_R + "table:render_rich"),
        "json": Renderer(_R + "json:render", (".json",)),
        "markdown": Renderer(_R + "markdown:render", _MD),
        "csv": Renderer(_R + "csv:render", (".csv",)),
        "html": Renderer(_R + "html:render", (".html", ".htm")),
    },
    "cost": {
        "table": Renderer(_R + "cost:render_text", (".txt",), terminal=_R + "cost:render_rich"),
        "json": Renderer(_R + "json:render", (".json",)),
        "markdown": Renderer(_R + "cost:render_markdown", _MD),
        "html": Renderer(_R + "html:render_cost", (".html", ".htm")),
    },
    "profile": {
        "table": Renderer(_R + "profile:render_table", (".txt",), terminal=_R + "profile:render_rich"),
        "json": Renderer(_R + "profile:render_json", (".json",)),
        "markdown": Renderer(_R + "profile:render_markdown", _MD),
        "csv": Renderer(_R + "profile:render_csv", (".csv",)),
        "html": Renderer(_R + "html:render_profile", (".html", ".htm")),
    },
    "findings": {
        "text": Renderer(_R + "findings:render_text", (".txt",), terminal=_R + "findings:render_rich"),
        "json": Renderer(_R + "findings:render_json", (".json",)),
    },
    "diff": {
        fmt: Renderer(_R + "diff:render", exts, fixed={"fmt": fmt})
        for fmt, exts in (("table", (".txt",)), ("json", (".json",)), ("markdown", _MD), ("csv", (".csv",)))
    },
    "graph": {
        "dot": Renderer(_R + "graphviz:to_dot", (".dot", ".gv")),
        # Images go through a layout engine; the formats it can write are its own (see renderers._layout).
        "image": Renderer(_R + "graphviz:to_image", (".svg", ".png", ".pdf", ".jpg", ".jpeg")),
    },
    "program": {"text": Renderer(_R + "text:render", (".txt", ".mlir", ".hlo"))},
}

# The type of each data model -> its kind, for render(data) without naming the kind.
_KINDS = {"Report": "summary", "CostReport": "cost", "ProfileReport": "profile", "CheckpointDiff": "diff"}


def _resolve(target: str) -> Any:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def formats(kind: str) -> tuple[str, ...]:
    """The formats a kind of result can be written in (the choices of its ``--format``)."""
    return tuple(REGISTRY[kind])


def guess_format(path: str | None, default: str = "table", kind: str = "summary") -> str:
    """The format for an output file from its extension (``default`` when unknown or stdout)."""
    if not path or path == "-":
        return default
    ext = os.path.splitext(path)[1].lower()
    for name, renderer in REGISTRY[kind].items():
        if ext in renderer.extensions:
            return name
    return default


def lookup(kind: str, fmt: str) -> Renderer:
    if fmt not in REGISTRY[kind]:
        raise InspectError(f"unknown format {fmt!r} for {kind}; expected one of: {', '.join(REGISTRY[kind])}.")
    return REGISTRY[kind][fmt]


def render(data: Any, fmt: str = "table", kind: str | None = None, **options: Any) -> str | bytes:
    """Renders ``data`` (a Report, CostReport or CheckpointDiff; ``kind`` for the others) in format ``fmt``.

    Example:
        >>> from blox_inspect.report.model import Report, Totals
        >>> r = Report(model='m', root='net', inputs=[], kwargs={}, totals=Totals(), modules=[], params=[])
        >>> render(r, 'json').startswith('{')
        True
    """
    kind = kind or _KINDS.get(type(data).__name__)
    if kind is None:
        raise InspectError(f"cannot render a {type(data).__name__}; pass kind= one of: {', '.join(REGISTRY)}.")
    return lookup(kind, fmt)(data, **options)


def emit(kind: str, data: Any, fmt: str | None, output: str | None, default: str = "table", **options: Any) -> None:
    """Writes ``data`` as ``fmt`` (else the format ``output``'s extension names, else ``default``) to
    ``output`` (stdout for None or ``-``). On a terminal, a format with a terminal variant prints in colour
    at the terminal's width."""
    from blox_inspect.common.output import result_stream, write_output

    renderer = lookup(kind, fmt or guess_format(output, default, kind))
    if renderer.terminal and output in (None, "-") and result_stream().isatty():
        from rich.console import Console

        Console(file=result_stream()).print(_resolve(renderer.terminal)(data, **options))
        return
    write_output(renderer(data, **options), output)
