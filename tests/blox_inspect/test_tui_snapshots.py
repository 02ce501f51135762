"""SVG snapshots of the browser's main screens (update with `pytest --snapshot-update`, then look at them)."""

import numpy as np
import pytest
from tui_pilot import settle
from tui_reports import gpt_params, gpt_report, write_gpt2_checkpoint

import blox as bx
from blox_inspect.analysis.diff import diff_checkpoints
from blox_inspect.load.checkpoints import CheckpointReader, match_checkpoint, report_from_checkpoint
from blox_inspect.tui import make_app

SIZE = (120, 40)


@pytest.fixture
def report():
    return gpt_report(2)


def test_model_with_statistics(snap_compare, report, tmp_path):
    params = gpt_params(report)
    app = make_app(report, params=params, title="gpt.py")

    async def open_head(pilot):
        await settle(pilot)
        pilot.app.screen.query_one("#tree").reveal("gpt/blocks/block_0/mlp/up")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_head)


def test_search(snap_compare, report):
    assert snap_compare(make_app(report, title="gpt.py"), press=["slash", "m", "l", "p"], terminal_size=SIZE)


def test_mismatch_and_program(snap_compare, report, tmp_path):
    params = gpt_params(report).unlocked().set(("gpt", "head", "kernel"), bx.Param(np.zeros((8, 10), np.float32)))
    bx.save(tmp_path / "c.safetensors", params)
    reader = CheckpointReader(tmp_path / "c.safetensors")
    lines = {
        "gpt/head": [
            "a:f32[2,16,64] = dot_general[dimension_numbers=(([2], [0]), ([], []))] b c",
            "d:f32[1,1,64] = reshape[new_sizes=(1, 1, 64)] e",
            "f:f32[2,16,64] = add a d",
        ]
    }
    app = make_app(report, params=reader, mismatch=match_checkpoint(report, reader), program_text=lines, title="gpt.py")
    assert snap_compare(app, press=["end", "p"], terminal_size=SIZE)


def test_diff(snap_compare, report, tmp_path, monkeypatch):
    a = gpt_params(report)
    b = a.unlocked().set(("gpt", "head", "bias"), bx.Param(np.asarray(a["gpt/head/bias"].value) + 1.0))
    b = b.set(("gpt", "extra", "w"), bx.Param(np.ones(3, np.float32)))
    monkeypatch.chdir(tmp_path)  # the summary shows the file names as given
    bx.save("a.safetensors", a)
    bx.save("b.safetensors", b)
    app = make_app(diff=diff_checkpoints("a.safetensors", "b.safetensors"), title="a vs b")
    assert snap_compare(app, press=["u"], terminal_size=SIZE)


def test_help(snap_compare, report):
    assert snap_compare(make_app(report), press=["question_mark"], terminal_size=SIZE)


def test_too_small(snap_compare, report):
    assert snap_compare(make_app(report), terminal_size=(50, 10))


def test_checkpoint_folds_identical_blocks(snap_compare, tmp_path):
    # A GPT-2-shaped checkpoint opens with h expanded and its 12 identical blocks as one selected ×12 row.
    write_gpt2_checkpoint(tmp_path / "gpt2.safetensors", n_layers=12)
    reader = CheckpointReader(tmp_path / "gpt2.safetensors")
    app = make_app(report_from_checkpoint(reader), params=reader, title="gpt2.safetensors")
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)
