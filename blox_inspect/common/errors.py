"""Errors the CLI turns into one clear message and exit code 2."""

from __future__ import annotations


class InspectError(Exception):
    """A known, user-facing problem (bad file, bad option, model error).

    The CLI prints ``str(error)`` and exits with ``exit_code``; ``--debug``
    adds the traceback.
    """

    exit_code = 2


class BudgetExceeded(InspectError):
    """A CI budget (--max-params / --max-flops) was exceeded."""

    exit_code = 1
