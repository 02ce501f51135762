"""Exception types. Each message says what was expected, what was found, where, and what to do."""

from __future__ import annotations


class BloxError(Exception):
    """Base class for errors raised by blox."""


class GraphError(BloxError, ValueError):
    """A problem with the structure of a Graph (names, binding)."""


class ParamError(BloxError, ValueError):
    """A parameter does not match what the module asked for."""


class LockedParamsError(ParamError):
    """A new parameter was requested on locked Params."""


class RngError(BloxError, ValueError):
    """An Rng module was used before being seeded."""


class CheckpointError(BloxError, ValueError):
    """A checkpoint file is unreadable, foreign, or does not match the model."""


class ShapeError(BloxError, ValueError):
    """An input to a layer has the wrong rank or size."""


class OutputError(BloxError, OSError):
    """A file could not be written. The message names the file and why; an old file there is unchanged."""
