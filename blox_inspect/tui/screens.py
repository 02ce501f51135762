"""The app's screens: the model browser, the checkpoint diff, and the help screen."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, Input, Static, TabbedContent, TabPane, Tabs

from blox_inspect.common.text import visible
from blox_inspect.common.units import human, human_bytes
from blox_inspect.tui.index import SORT_LABELS, SORTS
from blox_inspect.tui.messages import ModuleChosen, ParamChosen
from blox_inspect.tui.text import safe
from blox_inspect.tui.tree import ModuleTree
from blox_inspect.tui.widgets import DIFF_SORT_LABELS, DIFF_SORTS, DetailPane, DiffTable, ProgramPane, sorted_diff

MIN_WIDTH, MIN_HEIGHT = 60, 12
TOO_SMALL = (
    "The terminal is too small for blox-inspect: it needs at least {w}×{h} characters, "
    "this one is {cw}×{ch}. Enlarge the window (or shrink the font); q quits."
)

# Keys that belong to the widgets themselves (the tree, tables, tabs), listed on the help screen.
NAVIGATION_KEYS = [
    ("↑ ↓ / j k / mouse wheel", "move through the tree or a table"),
    ("→ ← / l h / space / click", "expand or collapse the module (or ×N row) under the cursor"),
    ("gg / G, home / end", "go to the first / last row"),
    ("shift+←", "go to the parent module"),
    ("enter", "in the search box: go to the tree"),
    ("tab / shift+tab", "move between the tree, the params table and the program text"),
]


class SizeGuard:
    """Hides a screen's layout behind a clear message while the terminal is too small."""

    def check_size(self: Screen) -> None:  # type: ignore[misc]
        w, h = self.app.size
        small = w < MIN_WIDTH or h < MIN_HEIGHT
        self.set_class(small, "-too-small")
        if small:
            self.query_one("#too-small", Static).update(TOO_SMALL.format(w=MIN_WIDTH, h=MIN_HEIGHT, cw=w, ch=h))

    def on_resize(self) -> None:
        self.check_size()

    def on_screen_resume(self) -> None:
        self.check_size()


