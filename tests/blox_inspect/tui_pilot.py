"""Helpers for driving the TUI with Pilot in tests."""

from __future__ import annotations

import io

from rich.console import Console
from textual.widgets import DataTable, Static

from blox_inspect.tui.screens import MainScreen
from blox_inspect.tui.widgets import DetailPane, ModuleTree


def text(widget: Static) -> str:
    """The plain text a Static shows."""
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(widget.content)
    return console.file.getvalue()


def tree(app) -> ModuleTree:
    return app.screen.query_one(ModuleTree)


def cursor(app) -> str:
    return tree(app).cursor_node.data


async def settle(pilot) -> None:
    """Waits until the details show the module under the tree's cursor and the params table's row.

    A highlight travels as messages from widget to widget, so one pause may not be enough on a busy machine.
    """
    app = pilot.app
    for _ in range(300):
        await pilot.pause()
        if not isinstance(app.screen, MainScreen):
            return
        details = app.screen.query_one(DetailPane)
        table = app.screen.query_one("#param-table", DataTable)
        row = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value if table.row_count else None
        if details.shown == cursor(app) and (row is None or details.shown_param == row):
            return
        await pilot.pause(0.01)
