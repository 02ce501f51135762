"""Writing rendered output: stdout, or a file written atomically."""

from __future__ import annotations

import os
import sys

from blox_inspect.common.errors import InspectError


def write_output(text: str | bytes, path: str | None) -> None:
    """Prints ``text`` or writes it atomically to ``path`` (never a half-written file)."""
    if path is None or path == "-":
        if isinstance(text, bytes):
            sys.stdout.buffer.write(text)
        else:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InspectError(f"{path}: folder {folder} does not exist; create it or choose another -o path.")
    from blox._files import atomic_write  # imports JAX: only when a file is written

    atomic_write(path, text.encode("utf-8") if isinstance(text, str) else text)
