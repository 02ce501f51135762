"""Helpers for driving the TUI with Pilot in tests."""

from __future__ import annotations

import html
import io
import re
import unicodedata

from rich.console import Console
from textual import events
from textual.keys import KEY_NAME_REPLACEMENTS, key_to_character
from textual.widgets import DataTable, Static

from blox_inspect.tui.screens import MainScreen
from blox_inspect.tui.tree import ModuleTree
from blox_inspect.tui.widgets import DetailPane


def text(widget: Static) -> str:
    """The plain text a Static shows."""
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(widget.content)
    return console.file.getvalue()


def cell(table: DataTable, row: int, column: int) -> str:
    """The text of one table cell (cells holding untrusted text are ``rich.text.Text``)."""
    return str(table.get_row_at(row)[column])


def tree(app) -> ModuleTree:
    return app.screen.query_one(ModuleTree)


def cursor(app) -> str:
    """The module under the tree's cursor (a folded row's first block)."""
    return tree(app).cursor_path


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
        valid = table.is_valid_coordinate(table.cursor_coordinate)
        row = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value if valid else None
        if details.shown == cursor(app) and (row is None or details.shown_param == row):
            return
        await pilot.pause(0.01)


def post_keys(app, *keys: str) -> None:
    """Queues key presses without waiting for the app between them, as a fast typist or a paste does.

    ``pilot.press`` lets the app go idle after every key, which hides races a real terminal hits.
    """
    for key in keys:
        app.post_message(events.Key(key, key_to_character(key)))


def key_name(ch: str) -> str:
    """Textual's name for the key that types ``ch`` (``/`` -> ``slash``), as bindings spell it."""
    if ch.isalnum():
        return ch
    name = unicodedata.name(ch).lower().replace("-", "_").replace(" ", "_")
    return KEY_NAME_REPLACEMENTS.get(name, name)


_SVG_CELL_WIDTH = 12.2  # the x step of one terminal cell in Rich's SVG export
_SVG_TEXT = re.compile(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', re.S)


def screenshot_lines(app) -> tuple[str, list[str]]:
    """The screen as Textual would draw it: ``(raw SVG, one string per screen row)``.

    Control characters that reached the screen are still in the SVG, so a test can look for them.
    """
    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in _SVG_TEXT.finditer(svg):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), html.unescape(m.group(3))))
    lines = []
    for _, cells in sorted(rows.items()):
        line = ""
        for x, t in sorted(cells):
            line = line.ljust(round(x / _SVG_CELL_WIDTH)) + t.replace("\xa0", " ").rstrip("\n")
        lines.append(line.rstrip())
    return svg, lines
