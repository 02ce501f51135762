"""Reading a report saved as JSON (``--load``): no JAX is imported on this path."""

from __future__ import annotations

from typing import Any

from blox_inspect.common.errors import InspectError


def read_saved_report(path: str, cls: Any, saved_by: str) -> Any:
    """Reads a report saved as JSON (``--load``): a Report, a CostReport, any class with ``from_json``.

    ``saved_by`` is the command that writes such a file, for the error message.
    """
    hint = f"Save one with `{saved_by}`."
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError as e:
        raise InspectError(f"--load {path}: no such report file, so cannot read it. {hint}") from e
    except OSError as e:
        raise InspectError(f"--load {path}: cannot read it ({e.strerror}). {hint}") from e
    try:
        return cls.from_json(text)
    except InspectError:
        raise  # already says what is wrong (e.g. another schema_version)
    except Exception as e:
        raise InspectError(f"--load {path}: not a blox-inspect JSON report ({type(e).__name__}: {e}). {hint}") from e
