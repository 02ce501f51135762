"""Writing rendered output: stdout, or a file written atomically."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TextIO

from blox_inspect.common.errors import InspectError

_RESULTS: ContextVar[TextIO | None] = ContextVar("blox_inspect_results", default=None)


def result_stream() -> TextIO:
    """Where our own results go: stdout, even while :func:`model_prints_to_stderr` is active."""
    return _RESULTS.get() or sys.stdout


@contextlib.contextmanager
def model_prints_to_stderr() -> Iterator[None]:
    """While the user's model file is imported, built and traced, its prints go to stderr, so they
    never corrupt what we write to stdout (``--format json | jq``)."""
    token = _RESULTS.set(result_stream())
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _RESULTS.reset(token)


def write_output(text: str | bytes, path: str | None) -> None:
    """Prints ``text`` or writes it atomically to ``path`` (never a half-written file)."""
    if path is None or path == "-":
        out = result_stream()
        if isinstance(text, bytes):
            out.buffer.write(text)
        else:
            out.write(text if text.endswith("\n") else text + "\n")
        out.flush()
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InspectError(f"{path}: folder {folder} does not exist; create it or choose another -o path.")
    from blox._errors import OutputError
    from blox._files import atomic_write  # imports JAX: only when a file is written

    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        atomic_write(path, data)
    except OutputError as e:  # says which path, why, and that the old file is unchanged
        raise InspectError(str(e)) from e
    print(f"wrote {path} ({len(data):,} bytes)", file=sys.stderr)