class MainScreen(SizeGuard, Screen):
    """Module tree on the left; details or program text of the selected module on the right."""

    BINDINGS = [
        Binding("slash", "search", "Search", key_display="/", tooltip="filter the tree by fuzzy module path"),
        Binding("s", "cycle_sort", "Sort", tooltip="sort children: graph order → params → FLOPs"),
        Binding(
            "L",
            "largest",
            "Largest",
            tooltip="jump to the module with the most own params (FLOPs when sorted by FLOPs)",
        ),
        Binding("e", "expand_all", "Expand all", tooltip="expand every module"),
        Binding("c", "collapse_all", "Collapse all", tooltip="collapse the tree to the top level"),
        Binding("y", "copy_path", "Copy path", tooltip="copy the selected module's path to the clipboard"),
        Binding("p", "toggle_program", "Program", tooltip="switch between details and the module's HLO/jaxpr"),
        Binding("w", "toggle_wrap", "Wrap", tooltip="wrap long program lines, or scroll them sideways (← →)"),
        Binding("escape", "clear_search", "Clear search", show=False, tooltip="clear the search, show the whole tree"),
    ]

    @property
    def bapp(self) -> Any:  # the BloxInspectApp
        return self.app  # type: ignore[return-value]

    def compose(self):
        app = self.bapp
        yield Header()
        yield Input(placeholder="fuzzy search module paths — Enter: go to tree, Esc: clear", id="search")
        banner = Static(id="banner")
        if app.mismatch:
            banner.update(safe(f"✗ checkpoint does not match the model: {app.mismatch.summary()}", style="bold"))
        else:
            banner.display = False
        yield banner
        with Horizontal(id="body"):
            yield ModuleTree(app.index, marked=app.marked_modules(), id="tree")
            with TabbedContent(id="tabs"):
                with TabPane("Details", id="tab-details"):
                    yield DetailPane(id="details")
                with TabPane("Program", id="tab-program"):
                    yield ProgramPane(id="program")
        yield Static(id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self._subtitle()
        # Tab goes tree -> params table -> program text: the tab strip and the scrolling
        # detail container are reached with p and the mouse instead.
        self.query_one(TabbedContent).query_one(Tabs).can_focus = False
        self.query_one(DetailPane).can_focus = False
        self.query_one(ModuleTree).focus()
        self.check_size()

    def _subtitle(self) -> str:
        t = self.bapp.report.totals
        parts = [f"{human(t.params)} params", human_bytes(t.param_bytes)]
        if t.flops:
            parts.append(human(t.flops, "FLOP"))
        parts.append(f"sort: {SORT_LABELS[self.tree.sort]}")
        return " · ".join(parts)

    @property
    def tree(self) -> ModuleTree:
        return self.query_one(ModuleTree)

    @property
    def current(self) -> str:
        return self.tree.cursor_path

    # --- messages ---------------------------------------------------------
    @on(ModuleChosen)
    def _module_chosen(self, message: ModuleChosen) -> None:
        details = self.query_one(DetailPane)
        details.show_module(self.bapp.index.modules[message.path], fold=message.fold)
        table = details.query_one("#param-table", DataTable)
        if table.has_focus and not table.display:
            self.tree.focus()  # the module owns no params: keys go back to the tree, not a hidden table
        if self.query_one(TabbedContent).active == "tab-program":
            self.show_program()

    @on(ParamChosen)
    def _param_chosen(self, message: ParamChosen) -> None:
        details = self.query_one(DetailPane)
        param = self.bapp.index.params[message.path]
        if param.module == details.shown:
            details.show_param(param)

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.tree.set_query(event.value.strip())

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self.tree.focus()

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "tab-program":
            self.show_program()

    # --- actions ----------------------------------------------------------
    def action_search(self) -> None:
        self.add_class("-searching")
        self.query_one("#search", Input).focus()

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        self.remove_class("-searching")
        if search.value:
            search.value = ""  # Input.Changed rebuilds the unfiltered tree
        self.tree.focus()

    def action_cycle_sort(self) -> None:
        tree = self.tree
        tree.sort = SORTS[(SORTS.index(tree.sort) + 1) % len(SORTS)]
        tree.rebuild()
        self.sub_title = self._subtitle()
        self.notify(f"children sorted by {SORT_LABELS[tree.sort]}")

    def action_largest(self) -> None:
        by = "flops" if self.tree.sort == "flops" else "params"
        m = self.bapp.index.largest(by)
        self.tree.reveal(m.path)
        self.notify(f"largest module by own {'FLOPs' if by == 'flops' else 'params'}: {visible(m.path)}", markup=False)

    def action_expand_all(self) -> None:
        n = self.tree.expand_everything()
        if n < len(self.bapp.index.modules):
            self.notify(f"expanded the first {n:,} of {len(self.bapp.index.modules):,} modules", severity="warning")

    def action_collapse_all(self) -> None:
        self.tree.collapse_everything()

    def action_copy_path(self) -> None:
        # What is copied is what the screen shows: a name's control characters stay escaped.
        path = visible(self.current)
        self.app.copy_to_clipboard(path)
        self.notify(f"copied {path}", markup=False)

    def action_toggle_wrap(self) -> None:
        wrap = self.query_one(ProgramPane).toggle_wrap()
        self.notify("program lines wrap" if wrap else "program lines scroll sideways (← → in the program text)")

    def action_toggle_program(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "tab-details" if tabs.active == "tab-program" else "tab-program"

    # --- program text -----------------------------------------------------
    def show_program(self) -> None:
        path = self.current
        result = self.bapp.program_lines(path)
        pane = self.query_one(ProgramPane)
        if result is None:
            pane.show(f"tracing the model for {path} …", [])
            self._compute_program()
            return
        title, lines = result
        pane.show(title, lines)

    @work(thread=True, exclusive=True, group="program")
    def _compute_program(self) -> None:
        self.bapp.compute_program_text()
        self.app.call_from_thread(self.show_program)


class DiffScreen(SizeGuard, Screen):
    """Two checkpoints side by side: one row per param path."""

    BINDINGS = [
        Binding("s", "cycle_sort", "Sort", tooltip="sort rows: status → path → max |Δ| → relative Δ norm"),
        Binding("u", "toggle_unchanged", "Hide unchanged", tooltip="hide or show params whose values are identical"),
        Binding("y", "copy_path", "Copy path", tooltip="copy the selected param's path to the clipboard"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort = "status"
        self.hide_unchanged = False

    def compose(self):
        yield Header()
        yield Static(id="diff-summary")
        yield DiffTable(id="diff-table")
        yield Static(id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_rows()
        self.query_one(DiffTable).focus()
        self.check_size()

    def refresh_rows(self) -> None:
        diff = self.app.diff  # type: ignore[attr-defined]
        rows = sorted_diff(diff, self.sort, self.hide_unchanged)
        self.query_one(DiffTable).show(rows)
        counts = ", ".join(f"{n} {k}" for k, n in diff.counts().items() if n)
        hidden = " · unchanged hidden" if self.hide_unchanged else ""
        self.query_one("#diff-summary", Static).update(
            Text.assemble(
                ("a: ", "bold"),
                visible(diff.a),
                ("   b: ", "bold"),
                visible(diff.b),
                "\n",
                f"{len(diff.params)} paths: {counts or 'none'} · sort: {DIFF_SORT_LABELS[self.sort]}{hidden}",
            )
        )

    def action_cycle_sort(self) -> None:
        self.sort = DIFF_SORTS[(DIFF_SORTS.index(self.sort) + 1) % len(DIFF_SORTS)]
        self.refresh_rows()

    def action_toggle_unchanged(self) -> None:
        self.hide_unchanged = not self.hide_unchanged
        self.refresh_rows()

    def action_copy_path(self) -> None:
        table = self.query_one(DiffTable)
        if not table.is_valid_coordinate(table.cursor_coordinate):
            return  # no rows (all hidden), or the cursor moved up from an empty table
        path = visible(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        self.app.copy_to_clipboard(path)
        self.notify(f"copied {path}", markup=False)


def help_table(app_bindings: list) -> Table:
    """Every key of the app: generated from the bindings, so it never drifts from them."""
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("what it does")
    sections = [
        ("Everywhere", app_bindings),
        ("Model browser", MainScreen.BINDINGS),
        ("Checkpoint diff", DiffScreen.BINDINGS),
    ]
    for title, bindings in sections:
        table.add_row(Text(title, style="bold underline"), "")
        for b in bindings:
            table.add_row(b.key_display or b.key, b.tooltip or b.description)
    table.add_row(Text("Navigation", style="bold underline"), "")
    for key, what in NAVIGATION_KEYS:
        table.add_row(key, what)
    return table


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close help", tooltip="close this screen")]

    def compose(self):
        with VerticalScroll(id="help-box"):
            yield Static(Text("blox-inspect tui — keys", style="bold"), id="help-title")
            yield Static(help_table(self.app.BINDINGS), id="help-keys")
            yield Static(Text("Esc, ? or q closes this screen.", style="dim"))

    def action_dismiss(self) -> None:
        self.dismiss()
