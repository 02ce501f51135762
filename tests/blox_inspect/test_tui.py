"""The Textual browser driven with Pilot: navigation, search, sorting, details, diff, help, bad sizes."""

import numpy as np
import pytest
from textual.widgets import DataTable, TabbedContent
from tui_pilot import cell, cursor, settle, text, tree
from tui_reports import gpt_params, gpt_report

import blox as bx
from blox_inspect.analysis.diff import diff_checkpoints
from blox_inspect.analysis.stats import array_stats
from blox_inspect.load.checkpoints import CheckpointReader, match_checkpoint, report_from_checkpoint
from blox_inspect.tui import make_app
from blox_inspect.tui.screens import HelpScreen
from blox_inspect.tui.tree import ModuleTree

SIZE = (120, 40)


def shown_paths(app) -> list[str]:
    """Module paths of the tree rows currently visible (expanded ancestors only)."""
    out = []

    def walk(node):
        out.append(node.data)
        if node.is_expanded:
            for child in node.children:
                walk(child)

    walk(tree(app).root)
    return out


@pytest.fixture
def report():
    return gpt_report(2)


async def test_tree_navigates(report):
    app = make_app(report, params=gpt_params(report))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")  # collapse to the top level, the cursor on the root
        await settle(pilot)
        assert shown_paths(app) == ["gpt", "gpt/embed", "gpt/blocks", "gpt/head"]
        await pilot.press("down", "down", "space")
        await settle(pilot)
        assert cursor(app) == "gpt/blocks"
        assert "gpt/blocks/block_1" in shown_paths(app)
        assert "gpt/blocks/block_0/attn" not in shown_paths(app)
        await pilot.press("down", "space", "down", "down")
        await settle(pilot)
        assert cursor(app) == "gpt/blocks/block_0/attn"
        assert "gpt/blocks/block_0/attn/q" not in shown_paths(app)
        await pilot.press("right")
        await settle(pilot)
        assert "gpt/blocks/block_0/attn/q" in shown_paths(app)
        info = text(app.screen.query_one("#module-info"))
        assert "gpt/blocks/block_0/attn  Attention" in info
        assert "288 total, 0 own" in info
        assert "__call__: float32[2,16,8] → float32[2,16,8]  from gpt/blocks/block_0" in info
        assert "heads = 2" in info


async def test_details_show_params_and_statistics(report):
    params = gpt_params(report)
    app = make_app(report, params=params)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c", "down")  # gpt/embed
        await settle(pilot)
        info = text(app.screen.query_one("#module-info"))
        assert "512 total, 512 own" in info and "(18.1% of the model)" in info
        table = app.screen.query_one("#param-table", DataTable)
        assert table.row_count == 1 and cell(table, 0, 5) == "sharding=[None, 'model']"
        stats = text(app.screen.query_one("#param-stats"))
        ref = array_stats(np.asarray(params["gpt/embed/embedding"].value))
        assert f"mean       {ref.mean:.6g}   std {ref.std:.6g}" in stats
        assert f"L2 norm    {ref.l2:.6g}" in stats
        assert "0 zeros   0 NaN   0 inf" in stats
        assert "sharding   [None, 'model']" in stats
        assert any(ch in stats for ch in "▁▂▃▄▅▆▇█")
        # choosing another param row shows that param; tab goes from the tree to the params table
        await pilot.press("end")  # gpt/head
        await settle(pilot)
        await pilot.press("tab")
        assert app.focused.id == "param-table"
        await pilot.press("down")
        await settle(pilot)
        assert "gpt/head/bias" in text(app.screen.query_one("#param-stats"))


async def test_abstract_report_explains_missing_values(report):
    app = make_app(report)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c", "down")
        await settle(pilot)
        assert "abstract params: no values to show" in text(app.screen.query_one("#param-stats"))


