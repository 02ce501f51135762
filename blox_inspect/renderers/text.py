"""Text that is already rendered (program text from ``blox-inspect hlo``): written as it is."""

from __future__ import annotations


def render(text: str, **_) -> str:
    return text
