"""The app's widgets beside the module tree (``tree.py``): the detail pane, the program pane and the diff table."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Log, Static

from blox_inspect.analysis.diff import CheckpointDiff, ParamDiff
from blox_inspect.analysis.folds import Fold
from blox_inspect.analysis.stats import ArrayStats, histogram_bars
from blox_inspect.common.text import visible
from blox_inspect.common.units import human, human_bytes
from blox_inspect.report.model import ModuleInfo, ParamInfo
from blox_inspect.tui.keys import VimG, vim_bindings
from blox_inspect.tui.messages import ParamChosen
from blox_inspect.tui.text import safe, safe_lines

# Params with more values than this get their statistics computed in a worker thread.
SYNC_STATS_LIMIT = 1_000_000


class ParamTable(VimG, DataTable):
    """The selected module's own params, one row each."""

    BINDINGS = vim_bindings("scroll_top", "scroll_bottom")


class DetailPane(VerticalScroll):
    """The selected module: facts, calls, config, its params, and the chosen param's statistics."""

    def compose(self):
        yield Static(id="module-info")
        yield ParamTable(id="param-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="param-stats")

    def on_mount(self) -> None:
        table = self.query_one("#param-table", DataTable)
        for label in ("param", "shape", "dtype", "trainable", "bytes", "metadata"):
            table.add_column(label, key=label)

    @property
    def app_data(self) -> Any:  # the BloxInspectApp
        return self.app  # type: ignore[return-value]

    shown: str | None = None  # path of the module on display
    shown_param: str | None = None

    def show_module(self, m: ModuleInfo, fold: Fold | None = None) -> None:
        """Shows module ``m``; on a folded row, ``m`` is the fold's first block and ``fold`` says so."""
        self.shown = m.path
        app = self.app_data
        report, index = app.report, app.index
        info = Table.grid(padding=(0, 2))
        info.add_column(style="bold", no_wrap=True)
        info.add_column()
        title = safe(m.path or m.name, style="bold")
        if m.type:
            title.append(f"  {visible(m.type)}", style="cyan")
        info.add_row("module", title)
        if fold is not None:
            params, flops = index.total(fold, "params"), index.total(fold, "flops")
            together = f"{human(params)} params" + (f", {human(flops, 'FLOP')}" if flops else "")
            what = f"{fold.label}: {len(fold.members)} identical blocks, {together} together; below, the first one"
            info.add_row(Text("folded", style="bold yellow"), safe(what))
        total_p = report.totals.params or 0
        share = f"  ({m.params / total_p:.1%} of the model)" if total_p else ""
        info.add_row(
            "params",
            f"{m.params:,} total, {m.params_own:,} own, {m.trainable_params:,} trainable, "
            f"{human_bytes(m.param_bytes)}{share}",
        )
        if report.totals.flops or m.flops:
            fshare = f"  ({m.flops / report.totals.flops:.1%} of the model)" if report.totals.flops else ""
            info.add_row("FLOPs", f"{human(m.flops, si=True)} total, {human(m.flops_own, si=True)} own{fshare}")
        if m.shared:
            info.add_row("shared", "called from more than one place; its params are counted once")
        if m.config:
            info.add_row("config", safe_lines([f"{k} = {v}" for k, v in m.config.items()]))
        for i, call in enumerate(m.call_info, 1):
            shapes = f"{', '.join(map(str, call.inputs)) or '()'} → {', '.join(map(str, call.outputs)) or '()'}"
            where = f"  from {call.caller}" if call.caller else ""
            info.add_row(f"call {i}" if len(m.call_info) > 1 else "call", safe(f"{call.method}: {shapes}{where}"))
        if not m.call_info and report.notes:
            info.add_row("note", safe("; ".join(report.notes)))
        problems = [(p.path, app.param_problem(p.path)) for p in index.own_params.get(m.path, [])]
        problems = [(p, why) for p, why in problems if why]
        if problems:
            info.add_row(
                Text("mismatch", style="bold red"), safe_lines([f"{p}: {w}" for p, w in problems], style="red")
            )
        self.query_one("#module-info", Static).update(info)

        table = self.query_one("#param-table", DataTable)
        table.clear()
        own = index.own_params.get(m.path, [])
        for p in own:
            meta = ", ".join(f"{k}={v}" for k, v in p.metadata.items())
            # Cells are Text: a plain string cell would be read as markup.
            table.add_row(
                safe(p.name, style="bold red" if app.param_problem(p.path) else ""),
                "×".join(map(str, p.shape)) or "scalar",
                safe(p.dtype),
                "yes" if p.trainable else "no",
                human_bytes(p.bytes),
                safe(meta),
                key=p.path,
            )
        table.display = bool(own)
        if own:
            self.show_param(own[0])
        else:
            self.query_one("#param-stats", Static).update(Text("no params of its own", style="dim"))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        # An arrow key in an emptied table moves its cursor to row -1, which Textual announces with no key.
        path = event.row_key.value if event.row_key is not None else None
        # A highlight queued by an earlier module's table may arrive after the cursor moved on.
        if path is not None and self.app_data.index.params[path].module == self.shown:
            self.post_message(ParamChosen(path))

    def show_param(self, p: ParamInfo) -> None:
        app = self.app_data
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        grid.add_row("param", safe(p.path, style="bold"))
        shape = f"{p.dtype}[{','.join(map(str, p.shape))}]  {p.size:,} values, {human_bytes(p.bytes)}"
        grid.add_row("shape", safe(shape))
        grid.add_row("trainable", "yes" if p.trainable else "no")
        for k, v in p.metadata.items():
            grid.add_row(safe(k), safe(v))
        problem = app.param_problem(p.path)
        if problem:
            grid.add_row(Text("mismatch", style="bold red"), safe(problem, style="red"))
        parts: list[Any] = [grid]
        self.shown_param = p.path
        stats, why = app.param_stats(p.path, compute=p.size <= SYNC_STATS_LIMIT)
        if stats is not None:
            parts.append(stats_table(stats))
        elif why:
            parts.append(safe(why, style="dim"))  # may quote names and dtypes
        else:
            parts.append(Text(f"reading {human_bytes(p.bytes)} and computing statistics …", style="dim"))
            self._compute_stats(p)
        self.query_one("#param-stats", Static).update(Group(*parts))

    @work(thread=True, exclusive=True, group="stats")
    def _compute_stats(self, p: ParamInfo) -> None:
        # Big tensors are read and summarised off the UI thread, so the tree stays responsive.
        self.app_data.param_stats(p.path)
        self.app.call_from_thread(self._stats_ready, p)

    def _stats_ready(self, p: ParamInfo) -> None:
        if self.shown_param == p.path:
            self.show_param(p)


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.6g}"