async def test_search_filters_fuzzily_and_escape_restores(report):
    app = make_app(report)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")
        assert app.screen.has_class("-searching") and app.focused.id == "search"
        await pilot.press(*"b1mlpup")
        await settle(pilot)
        assert cursor(app) == "gpt/blocks/block_1/mlp/up"
        assert "gpt/blocks/block_1/mlp/up" in shown_paths(app)
        assert "gpt/head" not in shown_paths(app)
        await pilot.press("enter")
        assert isinstance(app.focused, ModuleTree)
        await pilot.press("escape")
        await settle(pilot)
        assert not app.screen.has_class("-searching")
        assert "gpt/head" in shown_paths(app)
        assert cursor(app) == "gpt/blocks/block_1/mlp/up"  # the found module stays selected


async def test_sorting_largest_expand_collapse_copy(report):
    app = make_app(report)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        assert [c.data for c in tree(app).root.children] == ["gpt/blocks", "gpt/head", "gpt/embed"]
        assert "sort: params ↓" in app.screen.sub_title
        await pilot.press("s")  # FLOPs: blocks 136k, head 32.8k, embed 0
        assert [c.data for c in tree(app).root.children] == ["gpt/blocks", "gpt/head", "gpt/embed"]
        blk = tree(app).nodes["gpt/blocks"]
        blk.expand()
        await settle(pilot)
        await pilot.press("s")  # back to graph order
        assert [c.data for c in tree(app).root.children] == ["gpt/embed", "gpt/blocks", "gpt/head"]
        await pilot.press("L")
        await settle(pilot)
        assert cursor(app) == "gpt/head"  # 576 own params: the most of any module
        await pilot.press("e")
        await settle(pilot)
        assert len(shown_paths(app)) == len(report.modules)
        await pilot.press("c")
        await settle(pilot)
        assert shown_paths(app) == ["gpt", "gpt/embed", "gpt/blocks", "gpt/head"]
        await pilot.press("down", "y")
        assert app.clipboard == "gpt/embed"
        assert any("copied gpt/embed" in n.message for n in app._notifications)


async def test_sort_by_flops_orders_children(report):
    app = make_app(report)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # let the tree mount before driving it directly
        tree(app).reveal("gpt/blocks/block_0/attn")
        await settle(pilot)
        await pilot.press("s", "s")
        kids = [c.data.rsplit("/", 1)[1] for c in tree(app).nodes["gpt/blocks/block_0"].children]
        # attn: 8192 own + 4 × 1024; mlp: 2 × 4096; ln: 1280 each
        assert kids == ["attn", "mlp", "ln1", "ln2"]
        assert cursor(app) == "gpt/blocks/block_0/attn"


