"""`blox-inspect summary CKPT` and `blox-inspect diff A B` on files written by the official safetensors library."""

import json
import pathlib

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import save_file

from blox_inspect.cli import main

TENSORS = {
    "model.embed.weight": np.arange(12, dtype=np.float32).reshape(4, 3),
    "model.layers.0.w": np.ones((3, 3), ml_dtypes.bfloat16),
    "model.layers.0.h": np.ones((2,), np.float16),
    "model.layers.0.count": np.array([2**40 + 7], np.int64),
    "model.mask": np.array([True, False]),
    "model.empty": np.zeros((0, 3), np.float32),
    "model.scalar": np.array(1.5, np.float32),
}


def _hf_sharded(folder, tensors):
    names = sorted(tensors)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    weight_map = {}
    for shard, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, str(folder / shard))
        weight_map.update(dict.fromkeys(keys, shard))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def _summary_json(capsys, *args):
    assert main(["summary", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("layout", ["file", "index", "folder"])
def test_summary_of_a_checkpoint_alone_counts_every_tensor(tmp_path, capsys, layout):
    if layout == "file":
        save_file(TENSORS, str(tmp_path / "model.safetensors"))
        target = tmp_path / "model.safetensors"
    else:
        _hf_sharded(tmp_path, TENSORS)
        target = tmp_path / "model.safetensors.index.json" if layout == "index" else tmp_path
    report = _summary_json(capsys, str(target), "--stats")
    assert report["totals"]["params"] == sum(int(np.prod(v.shape)) for v in TENSORS.values())
    by_path = {p["path"]: p for p in report["params"]}
    assert by_path["model/layers/0/count"]["dtype"] == "int64"
    assert by_path["model/layers/0/w"]["dtype"] == "bfloat16"
    assert by_path["model/embed/weight"]["stats"]["max"] == 11.0  # read lazily, per tensor
    assert by_path["model/layers/0/count"]["stats"]["max"] == float(2**40 + 7)  # no truncation to int32


def test_diff_exit_codes_and_tolerances(tmp_path, capsys):
    a, b, c = (str(tmp_path / f"{n}.safetensors") for n in "abc")
    save_file(TENSORS, a)
    save_file(TENSORS, b)
    changed = dict(TENSORS, **{"model.embed.weight": TENSORS["model.embed.weight"] + 1e-3})
    changed.pop("model.mask")
    changed["model.new"] = np.zeros(2, np.float32)
    save_file(changed, c)
    assert main(["diff", a, b]) == 0
    capsys.readouterr()
    assert main(["diff", a, c, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    status = {p["path"]: p["status"] for p in data["params"]}
    assert status == {"model/embed/weight": "changed", "model/mask": "removed", "model/new": "added"}
    change = next(p for p in data["params"] if p["path"] == "model/embed/weight")
    assert change["max_abs"] == pytest.approx(1e-3, rel=1e-3)
    only_values = dict(TENSORS, **{"model.embed.weight": TENSORS["model.embed.weight"] + 1e-3})
    save_file(only_values, c)
    assert main(["diff", a, c, "--atol", "1e-2"]) == 0
    assert main(["diff", a, c, "--atol", "1e-5"]) == 1
    assert main(["diff", a, str(tmp_path / "missing.safetensors")]) == 2


def test_diff_shows_hostile_names_escaped(tmp_path, capsys):
    a, b = str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")
    save_file({"evil\x1b]52;c;Y3VybA==\x07": np.ones(2, np.float32)}, a)
    save_file({"x": np.ones(1, np.float32)}, b)
    assert main(["diff", a, b]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b" in out


def test_sharded_folder_checkpoints_summarise_from_metadata_and_diff(tmp_path, capsys):
    import jax.numpy as jnp

    import blox as bx

    a = bx.Params({("net", "w"): bx.Param(jnp.arange(6.0).reshape(2, 3)), ("net", "b"): bx.Param(jnp.zeros(3))})
    bx.save(str(tmp_path / "step_1"), a)
    bx.save(str(tmp_path / "step_2"), a.set(("net", "b"), bx.Param(jnp.ones(3))))
    report = _summary_json(capsys, str(tmp_path / "step_1"))
    assert report["totals"]["params"] == 9
    assert main(["diff", str(tmp_path / "step_1"), str(tmp_path / "step_2"), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [(p["path"], p["status"], p["max_abs"]) for p in data["params"]] == [("net/b", "changed", 1.0)]


def test_a_fifo_is_refused_by_every_command_without_waiting(tmp_path, capsys):
    """A named pipe given as a checkpoint used to hang until Ctrl-C: it is refused at once, exit 2."""
    import os
    import threading

    from blox_inspect import cli

    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    mlp = str(pathlib.Path(__file__).parent / "models" / "mlp.py")
    for argv in (["summary", str(fifo)], [mlp, "--params", str(fifo), "--no-xla"], ["diff", str(fifo), str(fifo)]):
        codes = []
        # No writer ever opens the FIFO: a command that waited for one would never finish.
        thread = threading.Thread(target=lambda argv=argv, codes=codes: codes.append(cli.main(argv)), daemon=True)
        thread.start()
        thread.join(60)
        assert codes == [2], argv
        assert "pipe.safetensors: is a FIFO (named pipe), not a checkpoint file" in capsys.readouterr().err


def test_params_from_a_foreign_checkpoint_get_the_match_report_before_tracing(tmp_path, capsys):
    """Regression: a checkpoint of another model failed deep in tracing with an RngError."""
    import blox as bx

    foreign = tmp_path / "hf.safetensors"
    save_file(
        {"transformer.wte.weight": np.zeros((10, 4), np.float32), "net.mlp.l1.kernel": np.zeros((16, 32), np.int8)},
        str(foreign),
    )
    mlp = str(pathlib.Path(__file__).parent / "models" / "mlp.py")
    traced = []

    def seen(call, proceed):
        traced.append(call.method)
        return proceed(call.params, *call.args, **call.kwargs)

    with bx.observe_calls(seen):
        assert main([mlp, "--params", str(foreign), "--no-xla"]) == 2
        calls_after_init = len(traced)
    err = capsys.readouterr().err
    assert "hf.safetensors: does not match the model" in err
    assert "missing: net/mlp/l2/kernel: the model needs float32[32, 10]" in err
    assert "unexpected: transformer/wte/weight" in err
    assert "net/mlp/l1/kernel" in err and "int8" in err  # the dtype mismatch, with both sides
    assert "RngError" not in err and "failed while tracing" not in err
    # Only the model's own (abstract) init ran: the forward pass was never traced with the foreign params.
    fresh = []
    with bx.observe_calls(lambda c, p: fresh.append(c.method) or p(c.params, *c.args, **c.kwargs)):
        from blox_inspect.load.model_file import load_model

        load_model(mlp).abstract_params()
    assert calls_after_init == len(fresh)


def test_stats_report_bytes_read_as_they_go(tmp_path):
    """--stats on a big checkpoint shows how far it is (on a terminal); the callback sees every byte once."""
    import os
    import subprocess
    import sys
    import threading

    from blox_inspect.analysis.summary import add_param_stats
    from blox_inspect.load.checkpoints import CheckpointReader, report_from_checkpoint

    f = tmp_path / "c.safetensors"
    save_file({f"w{i}": np.full((64, 64), i, np.float32) for i in range(5)}, str(f))
    report = report_from_checkpoint(CheckpointReader(str(f)))
    calls = []
    add_param_stats(report, str(f), lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 5 * 64 * 64 * 4) and calls[-1] == (5 * 64 * 64 * 4,) * 2
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) == 6
    # On a terminal the spinner line carries the count.
    parent, child = os.openpty()
    shown = []

    def drain():  # read the terminal while the command runs, so its writes never block
        while True:
            try:
                chunk = os.read(parent, 65536)
            except OSError:
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.run(
        [sys.executable, "-m", "blox_inspect", "summary", str(f), "--stats", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=child,
        timeout=120,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(child)
    reader.join(10)
    os.close(parent)
    assert proc.returncode == 0 and json.loads(proc.stdout)["params"][0]["stats"]
    assert b"reading values for statistics" in b"".join(shown)


def _listing(path):
    # The official library's own view of the file: name -> (dtype, shape).
    from safetensors import safe_open

    names = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "I64": "int64", "BOOL": "bool"}
    with safe_open(str(path), framework="numpy") as f:
        return {k: (names[f.get_slice(k).get_dtype()], list(f.get_slice(k).get_shape())) for k in f.keys()}


def test_checkpoint_table_lists_every_tensor_under_its_module(tmp_path, capsys):
    save_file(TENSORS, str(tmp_path / "model.safetensors"))
    want = _listing(tmp_path / "model.safetensors")
    assert main(["summary", str(tmp_path / "model.safetensors"), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "kind,path,depth,dtype,shape,params,trainable_params,param_bytes"
    tensors = {}
    for line in lines[1:]:
        kind, path, _, dtype, shape, params, _, nbytes = line.split(",")
        if kind == "tensor":
            tensors[path.replace("/", ".")] = (dtype, [int(d) for d in shape.split("x")] if shape else [], int(params))
    assert {k: v[:2] for k, v in tensors.items()} == want
    assert all(v[2] == int(np.prod(v[1])) for v in tensors.values())

    assert main(["summary", str(tmp_path / "model.safetensors")]) == 0
    table = capsys.readouterr().out
    assert "Module / tensor" in table and "[4, 3]" in table and "bfloat16" in table
    assert "Forward FLOPs" not in table  # a checkpoint holds no program
    assert main(["summary", str(tmp_path / "model.safetensors"), "--depth", "1", "--format", "markdown"]) == 0
    assert "[4, 3]" not in capsys.readouterr().out  # tensors fold into their module, as child modules do


def test_checkpoint_table_folds_repeated_layers_with_their_tensors(tmp_path, capsys):
    layers = {f"h.{i}.{n}": np.ones((4, 4) if n == "w" else (4,), np.float32) for i in range(6) for n in ("w", "b")}
    save_file(layers, str(tmp_path / "model.safetensors"))
    assert main(["summary", str(tmp_path / "model.safetensors"), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "×6" in out
    w_row = next(line for line in out.splitlines() if "| [4, 4] |" in line)
    assert "| 96 |" in w_row  # a tensor under a ×6 row stands for its 6 copies: 6 × 16