def stats_table(s: ArrayStats, height: int = 3) -> Table:
    """Statistics of one array with a small block-character histogram."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("mean", f"{_num(s.mean)}   std {_num(s.std)}")
    grid.add_row("min", f"{_num(s.min)}   max {_num(s.max)}")
    grid.add_row("L2 norm", _num(s.l2))
    special = Text(f"{s.zeros:,} zeros   ")
    special.append(f"{s.nans:,} NaN", style="bold red" if s.nans else "")
    special.append("   ")
    special.append(f"{s.infs:,} inf", style="bold red" if s.infs else "")
    grid.add_row("counts", special)
    if s.hist_counts:
        bars = histogram_bars(s.hist_counts, height)
        body = Text("\n".join(bars), style="blue")
        axis = f"{_num(s.hist_edges[0])}".ljust(len(bars[0]) - len(_num(s.hist_edges[-1]))) + _num(s.hist_edges[-1])
        body.append("\n" + axis, style="dim")
        grid.add_row("histogram", body)
    return grid


class ProgramPane(VerticalScroll):
    """The selected module's slice of the optimized HLO, or of the jaxpr: long lines scroll sideways or wrap."""

    wrap = False
    _lines: list[str] = []

    def compose(self):
        yield Static(id="program-title")
        yield Log(id="program-log", auto_scroll=False)

    def show(self, title: str, lines: list[str]) -> None:
        self.query_one("#program-title", Static).update(safe(title, style="bold"))
        self._lines = [visible(line) for line in lines]  # HLO/jaxpr text names modules: untrusted
        self._write()

    def toggle_wrap(self) -> bool:
        self.wrap = not self.wrap
        self._write()
        return self.wrap

    def on_resize(self) -> None:
        if self.wrap:
            self._write()

    def _write(self) -> None:
        log = self.query_one("#program-log", Log)
        width = log.scrollable_content_region.width or self.size.width
        log.clear()
        log.write_lines(wrapped(self._lines, width) if self.wrap else self._lines)
        log.scroll_home(animate=False)


def wrapped(lines: list[str], width: int, mark: str = "↪ ") -> list[str]:
    """Lines cut to ``width`` characters; continuations start with ``mark``.

    Example:
        >>> wrapped(['a = add b c', 'ok'], 6)
        ['a = ad', '↪ d b ', '↪ c', 'ok']
    """
    out = []
    step = max(width - len(mark), 1)
    for line in lines:
        out.append(line[:width])
        out.extend(mark + line[i : i + step] for i in range(width, len(line), step))
    return out


DIFF_SORTS = ("status", "path", "max_abs", "rel_norm")
DIFF_SORT_LABELS = {"path": "path", "status": "status", "max_abs": "max |Δ| ↓", "rel_norm": "rel. Δ norm ↓"}
_STATUS_STYLE = {
    "added": "green",
    "removed": "red",
    "shape": "bold yellow",
    "dtype": "yellow",
    "changed": "cyan",
    "unchanged": "dim",
}


def _shape(shape: list[int] | None, dtype: str | None) -> Text:
    return Text("–") if shape is None else safe(f"{dtype}[{','.join(map(str, shape))}]")


def sorted_diff(diff: CheckpointDiff, sort: str, hide_unchanged: bool) -> list[ParamDiff]:
    rows = [p for p in diff.params if not (hide_unchanged and p.status == "unchanged")]
    if sort == "status":
        order = {"added": 0, "removed": 1, "shape": 2, "dtype": 3, "changed": 4, "unchanged": 5}
        rows.sort(key=lambda p: (order[p.status], p.path))
    elif sort in ("max_abs", "rel_norm"):
        rows.sort(key=lambda p: (-(getattr(p, sort) if getattr(p, sort) is not None else -1.0), p.path))
    else:
        rows.sort(key=lambda p: p.path)
    return rows


class DiffTable(VimG, DataTable):
    """One row per param path of a checkpoint diff."""

    BINDINGS = vim_bindings("scroll_top", "scroll_bottom")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for label in ("path", "status", "a", "b", "max |Δ|", "rel. Δ norm"):
            self.add_column(label, key=label)

    def show(self, rows: list[ParamDiff]) -> None:
        self.clear()
        for p in rows:
            status = p.status if not p.nan_changed else f"{p.status} ({p.nan_changed} NaN/inf)"
            self.add_row(
                safe(p.path),  # Text, not str: a str cell is read as markup
                Text(status, style=_STATUS_STYLE[p.status]),
                _shape(p.shape_a, p.dtype_a),
                _shape(p.shape_b, p.dtype_b),
                _num(p.max_abs),
                "–" if p.rel_norm is None else f"{p.rel_norm:.3e}",
                key=p.path,
            )
