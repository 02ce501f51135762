"""Browsing as issue #17 asks: an opening that fits, ×N folds, vim keys, search that gives back the
expansion, program lines that scroll or wrap, and details that follow the highlighted row."""

import numpy as np
import pytest
from textual.widgets import DataTable, TabbedContent
from tui_pilot import cursor, settle, text, tree
from tui_reports import gpt_params, gpt_report, write_gpt2_checkpoint

import blox as bx
from blox_inspect.analysis.diff import diff_checkpoints
from blox_inspect.analysis.folds import Fold
from blox_inspect.load.checkpoints import CheckpointReader, report_from_checkpoint
from blox_inspect.tui import make_app
from blox_inspect.tui.widgets import ProgramPane

SIZE = (120, 40)


def shown_rows(app) -> list[str]:
    """The visible rows' labels, in screen order."""
    out = []

    def walk(node):
        out.append(str(node.label))
        if node.is_expanded:
            for child in node.children:
                walk(child)

    walk(tree(app).root)
    return out


def shown_paths(app) -> list[str]:
    return [row.data if isinstance(row.data, str) else f"fold:{row.data.rep}" for row in _visible(tree(app).root)]


def _visible(node):
    yield node
    if node.is_expanded:
        for child in node.children:
            yield from _visible(child)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    """A GPT-2-shaped checkpoint with Hugging Face's names, written by safetensors, and its arrays."""
    file = tmp_path_factory.mktemp("gpt2") / "gpt2.safetensors"
    return file, write_gpt2_checkpoint(file, n_layers=12)


def checkpoint_app(file):
    reader = CheckpointReader(file)
    return make_app(report_from_checkpoint(reader), params=reader, title=file.name)


async def test_opens_as_deep_as_fits_with_the_largest_row_selected():
    report = gpt_report(2)
    app = make_app(report)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert len(shown_paths(app)) == len(report.modules)  # 26 rows fit in 40 lines: all open
        # blocks (1,744 params) > head > embed; block_0 ties block_1; mlp (552) > attn; up (288) > down
        assert cursor(app) == "gpt/blocks/block_0/mlp/up"
        assert "gpt/blocks/block_0/mlp/up  Linear" in text(app.screen.query_one("#module-info"))
    app = make_app(report)
    async with app.run_test(size=(80, 14)) as pilot:  # 10 lines for the tree
        await settle(pilot)
        assert shown_paths(app) == [
            *("gpt", "gpt/embed", "gpt/blocks", "gpt/blocks/block_0", "gpt/blocks/block_1", "gpt/head"),
        ]
        assert cursor(app) == "gpt/blocks/block_0"


async def test_identical_blocks_fold_into_one_row_that_opens_to_its_members(gpt2):
    file, arrays = gpt2
    app = checkpoint_app(file)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # the checkpoint's root holds h, ln_f, wpe, wte; h holds one ×12 row, selected as the largest
        assert shown_paths(app) == ["", "h", "fold:h/0", "ln_f", "wpe", "wte"]
        fold = tree(app).cursor_item
        assert isinstance(fold, Fold) and fold.members == [f"h/{i}" for i in range(12)]
        assert shown_rows(app)[2].startswith("0..11 ×12  ")
        # the row counts all 12 blocks, as the summary's folded rows do
        block_params = sum(a.size for k, a in arrays.items() if k.startswith("h."))
        assert tree(app).index.total(fold, "params") == block_params
        assert "folded  0..11: 12 identical blocks" in text(app.screen.query_one("#module-info"))
        await pilot.press("l")  # open the fold: its 12 blocks, in number order
        await settle(pilot)
        assert shown_paths(app)[3:15] == [f"h/{i}" for i in range(12)]
        await pilot.press("l", "j", "j", "l")  # onto h/0, down to h/2 and open it
        await settle(pilot)
        assert cursor(app) == "h/2" and "h/2/attn" in shown_paths(app)
        info = text(app.screen.query_one("#module-info"))
        assert f"{block_params // 12:,} total, 0 own" in info
        await pilot.press("h", "h", "h")  # close h/2, up to the fold, close it
        await settle(pilot)
        assert shown_paths(app) == ["", "h", "fold:h/0", "ln_f", "wpe", "wte"]
        tree(app).reveal("h/7/mlp/c_fc")  # reaching a block inside a closed fold opens it
        await settle(pilot)
        assert cursor(app) == "h/7/mlp/c_fc"
        stats = text(app.screen.query_one("#param-stats"))
        assert f"L2 norm    {np.linalg.norm(arrays['h.7.mlp.c_fc.bias'].astype(np.float64)):.6g}" in stats


async def test_folds_of_a_model_sort_by_their_total(tmp_path):
    report = gpt_report(4, block="{}")  # blocks/0 .. blocks/3: identical, numbered
    app = make_app(report)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        (row,) = tree(app).nodes["gpt/blocks"].children
        assert str(row.label).startswith("0..3 ×4  Block  ")
        assert tree(app).index.total(row.data, "params") == 4 * report.modules[3].params  # gpt/blocks/0
        tree(app).move_cursor(row)
        await settle(pilot)
        await pilot.press("s")  # params ↓: the fold counts as its 4 blocks (3,488) and leads head (576)
        await settle(pilot)
        assert [c.data for c in tree(app).root.children] == ["gpt/blocks", "gpt/head", "gpt/embed"]
        assert "fold:gpt/blocks/0" in shown_paths(app)  # sorting kept what was open
        assert isinstance(tree(app).cursor_item, Fold)  # and the cursor on the ×4 row, still closed
        assert "gpt/blocks/0" not in shown_paths(app)


