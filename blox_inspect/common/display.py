"""Notebook display of the data models (``_repr_html_``, ``_repr_markdown_``) without the report tier
importing a renderer: the renderer is looked up by name when a notebook asks, through the registry."""

from __future__ import annotations

import importlib
from typing import Any


def rich_display(obj: Any, fmt: str, **options: Any) -> str:
    """``obj`` rendered as ``fmt`` ('html' or 'markdown') by the renderer registry."""
    renderers = importlib.import_module("blox_inspect.renderers")  # the views tier, loaded on first display
    return renderers.render(obj, fmt, **options)
