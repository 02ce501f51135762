"""The TUI survives anything the keyboard sends (issue #12): the command palette and a random-key soak."""

import asyncio

from textual.command import CommandPalette
from tui_pilot import post_keys
from tui_reports import gpt_report

from blox_inspect.tui import make_app

SIZE = (120, 40)


async def test_ctrl_p_opens_no_command_palette_and_fast_keys_never_crash():
    # Regression: Textual's palette raised KeyError: 0 when PageDown reached its option list after the
    # search refilled it but before the list was laid out again (`\` matches nothing, backspace matches
    # everything). The palette only offered Textual's own commands, so it is disabled; ? lists our keys.
    app = make_app(gpt_report(2))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        assert not isinstance(app.screen, CommandPalette)
        for gap in range(16):  # how long the app runs between backspace and PageDown: the race's window
            await pilot.press("backslash")
            await app.workers.wait_for_complete()
            await pilot.pause()
            post_keys(app, "backspace")
            for _ in range(gap):
                await asyncio.sleep(0)
            post_keys(app, "pagedown", "pageup")
            await pilot.pause()
    # run_test re-raises whatever the app raised meanwhile
