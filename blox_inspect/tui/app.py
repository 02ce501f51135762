"""The app and its factory. ``make_app`` serves the CLI and the tests alike."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from textual.app import App
from textual.binding import Binding

from blox_inspect.analysis.diff import CheckpointDiff
from blox_inspect.analysis.program_text import hlo_lines_for
from blox_inspect.analysis.stats import ArrayStats, array_stats
from blox_inspect.common.text import visible
from blox_inspect.load.checkpoints import CheckpointMismatch, CheckpointReader
from blox_inspect.report.model import Report
from blox_inspect.tui.index import ReportIndex
from blox_inspect.tui.screens import DiffScreen, HelpScreen, MainScreen

ProgramText = Mapping[str, list[str]] | Callable[[], Mapping[str, list[str]]]
ParamValues = Mapping[str, Any] | CheckpointReader | Callable[[str], Any]

NO_VALUES = "abstract params: no values to show. Open a checkpoint (--params ckpt.safetensors) for statistics."


class BloxInspectApp(App):
    """Browses one Report (module tree, details, program text) or one checkpoint diff."""

    CSS_PATH = "blox.tcss"
    TITLE = "blox-inspect"
    # Textual's command palette (ctrl+p) offered only Textual's own commands, and its option list raises
    # KeyError when PageUp/PageDown arrives between a search refilling it and its next layout (issue #12).
    # Every action of ours has a key, listed by ?, so the palette is off.
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?", tooltip="this list of keys"),
        Binding("q", "quit", "Quit", tooltip="quit blox-inspect"),
    ]

    def __init__(
        self,
        report: Report | None = None,
        *,
        params: ParamValues | None = None,
        program_text: ProgramText | None = None,
        hlo_text: str | None = None,
        mismatch: CheckpointMismatch | None = None,
        diff: CheckpointDiff | None = None,
        title: str | None = None,
        times: dict[str, float] | None = None,
    ):
        super().__init__()
        if (report is None) == (diff is None):
            raise ValueError("make_app needs exactly one of report= (browse) or diff= (compare checkpoints)")
        self.report = report
        self.index = ReportIndex(report) if report is not None else None
        if self.index is not None and times:
            self.index.times = dict(times)
        self.diff = diff
        self.mismatch = mismatch
        self.hlo_text = hlo_text
        self._program = program_text
        self._read = _reader(params)
        self._stats_cache: dict[str, ArrayStats] = {}
        if title:
            self.title = f"blox-inspect · {visible(title)}"  # a file name, maybe an attacker's

    def get_default_screen(self) -> MainScreen | DiffScreen:  # type: ignore[override]
        return DiffScreen() if self.diff is not None else MainScreen()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # --- data the screens ask for ----------------------------------------
    def param_problem(self, path: str) -> str | None:
        return self.mismatch.problem(path) if self.mismatch else None

    def marked_modules(self) -> set[str]:
        """Modules owning a param that does not match the checkpoint, and their ancestors."""
        if not self.mismatch or self.index is None:
            return set()
        owners = {
            self.index.params[p].module
            for p in (*self.mismatch.missing, *self.mismatch.changed)
            if p in self.index.params
        }
        return self.index.with_ancestors(o for o in owners if o in self.index.modules)

    def param_stats(self, path: str, compute: bool = True) -> tuple[ArrayStats | None, str | None]:
        """``(stats, None)`` for a real param, else ``(None, why not)``. Values are read on first use.

        With ``compute=False``, ``(None, None)`` means the values must still be read and summarised.
        """
        if path in self._stats_cache:
            return self._stats_cache[path], None
        if self._read is None:
            return None, NO_VALUES
        problem = self.param_problem(path)
        if problem:
            return None, f"no statistics: {problem}"
        if not compute:
            return None, None
        try:
            value = self._read(path)
        except KeyError:
            return None, "no value for this param in the given params"
        except Exception as e:  # a damaged file must not take the app down
            return None, f"could not read this param: {type(e).__name__}: {e}"
        if value is None:
            return None, "no value for this param in the given params"
        stats = array_stats(np.asarray(value))
        self._stats_cache[path] = stats
        return stats, None

    def program_lines(self, path: str) -> tuple[str, list[str]] | None:
        """``(title, lines)`` of the module's program text; None while it still has to be computed."""
        if self.hlo_text is not None:
            lines = hlo_lines_for(self.hlo_text, path)
            count = sum("op_name=" in line for line in lines)  # the other lines are computation headers
            return f"optimized HLO inside {path}: {count} instructions", lines
        if self._program is None:
            return "no program text: open a model file (not a checkpoint) to see its jaxpr", []
        if callable(self._program):
            return None
        lines = list(self._program.get(path, []))
        return f"jaxpr equations traced inside {path}: {len(lines)}", lines

    def compute_program_text(self) -> None:
        """Runs a lazy program-text source once (called from a worker thread)."""
        if callable(self._program):
            try:
                self._program = dict(self._program())
            except Exception as e:
                self._program = {}
                message = visible(f"tracing failed: {type(e).__name__}: {e}")
                self.call_from_thread(self.notify, message, severity="error", markup=False)


def _reader(params: ParamValues | None) -> Callable[[str], Any] | None:
    if params is None:
        return None
    if isinstance(params, CheckpointReader):
        return params.read
    if isinstance(params, Mapping):
        return lambda path: _value(params[path])
    return params


def _value(v: Any) -> Any:
    return getattr(v, "value", v)  # bx.Param -> its array


def make_app(
    report: Report | None = None,
    *,
    params: ParamValues | None = None,
    program_text: ProgramText | None = None,
    hlo_text: str | None = None,
    mismatch: CheckpointMismatch | None = None,
    diff: CheckpointDiff | None = None,
    title: str | None = None,
    times: dict[str, float] | None = None,
) -> BloxInspectApp:
    """Builds the terminal browser over finished data; nothing is traced here.

    Args:
        report: the model (or checkpoint) to browse.
        params: real values by param path: a mapping (arrays or ``bx.Param``), a
            :class:`CheckpointReader` (read lazily), or a function of the path.
        program_text: module path -> jaxpr lines, or a function returning that
            mapping, called once in a worker thread when the Program tab first opens.
        hlo_text: optimized HLO text; when given it is sliced per module instead.
        mismatch: how ``params`` differ from the model (highlighted in the tree).
        diff: a checkpoint diff to show instead of a report.
        title: shown in the header (usually the file name).
        times: module path -> measured seconds per step (from ``blox-inspect profile``): a time per tree row.

    Example:
        >>> from blox_inspect.analysis.diff import CheckpointDiff
        >>> app = make_app(diff=CheckpointDiff('a.safetensors', 'b.safetensors'))
        >>> type(app.get_default_screen()).__name__
        'DiffScreen'
    """
    return BloxInspectApp(
        report,
        params=params,
        program_text=program_text,
        hlo_text=hlo_text,
        mismatch=mismatch,
        diff=diff,
        title=title,
        times=times,
    )


def title_for(*files: str) -> str:
    return " vs ".join(os.path.basename(f) for f in files)
