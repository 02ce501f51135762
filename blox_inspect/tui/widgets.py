"""The app's widgets: the lazy module tree, the detail pane, the program pane and the diff table."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Log, Static, Tree
from textual.widgets.tree import TreeNode

from blox_inspect.analysis.diff import CheckpointDiff, ParamDiff
from blox_inspect.analysis.stats import ArrayStats, histogram_bars
from blox_inspect.common.text import ellipsize, visible
from blox_inspect.report.model import ModuleInfo, ParamInfo
from blox_inspect.tui.index import ReportIndex, human, human_bytes, match_positions
from blox_inspect.tui.messages import ModuleChosen, ParamChosen

# Expanding everything stops adding nodes past this many, so a huge model stays responsive.
EXPAND_ALL_LIMIT = 5000
# Tree rows cut longer names in the middle, so a 300-character name leaves room for the numbers.
NAME_WIDTH = 60
# Params with more values than this get their statistics computed in a worker thread.
SYNC_STATS_LIMIT = 1_000_000


def safe(text: object, style: str = "") -> Text:
    r"""Untrusted text (a name, a config, metadata) for a widget: control characters shown, never markup.

    Example:
        >>> safe('net/[bold red]x\x1b]52;c;Zm9v\x07').plain
        'net/[bold red]x\\x1b]52;c;Zm9v\\x07'
    """
    return Text(visible(text), style=style)


def safe_lines(lines: list[str], style: str = "") -> Text:
    r"""Several untrusted strings, one a line (a line break inside one shows as ``\n``).

    Example:
        >>> safe_lines(['note = [/]', 'act = a\nb']).plain
        'note = [/]\nact = a\\nb'
    """
    return Text("\n", style=style).join(safe(line, style) for line in lines)


def _name(shown: str, matched: set[int], style: str) -> Text:
    """A row's name, escaped character by character so search matches stay on the right characters."""
    if not shown.strip():
        return Text(repr(shown), style=style)  # a blank name still shows as something
    if len(shown) > NAME_WIDTH:
        return Text(ellipsize(visible(shown), NAME_WIDTH), style=style)  # the details show it whole
    if not matched:
        return safe(shown, style)
    name = Text(style=style)
    for i, ch in enumerate(shown):
        name.append(visible(ch), "reverse" if i in matched else "")
    return name


def module_label(m: ModuleInfo, *, parent: str | None = None, marked: bool = False, query: str = "") -> Text:
    """One tree row: name, type, params and FLOPs (matches of the search query highlighted).

    The name is the path below ``parent``, so graph nodes that hold no module
    (``h`` in ``transformer/h/0``) still show: the row reads ``h/0``. Names and
    types are untrusted: control characters show as escapes (``\\x1b``).
    """
    shown = m.name or m.path or "·"
    if parent and m.path.startswith(parent + "/"):
        shown = m.path[len(parent) + 1 :]
    elif parent == "" and m.path:
        shown = m.path
    matched: set[int] = set()
    if query and m.path.endswith(shown):
        offset = len(m.path) - len(shown)
        matched = {i - offset for i in match_positions(query, m.path) if i >= offset}
    text = Text.assemble(_name(shown, matched, "bold" if m.children else ""))  # the style stays on the name
    if m.type:
        text.append(f"  {visible(m.type)}", style="cyan")
    if m.params:
        text.append(f"  {human(m.params)}", style="green")
    if m.flops:
        text.append(f"  {human(m.flops, 'FLOPs')}", style="magenta")
    if marked:
        text.append("  ✗", style="bold red")
    return text


