"""Pausing Python's cyclic garbage collector around work that makes millions of objects and no cycles."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pauses the cyclic GC for the block, and turns it back on (if it was on) however the block ends.

    Reading a 300,000-tensor header or tracing a 10,000-module model makes millions of small objects,
    none in a cycle; with the GC on, each batch of new ones triggers a scan of all the others. Reference
    counting frees them either way.

    Example:
        >>> import gc
        >>> with gc_paused():
        ...     gc.isenabled()
        False
        >>> gc.isenabled()
        True
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