async def test_program_pane_shows_precomputed_jaxpr_and_hlo(report):
    lines = {"gpt/embed": ["a:f32[2,16,8] = gather b c"], "gpt": ["a:f32[2,16,8] = gather b c", "d = add a a"]}
    app = make_app(report, program_text=lines)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c", "p")
        await settle(pilot)
        assert app.screen.query_one(TabbedContent).active == "tab-program"
        assert "jaxpr equations traced inside gpt: 2" in text(app.screen.query_one("#program-title"))
        await pilot.press("down")
        await settle(pilot)
        assert app.screen.query_one("#program-log").lines == ["a:f32[2,16,8] = gather b c"]
    hlo = '%x = f32[2] gather(%a), metadata={op_name="jit(f)/gpt/gpt/embed/gather"}\n%y = f32[2] add(%x, %x)'
    app = make_app(report, hlo_text=hlo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c", "down", "p")
        await settle(pilot)
        assert "optimized HLO inside gpt/embed: 1 instructions" in text(app.screen.query_one("#program-title"))


async def test_program_text_is_computed_lazily_once(report):
    calls = []

    def trace():
        calls.append(1)
        return {"gpt": ["x = add a b"]}

    app = make_app(report, program_text=trace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c", "down")
        assert calls == []  # nothing traced until the Program tab opens
        await pilot.press("p")
        await app.workers.wait_for_complete()
        await settle(pilot)
        await pilot.press("up")
        await settle(pilot)
        assert app.screen.query_one("#program-log").lines == ["x = add a b"]
        assert calls == [1]


async def test_checkpoint_alone_reads_tensors_lazily(tmp_path, report, monkeypatch):
    f = tmp_path / "gpt.safetensors"
    params = gpt_params(report)
    bx.save(f, params)
    reader = CheckpointReader(f)
    read = []
    original = reader.read
    monkeypatch.setattr(reader, "read", lambda p: read.append(p) or original(p))
    app = make_app(report_from_checkpoint(reader), params=reader)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert len(read) == 1 and read[0].startswith(cursor(app) + "/")  # only the param on show at the start
        tree(app).reveal("gpt/head")
        await settle(pilot)
        assert len(read) == 2 and read[1].startswith("gpt/head/")  # and then only the newly shown one
        ref = array_stats(np.asarray(params[read[1]].value))
        assert f"max {ref.max:.6g}" in text(app.screen.query_one("#param-stats"))


async def test_mismatched_checkpoint_is_highlighted(tmp_path, report):
    params = gpt_params(report).unlocked()
    params = params.set(("gpt", "head", "kernel"), bx.Param(np.zeros((8, 10), np.float32)))
    f = tmp_path / "bad.safetensors"
    bx.save(f, params)
    reader = CheckpointReader(f)
    app = make_app(report, params=reader, mismatch=match_checkpoint(report, reader))
    async with app.run_test(size=SIZE) as pilot:
        banner = text(app.screen.query_one("#banner"))
        assert "checkpoint does not match the model: 1 with another shape/dtype" in banner
        assert "✗" in str(tree(app).nodes["gpt/head"].label) and "✗" not in str(tree(app).nodes["gpt/embed"].label)
        await settle(pilot)  # let the tree mount before driving it directly
        tree(app).reveal("gpt/head")
        await settle(pilot)
        assert "gpt/head/kernel: checkpoint has float32[8,10], model needs float32[8,64]" in text(
            app.screen.query_one("#module-info")
        )
        assert "no statistics: checkpoint has float32[8,10]" in text(app.screen.query_one("#param-stats"))


async def test_diff_mode_sorts_and_hides_unchanged(tmp_path, report):
    a = gpt_params(report)
    b = a.unlocked().set(("gpt", "head", "bias"), bx.Param(np.asarray(a["gpt/head/bias"].value) + 1.0))
    b = b.set(("gpt", "head", "kernel"), bx.Param(np.asarray(a["gpt/head/kernel"].value) * 1.5))
    bx.save(tmp_path / "a.safetensors", a)
    bx.save(tmp_path / "b.safetensors", b)
    app = make_app(diff=diff_checkpoints(tmp_path / "a.safetensors", tmp_path / "b.safetensors"))
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(DataTable)
        assert table.row_count == len(report.params)
        assert "2 changed" in text(app.screen.query_one("#diff-summary"))
        await pilot.press("u")
        assert [cell(table, i, 0) for i in range(table.row_count)] == ["gpt/head/bias", "gpt/head/kernel"]
        await pilot.press("s", "s")  # max |Δ|: bias moved by 1.0, kernel by 0.5 × its largest |value| (~0.03)
        assert cell(table, 0, 0) == "gpt/head/bias"
        assert float(cell(table, 0, 4)) == pytest.approx(1.0)
        await pilot.press("s")  # relative norm change: bias (values ~0.02) changes hugely, kernel by exactly 0.5
        assert [cell(table, i, 0) for i in range(2)] == ["gpt/head/bias", "gpt/head/kernel"]
        assert cell(table, 1, 5) == "5.000e-01"
        assert "sort: rel. Δ norm ↓" in text(app.screen.query_one("#diff-summary"))
        await pilot.press("y")
        assert app.clipboard == "gpt/head/bias"
        await pilot.press("u")
        assert table.row_count == len(report.params)


async def test_help_lists_every_key(report):
    app = make_app(report)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = text(app.screen.query_one("#help-keys"))
        for key, what in [
            ("/", "fuzzy module path"),
            ("s", "graph order → params → FLOPs"),
            ("L", "most own params"),
            ("w", "wrap long program lines"),
            ("gg / G", "first / last row"),
            ("↑ ↓ / j k", "move through"),
            ("e", "expand every"),
            ("c", "collapse the tree"),
            ("y", "copy the selected module"),
            ("p", "HLO/jaxpr"),
            ("escape", "clear the search"),
            ("u", "identical"),
            ("s", "max |Δ|"),
            ("?", "list of keys"),
            ("q", "quit"),
            ("shift+←", "parent"),
        ]:
            assert any(line.strip().startswith(key) and what in line for line in keys.splitlines()), key
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_too_small_terminal_shows_a_message(report):
    app = make_app(report)
    async with app.run_test(size=(50, 10)) as pilot:
        assert app.screen.has_class("-too-small")
        msg = app.screen.query_one("#too-small")
        assert msg.display and "too small" in text(msg) and "this one is 50×10" in text(msg)
        assert not app.screen.query_one("#body").display
        await pilot.resize_terminal(*SIZE)
        await settle(pilot)
        assert not app.screen.has_class("-too-small") and app.screen.query_one("#body").display


async def test_ten_thousand_modules_open_lazily():
    big = gpt_report(910)
    assert len(big.modules) > 10_000
    app = make_app(big)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # 910 blocks do not fit the window: only the top level opens, the largest module selected
        assert len(tree(app).nodes) == 4 and cursor(app) == "gpt/blocks"
        await pilot.press("space")
        await settle(pilot)
        assert len(tree(app).nodes) == 4 + 910
        await pilot.press("end")
        await settle(pilot)
        assert cursor(app) == "gpt/head"
        await pilot.press("slash")
        app.screen.query_one("#search").value = "909mlpdown"  # typing 10 keys through Pilot is slow
        await settle(pilot)
        assert cursor(app) == "gpt/blocks/block_909/mlp/down"
        await pilot.press("escape", "L")
        await settle(pilot)
        assert cursor(app) == "gpt/head"


async def test_stale_param_highlight_does_not_replace_the_module(report):
    # regression: moving on quickly from a module with params to one without showed the old param's stats
    app = make_app(report, params=gpt_params(report))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c", "down", "down")  # embed (one param), then blocks (none)
        await settle(pilot)
        assert cursor(app) == "gpt/blocks"
        assert "no params of its own" in text(app.screen.query_one("#param-stats"))


async def test_big_params_get_statistics_in_a_worker(report, monkeypatch):
    from blox_inspect.tui import widgets

    monkeypatch.setattr(widgets, "SYNC_STATS_LIMIT", 0)  # treat every param as big
    params = gpt_params(report)
    app = make_app(report, params=params)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c", "down")
        await settle(pilot)
        await app.workers.wait_for_complete()
        await settle(pilot)
        ref = array_stats(np.asarray(params["gpt/embed/embedding"].value))
        assert f"L2 norm    {ref.l2:.6g}" in text(app.screen.query_one("#param-stats"))


def test_rows_name_the_path_below_the_parent():
    from blox_inspect.report.model import ModuleInfo
    from blox_inspect.tui.tree import module_label

    # GPT-2's blocks live at transformer/h/0 where `h` is a graph node without a module
    m = ModuleInfo(
        path="gpt2/transformer/h/0",
        path_tuple=["gpt2", "transformer", "h", "0"],
        name="0",
        type="Block",
        config={},
        depth=2,
        parent="gpt2/transformer",
        children=[],
        calls=1,
        call_info=[],
        shared=False,
        params=1500,
    )
    assert str(module_label(m, parent="gpt2/transformer")) == "h/0  Block  1.5K"
    assert str(module_label(m, parent="gpt2/transformer", marked=True)) == "h/0  Block  1.5K  ✗"


async def test_mouse_selects_rows_and_tabs(report):
    app = make_app(report, program_text={"gpt/head": ["x = add a b"]})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        await settle(pilot)
        await pilot.click(ModuleTree, offset=(6, 3))  # the fourth row: gpt/head
        await settle(pilot)
        assert cursor(app) == "gpt/head"
        await pilot.click("#--content-tab-tab-program")
        await settle(pilot)
        assert app.screen.query_one(TabbedContent).active == "tab-program"
        assert app.screen.query_one("#program-log").lines == ["x = add a b"]