async def test_vim_keys_move_through_the_tree_and_the_tables(tmp_path):
    report = gpt_report(2)
    app = make_app(report)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")  # the top level, cursor on the root
        await settle(pilot)
        await pilot.press("j", "j")
        await settle(pilot)
        assert cursor(app) == "gpt/blocks"
        await pilot.press("l")  # open
        await settle(pilot)
        assert "gpt/blocks/block_0" in shown_paths(app)
        await pilot.press("l", "k")  # into block_0, back up to blocks
        await settle(pilot)
        assert cursor(app) == "gpt/blocks"
        await pilot.press("h")  # close
        await settle(pilot)
        assert "gpt/blocks/block_0" not in shown_paths(app)
        await pilot.press("G")
        await settle(pilot)
        assert cursor(app) == "gpt/head"
        await pilot.press("g")  # one g is not enough
        await settle(pilot)
        assert cursor(app) == "gpt/head"
        await pilot.press("g")
        await settle(pilot)
        assert cursor(app) == "gpt"
    a = gpt_params(report)
    b = a.unlocked().set(("gpt", "head", "bias"), bx.Param(np.asarray(a["gpt/head/bias"].value) + 1.0))
    bx.save(tmp_path / "a.safetensors", a)
    bx.save(tmp_path / "b.safetensors", b)
    app = make_app(diff=diff_checkpoints(tmp_path / "a.safetensors", tmp_path / "b.safetensors"))
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(DataTable)
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("G")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("k")
        assert table.cursor_row == table.row_count - 2
        await pilot.press("g", "g")
        assert table.cursor_row == 0


async def test_escape_after_a_search_gives_back_the_expansion():
    app = make_app(gpt_report(2))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        await settle(pilot)
        t = tree(app)
        t.reveal("gpt/blocks/block_1/attn/q")  # the user opened blocks, block_1 and its attention
        await settle(pilot)
        before = t.expansion()
        assert before == {"gpt", "gpt/blocks", "gpt/blocks/block_1", "gpt/blocks/block_1/attn"}
        await pilot.press("slash", *"b0mlpdown")
        await settle(pilot)
        assert cursor(app) == "gpt/blocks/block_0/mlp/down"
        await pilot.press("escape")
        await settle(pilot)
        # what was open is open again; what the found module needs is opened too, and nothing else
        assert t.expansion() == before | {"gpt/blocks/block_0", "gpt/blocks/block_0/mlp"}
        assert cursor(app) == "gpt/blocks/block_0/mlp/down"
        assert "gpt/blocks/block_0/attn/q" not in shown_paths(app)


async def test_program_lines_scroll_sideways_or_wrap():
    report = gpt_report(2)
    long = "a:f32[2,16,64] = dot_general[dimension_numbers=(([2], [0]), ([], []))] " + "b " * 120
    app = make_app(report, program_text={"gpt/head": [long, "c = add a a"]})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree(app).reveal("gpt/head")
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert app.screen.query_one(TabbedContent).active == "tab-program"
        log = app.screen.query_one("#program-log")
        assert log.lines == [long, "c = add a a"]
        width = log.scrollable_content_region.width
        assert log.max_scroll_x >= len(long) - width  # a long line scrolls sideways
        log.focus()
        await pilot.press("right", "right")
        assert log.scroll_x > 0
        await pilot.press("w")  # wrap
        await settle(pilot)
        assert app.screen.query_one(ProgramPane).wrap
        assert len(log.lines) > 2 and all(len(line) <= width for line in log.lines)
        assert log.lines[0] + "".join(line.removeprefix("↪ ") for line in log.lines[1:-1]) == long
        assert log.lines[-1] == "c = add a a"
        await pilot.press("w")
        await settle(pilot)
        assert log.lines == [long, "c = add a a"]


async def test_details_follow_the_highlighted_row_while_filtering(gpt2):
    # Regression (issue #17): filtering a checkpoint tree from `wpe` to `wte` left the cursor on the same
    # line, so no highlight was sent and the details kept showing wpe.
    file, arrays = gpt2
    app = checkpoint_app(file)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", "w", "p", "e")
        await settle(pilot)
        assert cursor(app) == "wpe" and app.screen.query_one("#module-info") is not None
        assert "module  wpe" in text(app.screen.query_one("#module-info"))
        await pilot.press("backspace", "backspace", "t", "e")
        await settle(pilot)
        assert cursor(app) == "wte"
        assert "module  wte" in text(app.screen.query_one("#module-info"))
        stats = text(app.screen.query_one("#param-stats"))
        assert "param      wte/weight" in stats
        assert f"L2 norm    {np.linalg.norm(arrays['wte.weight'].astype(np.float64)):.6g}" in stats