class ModuleTree(Tree[str]):
    """The module tree. Children are added only when their parent is first expanded."""

    BINDINGS = [
        Binding("right", "expand_or_enter", "Expand", show=False),
        Binding("left", "collapse_or_parent", "Collapse", show=False),
    ]

    def __init__(self, index: ReportIndex, marked: set[str] | None = None, **kwargs: Any):
        root = index.root
        super().__init__(module_label(root, marked=root.path in (marked or ())), data=root.path, **kwargs)
        self.index = index
        self.marked = marked or set()
        self.sort = "graph"
        self.query = ""
        self.nodes: dict[str, TreeNode[str]] = {}
        self._loaded: set[str] = set()
        self.guide_depth = 3

    def on_mount(self) -> None:
        self.rebuild()

    # --- building ---------------------------------------------------------
    def rebuild(self) -> None:
        """Rebuilds from the root with the current sort and query, keeping the cursor's module."""
        keep = self.cursor_node.data if self.cursor_node is not None else None
        self.clear()
        self.nodes = {self.index.root.path: self.root}
        self._loaded = set()
        self.root.data = self.index.root.path
        if self.query:
            self._build_filtered()
        else:
            self._populate(self.root)
            self.root.expand()
        if self.query:
            # While searching, the best match is selected; with no match the cursor stays at the root.
            keep = next(iter(self.index.search(self.query, 1)), self.index.root.path)
        self.reveal(keep if keep in self.index.modules else self.index.root.path)

    def _add(self, parent: TreeNode[str], m: ModuleInfo) -> TreeNode[str]:
        node = parent.add(
            module_label(m, parent=parent.data, marked=m.path in self.marked, query=self.query),
            data=m.path,
            allow_expand=bool(m.children),
        )
        self.nodes[m.path] = node
        return node

    def _populate(self, node: TreeNode[str]) -> None:
        path = node.data
        if path in self._loaded or self.query:
            return
        self._loaded.add(path)
        for child in self.index.children(path, self.sort):
            self._add(node, child)

    def _build_filtered(self) -> None:
        matches = self.index.search(self.query)
        keep = self.index.with_ancestors(matches)

        def build(node: TreeNode[str]) -> None:
            for child in self.index.children(node.data, self.sort):
                if child.path in keep:
                    build(self._add(node, child))
            node.expand()

        build(self.root)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[str]) -> None:
        self._populate(event.node)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(ModuleChosen(event.node.data))

    # --- commands ---------------------------------------------------------
    def action_expand_or_enter(self) -> None:
        node = self.cursor_node
        if node is None or not node.allow_expand:
            return
        if node.is_expanded and node.children:
            self.move_cursor(node.children[0])
        else:
            node.expand()

    def action_collapse_or_parent(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded and node.children:
            node.collapse()
        elif node.parent is not None:
            self.move_cursor(node.parent)

    def reveal(self, path: str) -> None:
        """Adds and expands the path's ancestors, then moves the cursor onto it."""
        if path not in self.index.modules:
            return
        for ancestor in self.index.ancestors(path):
            node = self.nodes.get(ancestor)
            if node is None:
                return
            self._populate(node)
            node.expand()
        node = self.nodes.get(path)
        if node is not None:
            # Reading last_line rebuilds the tree's line cache now, so the node's line is
            # known and the cursor moves synchronously (the next key sees the new cursor).
            _ = self.last_line
            self.move_cursor(node)
            self.call_after_refresh(self.scroll_to_node, node)

    def expand_everything(self) -> int:
        """Expands every module (up to EXPAND_ALL_LIMIT nodes); returns how many nodes exist."""
        queue = [self.root]
        while queue and len(self.nodes) < EXPAND_ALL_LIMIT:
            node = queue.pop(0)
            self._populate(node)
            node.expand()
            queue.extend(node.children)
        return len(self.nodes)

    def collapse_everything(self) -> None:
        for child in self.root.children:
            child.collapse_all()
        self.move_cursor(self.root)


class DetailPane(VerticalScroll):
    """The selected module: facts, calls, config, its params, and the chosen param's statistics."""

    def compose(self):
        yield Static(id="module-info")
        yield DataTable(id="param-table", cursor_type="row", zebra_stripes=True)
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

    def show_module(self, m: ModuleInfo) -> None:
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
        total_p = report.totals.params or 0
        share = f"  ({m.params / total_p:.1%} of the model)" if total_p else ""
        info.add_row(
            "params",
            f"{m.params:,} total, {m.params_own:,} own, {m.trainable_params:,} trainable, "
            f"{human_bytes(m.param_bytes)}{share}",
        )
        if report.totals.flops or m.flops:
            fshare = f"  ({m.flops / report.totals.flops:.1%} of the model)" if report.totals.flops else ""
            info.add_row("FLOPs", f"{human(m.flops)} total, {human(m.flops_own)} own{fshare}")
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
    """The selected module's slice of the optimized HLO, or of the jaxpr."""

    def compose(self):
        yield Static(id="program-title")
        yield Log(id="program-log", auto_scroll=False)

    def show(self, title: str, lines: list[str]) -> None:
        self.query_one("#program-title", Static).update(safe(title, style="bold"))
        log = self.query_one("#program-log", Log)
        log.clear()
        log.write_lines([visible(line) for line in lines])  # HLO/jaxpr text names modules: untrusted
        log.scroll_home(animate=False)


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


class DiffTable(DataTable):
    """One row per param path of a checkpoint diff."""

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
