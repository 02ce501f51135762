"""The TUI survives anything the keyboard sends (issue #12): the command palette and a random-key soak.

The soak drives the model browser, a checkpoint browser and the checkpoint diff with a few thousand
random keys (fixed seeds), sent in bursts without waiting in between as a fast typist or a paste
does, with the terminal resized now and then. ``q`` quits, so the app is opened again when it does.
"""

import asyncio
import random
import string

import numpy as np
import pytest
from safetensors.numpy import save_file
from textual.command import CommandPalette
from tui_pilot import cursor, key_name, post_keys, settle
from tui_reports import HOSTILE_NAMES, gpt_params, gpt_report

from blox_inspect.analysis.diff import diff_checkpoints
from blox_inspect.load.checkpoints import CheckpointReader, report_from_checkpoint
from blox_inspect.tui import make_app
from blox_inspect.tui.screens import MainScreen
from blox_inspect.tui.tree import ModuleTree
from blox_inspect.tui.widgets import DetailPane

SIZE = (120, 40)
SOAK_SIZE = (80, 24)  # small enough to render fast, large enough for the whole layout
SEEDS = (0, 1, 2)
KEYS_PER_SEED = 270  # 3 screens x 3 seeds x 270: 2,430 keys

PRINTABLE = [key_name(c) for c in string.ascii_letters + string.digits + string.punctuation + " "]
NAMED = [
    *("up", "down", "left", "right", "pageup", "pagedown", "home", "end", "enter", "escape"),
    *("backspace", "delete", "shift+left", "shift+right", "shift+up", "shift+down"),
]
# Each focus change rebuilds Textual's footer (a few hundred ms here), so tab is rarer than the rest.
FOCUS = ["tab", "shift+tab"]
CTRL = [f"ctrl+{c}" for c in string.ascii_lowercase if c != "q"]  # ctrl+q quits at once: not worth reopening


def random_keys(rng: random.Random, n: int) -> list[str]:
    pools = rng.choices([PRINTABLE, NAMED, FOCUS, CTRL], weights=[50, 40, 2, 8], k=n)
    return [rng.choice(pool) for pool in pools]


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


async def test_keys_reaching_the_params_table_as_it_empties_never_crash():
    # Regression (found by the soak): c moved the cursor to the root, which owns no params, so the
    # params table was emptied and hidden; a PageDown reaching it before focus left it set its cursor
    # to row -1, and Textual announced that row as highlighted with no row key.
    app = make_app(gpt_report(2))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for gap in range(12):
            app.screen.query_one(ModuleTree).reveal("gpt/embed")  # one param
            await settle(pilot)
            app.screen.query_one("#param-table").focus()
            post_keys(app, "c")
            for _ in range(gap):
                await asyncio.sleep(0)
            post_keys(app, "pagedown", "up")
            await settle(pilot)
            # keys after the table hid went to the tree (its cursor moved on from gpt), and the details followed
            assert app.screen.query_one(DetailPane).shown == cursor(app)


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    """Factories of the three screens, over a small GPT-style model and checkpoints written by safetensors."""
    report = gpt_report(3, block="{}")  # blocks 0..2 fold into one ×3 row
    params = gpt_params(report)
    tmp = tmp_path_factory.mktemp("soak")
    a = {p.path: np.asarray(params[p.path].value) for p in report.params}
    b = dict(a, **{"gpt/head/bias": a["gpt/head/bias"] + 1.0, "gpt/extra/w": np.ones(3, np.float32)})
    del b["gpt/embed/embedding"]
    b["gpt/head/kernel"] = np.zeros((8, 10), np.float32)  # another shape
    for name in HOSTILE_NAMES:  # names with markup and control characters, in every screen's rows
        b[f"gpt/{name}/w"] = np.ones(2, np.float32)
    save_file(a, str(tmp / "a.safetensors"))
    save_file(b, str(tmp / "b.safetensors"), metadata={"format": "np"})
    program = {m.path: [f"x{i}:f32[2,16,8] = add a b  " + "c " * 80 for i in range(3)] for m in report.modules}

    def model():
        return make_app(report, params=params, program_text=lambda: program, title="gpt.py")

    def checkpoint():
        reader = CheckpointReader(tmp / "b.safetensors")
        return make_app(report_from_checkpoint(reader), params=reader, title="b.safetensors")

    def diff():
        return make_app(diff=diff_checkpoints(tmp / "a.safetensors", tmp / "b.safetensors"), title="a vs b")

    return {"model": model, "checkpoint": checkpoint, "diff": diff}


@pytest.mark.parametrize("screen", ["model", "checkpoint", "diff"])
async def test_random_keys_never_crash(apps, screen):
    opened = 0
    for seed in SEEDS:
        rng = random.Random(seed)
        keys = random_keys(rng, KEYS_PER_SEED)
        while keys:
            app = apps[screen]()
            opened += 1
            async with app.run_test(size=SOAK_SIZE) as pilot:
                while keys and app.is_running:
                    burst = keys[: rng.randint(1, 16)]
                    keys = keys[len(burst) :]
                    if rng.random() < 0.02:
                        await pilot.resize_terminal(rng.randint(30, 140), rng.randint(8, 50))
                    post_keys(app, *burst)
                    # Now and then wait for the app to catch up and redraw; else let it run between bursts.
                    if rng.random() < 0.25:
                        await pilot.pause()
                    else:
                        await asyncio.sleep(0.005)
                await pilot.pause()
                if app.is_running and isinstance(app.screen, MainScreen):
                    await settle(pilot)  # whatever the keys did, the details show the highlighted module
                    assert app.screen.query_one(DetailPane).shown == cursor(app)
            # run_test re-raised any exception; an app that stopped did so because q asked it to
            assert app.return_code in (None, 0)
    assert opened > len(SEEDS)  # q was pressed, and the app was opened again
