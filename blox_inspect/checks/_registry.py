"""The registry of check families: each is a function ``CheckContext -> Iterable[Finding]``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from blox_inspect.report.finding import Finding

CHECKS: dict[str, Callable[[Any], Iterable[Finding]]] = {}


def check(family: str) -> Callable:
    """Decorator registering a check family under ``family``."""

    def register(fn: Callable[[Any], Iterable[Finding]]) -> Callable[[Any], Iterable[Finding]]:
        if family in CHECKS:
            raise ValueError(f"check family {family!r} registered twice")
        CHECKS[family] = fn
        return fn

    return register
