"""Untrusted text in the TUI (issues #11, #12): names, types, configs, dtypes, metadata and notes from model
files, checkpoints and saved reports are shown escaped, never sent to the terminal or read as markup.

Each screen is driven to show every hostile string and its screenshot is checked: the escaped form
(``blox_inspect.common.text.visible``) is on screen, markup shows literally, and no raw control character
(ESC, BEL, CR, a bidi override) is anywhere in what Textual drew.
"""

import re

import numpy as np
import pytest
from rich.text import Text
from safetensors.numpy import save_file
from textual.widgets import DataTable, TabbedContent
from tui_pilot import screenshot_lines, settle, tree
from tui_reports import (
    HOSTILE_CONFIG,
    HOSTILE_DTYPE,
    HOSTILE_NAMES,
    HOSTILE_NOTE,
    OSC52,
    hostile_params,
    hostile_report,
)

import blox as bx
from blox_inspect.analysis.diff import diff_checkpoints
from blox_inspect.common.text import visible
from blox_inspect.load.checkpoints import CheckpointReader, match_checkpoint, report_from_checkpoint
from blox_inspect.tui import make_app

SIZE = (160, 50)
RAW = ["\x1b", "\x07", "\r", "\u202e", "\u200b"]
TITLE = "evil" + OSC52 + "[/].safetensors"


def shown(name: str) -> str:
    """How a hostile name starts on screen: escaped (a tree row keeps the first 30 of a long name's characters)."""
    return visible(name)[:29]


def assert_safe(svg: str, lines: list[str]) -> str:
    for ch in RAW:
        assert ch not in svg, f"raw {ch!r} reached the screen"
    return "\n".join(lines)


async def assert_metadata_shown(pilot) -> None:
    """The kernel's metadata, literally, in the params table (often scrolled off to the right) and its details."""
    app = pilot.app
    table = app.screen.query_one("#param-table", DataTable)
    row = next(i for i, k in enumerate(table.rows) if k.value.endswith("/kernel"))
    kernel = table.get_row_at(row)
    assert isinstance(kernel[5], Text)  # a str cell would be parsed as markup
    assert kernel[5].plain == "sharding=[/], [bold red]key=[reverse]value" + visible(OSC52)
    table.move_cursor(row=row)
    await settle(pilot)
    screen = assert_safe(*screenshot_lines(app))
    assert re.search(r"sharding +\[/\]", screen)
    assert "[bold red]key  [reverse]value" + visible(OSC52) in screen


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A bx.save checkpoint of the hostile report (names and metadata) and a foreign one (safetensors)."""
    tmp = tmp_path_factory.mktemp("hostile")
    report = hostile_report()
    bx.save(tmp / "ours.safetensors", hostile_params(report))
    foreign = {"/".join(("net", name, "w")): np.ones((2,), np.float32) for name in HOSTILE_NAMES[:-2]}
    foreign["net/[/]/kernel"] = np.zeros((3, 3), np.float32)
    save_file(foreign, str(tmp / "foreign.safetensors"))
    return report, tmp / "ours.safetensors", tmp / "foreign.safetensors"


async def test_model_browser_shows_hostile_text_escaped(files):
    report, ours, _ = files
    reader = CheckpointReader(ours)
    program = {m.path: [f"a:f32[3] = add b c  # from {m.path}"] for m in report.modules}
    app = make_app(report, params=reader, mismatch=match_checkpoint(report, reader), program_text=program, title=TITLE)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = assert_safe(*screenshot_lines(app))
        assert visible(TITLE) in screen  # the header
        assert "✗ checkpoint does not match the model" in screen
        for name in HOSTILE_NAMES:
            assert shown(name) in screen, name  # every tree row
        assert "Linear" + visible(OSC52) in screen
        tree(app).reveal("net")
        await settle(pilot)
        assert f"layers = {HOSTILE_CONFIG}" in assert_safe(*screenshot_lines(app))  # not "layers = "
        for name in HOSTILE_NAMES:
            path = bx.path_str(("net", name))
            tree(app).reveal(path)
            await settle(pilot)
            screen = assert_safe(*screenshot_lines(app))
            assert f"{visible(path)[:40]}" in screen, name  # the details' title
            assert "note = [/]\n" in screen and "act = [reverse]relu\n" in screen  # one config entry a line
            assert f"__call__: {visible(HOSTILE_DTYPE)}[2,3]" in screen  # call shapes, with the dtype
            assert visible(HOSTILE_DTYPE) in screen  # the params table and the param's details
            await assert_metadata_shown(pilot)
            assert "mismatch" in screen
        tree(app).reveal("net/quiet")
        await settle(pilot)
        assert visible(HOSTILE_NOTE) in assert_safe(*screenshot_lines(app))
        # the program pane
        first = bx.path_str(("net", HOSTILE_NAMES[0]))
        tree(app).reveal(first)
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert app.screen.query_one(TabbedContent).active == "tab-program"
        assert f"# from {visible(first)}" in assert_safe(*screenshot_lines(app))
        # notifications read no markup (a [/] in a name was a MarkupError), and y copies the escaped path
        for path in (first, "net/[\\/]"):
            tree(app).reveal(path)
            await settle(pilot)
            await pilot.press("y")
            assert app.clipboard == visible(path)
            assert list(app._notifications)[-1].message == f"copied {visible(path)}"
        await pilot.press("g")
        assert_safe(*screenshot_lines(app))


async def test_checkpoint_browser_shows_hostile_text_escaped(files):
    _, ours, _ = files
    reader = CheckpointReader(ours)
    app = make_app(report_from_checkpoint(reader), params=reader, title=TITLE)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = assert_safe(*screenshot_lines(app))
        for name in HOSTILE_NAMES:
            assert shown(name) in screen, name
        for name in HOSTILE_NAMES:
            tree(app).reveal(bx.path_str(("net", name)))
            await settle(pilot)
            screen = assert_safe(*screenshot_lines(app))
            await assert_metadata_shown(pilot)
            assert "mean" in screen  # the statistics of the first param were read and shown


async def test_diff_shows_hostile_text_escaped(files, monkeypatch):
    _, ours, foreign = files
    monkeypatch.chdir(ours.parent)
    app = make_app(diff=diff_checkpoints(ours.name, foreign.name), title=TITLE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")  # sorted by path: every hostile name is in view
        screen = assert_safe(*screenshot_lines(app))
        assert "a: ours.safetensors   b: foreign.safetensors" in screen
        for name in HOSTILE_NAMES[:-3]:  # the last ones sort below the screen's edge
            assert "net/" + visible(name)[:30] in screen, name
        assert "net/[\\/]/kernel" in screen
        await pilot.press("u", "y")
        assert OSC52 not in app.clipboard
