"""`blox-inspect tui`: argument handling, bad input as one clear message (exit 2), real model files."""

import argparse
import os

import jax
import numpy as np
import pytest
from tui_pilot import settle, text

import blox as bx
from blox_inspect.analysis.stats import array_stats
from blox_inspect.cli import main
from blox_inspect.commands.tui import build_app
from blox_inspect.load.model_file import load_model

HERE = os.path.dirname(os.path.abspath(__file__))
MLP = os.path.join(HERE, "models", "mlp.py")
SIZE = (120, 40)


def args(*files, params=None, hlo=None):
    return argparse.Namespace(files=list(files), params=params, hlo=hlo)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"\x00\x01", "only 2 bytes, expected an 8-byte header length first"),
        (b"hello world, not a checkpoint", "not a safetensors checkpoint \\(or truncated\\)"),
    ],
)
def test_corrupt_file_is_one_message_and_exit_2(tmp_path, capsys, content, match):
    f = tmp_path / "bad.safetensors"
    f.write_bytes(content)
    assert main(["tui", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("blox-inspect: error: ") and "Traceback" not in err
    assert f"{f}: " in err
    import re

    assert re.search(match, err)


def test_bad_arguments(tmp_path, capsys):
    f = tmp_path / "a.safetensors"
    bx.save(f, bx.Params({("w",): bx.Param(np.ones(2, np.float32))}))
    assert main(["tui", str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors: no such file" in capsys.readouterr().err
    assert main(["tui", str(f), str(f), str(f)]) == 2
    assert "got 3 files" in capsys.readouterr().err
    assert main(["tui", str(f), "--params", str(f)]) == 2
    assert "--params goes with a model file" in capsys.readouterr().err
    assert main(["tui", MLP + ":nope"]) == 2
    assert "no factory named 'nope'" in capsys.readouterr().err


async def test_model_file_with_matching_params(tmp_path):
    loaded = load_model(MLP)
    params = loaded.init(1, jax.numpy.ones((4, 16)))
    f = tmp_path / "mlp.safetensors"
    bx.save(f, params)
    app = build_app(args(MLP, params=str(f)))
    assert app.mismatch is None
    async with app.run_test(size=SIZE) as pilot:
        tree = app.screen.query_one("#tree")
        assert [n.data for n in tree.root.children] == ["net/rng", "net/mlp"]
        await settle(pilot)  # let the tree mount before driving it directly
        tree.reveal("net/mlp/l1")
        await settle(pilot)
        assert "__call__: float32[4,16] → float32[4,32]" in text(app.screen.query_one("#module-info"))
        first = app.index.own_params["net/mlp/l1"][0].path
        ref = array_stats(np.asarray(params[first].value))
        assert f"L2 norm    {ref.l2:.6g}" in text(app.screen.query_one("#param-stats"))
        # the Program tab traces the model once, lazily, and shows l1's equations
        await pilot.press("p")
        await app.workers.wait_for_complete()
        await settle(pilot)
        lines = app.screen.query_one("#program-log").lines
        assert [line.split(" = ")[1].split("[")[0].split()[0] for line in lines] == ["dot_general", "reshape", "add"]


async def test_model_file_with_mismatched_params(tmp_path):
    loaded = load_model(MLP)
    params = loaded.init(0, jax.numpy.ones((4, 16))).unlocked()
    params = params.set(("net", "mlp", "l2", "kernel"), bx.Param(jax.numpy.zeros((32, 3))))
    params = params.set(("net", "old", "w"), bx.Param(jax.numpy.zeros(2)))
    f = tmp_path / "other.safetensors"
    bx.save(f, params)
    app = build_app(args(MLP, params=str(f)))
    assert app.mismatch.changed == {"net/mlp/l2/kernel": "checkpoint has float32[32,3], model needs float32[32,10]"}
    assert app.mismatch.extra == ["net/old/w"]
    async with app.run_test(size=SIZE):
        assert "1 not in the model, 1 with another shape/dtype" in text(app.screen.query_one("#banner"))
        assert "✗" in str(app.screen.query_one("#tree").nodes["net/mlp"].label)


async def test_checkpoint_diff_from_the_command_line(tmp_path):
    a = bx.Params({("net", "w"): bx.Param(np.ones(3, np.float32))})
    b = bx.Params({("net", "w"): bx.Param(np.full(3, 2.0, np.float32))})
    bx.save(tmp_path / "a.safetensors", a)
    bx.save(tmp_path / "b.safetensors", b)
    app = build_app(args(str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")))
    assert [(p.path, p.status, p.max_abs, p.rel_norm) for p in app.diff.params] == [("net/w", "changed", 1.0, 1.0)]
    assert app.title == "blox-inspect · a.safetensors vs b.safetensors"


async def test_sharded_folders_open_and_diff_in_the_browser(tmp_path):
    a = bx.Params({("net", "w"): bx.Param(np.ones(3, np.float32))})
    bx.save(str(tmp_path / "step_1"), a)
    bx.save(str(tmp_path / "step_2"), a.set(("net", "w"), bx.Param(np.full(3, 2.0, np.float32))))
    app = build_app(args(str(tmp_path / "step_1"), str(tmp_path / "step_2")))
    assert [(p.path, p.status, p.max_abs) for p in app.diff.params] == [("net/w", "changed", 1.0)]
    single = build_app(args(str(tmp_path / "step_1")))
    async with single.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert single.report.totals.params == 3


async def test_profile_times_show_in_the_tree(tmp_path, capsys):
    """`tui model.py --profile p.json`: each tree row carries its measured time (children included)."""
    import json

    prof = tmp_path / "p.json"
    assert main(["profile", MLP, "--steps", "2", "--warmup", "1", "-o", str(prof)]) == 0
    measured = {m["path"]: m["total_seconds"] for m in json.loads(prof.read_text())["modules"]}
    namespace = args(MLP)
    namespace.profile = str(prof)
    app = build_app(namespace)
    from blox_inspect.common.units import human_seconds

    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        from tui_pilot import tree

        t = tree(app)
        labels = {path: str(node.label) for path, node in t.nodes.items()}
        assert labels["net/mlp/l1"].endswith(human_seconds(measured["net/mlp/l1"]))
        assert labels["net/mlp"].endswith(human_seconds(measured["net/mlp"]))
    f = tmp_path / "a.safetensors"
    bx.save(f, bx.Params({("w",): bx.Param(np.ones(2, np.float32))}))
    assert main(["tui", str(f), "--profile", str(prof)]) == 2
    assert "a profile's times belong to a model file" in capsys.readouterr().err
