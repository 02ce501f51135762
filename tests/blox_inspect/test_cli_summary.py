"""`blox-inspect summary`: output formats, --load, budgets, and every user-facing error."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from blox_inspect import Report
from blox_inspect.cli import main
from blox_inspect.commands.summary import parse_count

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MLP = "tests/blox_inspect/models/mlp.py"
EXPECTED = os.path.join(ROOT, "tests", "blox_inspect", "expected", "mlp_summary.md")


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path, name, source):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def test_markdown_snapshot_of_the_fixture_mlp(capsys):
    code, out, _ = run(capsys, MLP, "--format", "markdown", "--train", "--no-xla")
    assert code == 0
    with open(EXPECTED, encoding="utf-8") as f:
        assert out == f.read()


def test_output_file_format_is_guessed_and_load_re_renders(capsys, tmp_path):
    report_file = str(tmp_path / "r.json")
    code, out, _ = run(capsys, "summary", MLP, "-o", report_file)
    assert code == 0 and out == ""
    report = Report.from_json(open(report_file).read())
    assert report.totals.params == 874 and report.totals.flops_xla == report.totals.flops
    csv_file = str(tmp_path / "r.csv")
    assert run(capsys, "--load", report_file, "-o", csv_file)[0] == 0
    lines = open(csv_file).read().splitlines()
    assert lines[0].startswith("path,type,depth") and lines[3].startswith("net/mlp/l1,Linear,1,1,1,False")
    code, out, _ = run(capsys, "--load", report_file, "--depth", "1")
    assert code == 0 and "mlp" in out and "l1" not in out and "Parameters" in out


def test_json_is_exact_integers(capsys):
    code, out, _ = run(capsys, MLP, "--format", "json", "--no-xla")
    data = json.loads(out)
    assert code == 0 and data["totals"]["params"] == 874 and data["totals"]["flops"] == 6952


@pytest.mark.parametrize(
    "text, value", [("1e9", 10**9), ("7B", 7 * 10**9), ("100M", 10**8), ("12.5k", 12500), ("1_000", 1000)]
)
def test_parse_count(text, value):
    assert parse_count(text) == value


def test_budgets_fail_with_a_clear_message(capsys):
    code, out, err = run(capsys, MLP, "--no-xla", "--max-params", "100")
    assert code == 1 and "Parameters" in out
    assert "parameter budget exceeded: the model has 874 params, but --max-params allows 100." in err
    code, _, err = run(capsys, MLP, "--no-xla", "--max-flops", "1K")
    assert code == 1 and "FLOP budget exceeded: the model has 7.0K (6,952) forward FLOPs" in err
    assert run(capsys, MLP, "--no-xla", "--max-params", "1M", "--max-flops", "1e6")[0] == 0
    with pytest.raises(SystemExit):
        run(capsys, MLP, "--max-params", "lots")


def test_missing_model_file(capsys):
    code, _, err = run(capsys, "nope/model.py")
    assert code == 2 and "nope/model.py: no such file" in err and "Traceback" not in err


def test_syntax_error_in_model_file(capsys, tmp_path):
    path = write(tmp_path, "bad.py", "def build(:\n    pass\n")
    code, _, err = run(capsys, path)
    assert code == 2 and "bad.py:1: syntax error in the model file" in err


def test_no_factory_lists_callables(capsys, tmp_path):
    path = write(tmp_path, "m.py", "def make_model():\n    pass\n\ndef helper():\n    pass\n")
    code, _, err = run(capsys, path)
    assert code == 2 and "no factory named 'build'" in err and "make_model, helper" not in err
    assert "Callables defined in the file: helper, make_model" in err


def test_factory_raising(capsys, tmp_path):
    path = write(tmp_path, "m.py", "def build():\n    raise ValueError('width must be even')\n")
    code, _, err = run(capsys, path)
    assert code == 2 and "m.py:build() raised ValueError: width must be even" in err


def test_factory_returning_the_wrong_thing(capsys, tmp_path):
    path = write(tmp_path, "m.py", "def build():\n    return 3\n")
    code, _, err = run(capsys, path)
    assert code == 2 and "returned int; expected a tuple (model, inputs)" in err


SHAPE_ERROR_MODEL = """
import jax, jax.numpy as jnp
import blox as bx

class Proj(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.fc = bx.Linear(graph / "fc", 8, rng)

    def __call__(self, params, x):
        return self.fc(params, x @ jnp.ones((5, 4)))

def build():
    g = bx.Graph("net")
    return Proj(g / "proj", bx.Rng(g / "rng")), (jax.ShapeDtypeStruct((2, 3), jnp.float32),)
"""


def test_shape_error_inside_the_model(capsys, tmp_path):
    path = write(tmp_path, "m.py", SHAPE_ERROR_MODEL)
    code, _, err = run(capsys, path)
    assert code == 2 and "net/proj (Proj) failed while tracing" in err
    assert "inputs that flowed into it: float32[2,3]" in err and "TypeError" in err and "Traceback" not in err
    code, _, err = run(capsys, "--debug", path)
    assert code == 2 and "Traceback" in err


def test_output_into_a_missing_folder(capsys):
    code, _, err = run(capsys, MLP, "--no-xla", "-o", "no/such/dir/out.md")
    assert code == 2 and "does not exist" in err


def test_load_errors(capsys, tmp_path):
    assert "no such report file" in run(capsys, "--load", str(tmp_path / "x.json"))[2]
    bad = write(tmp_path, "x.json", "{not json")
    code, _, err = run(capsys, "--load", bad)
    assert code == 2 and "not a blox-inspect JSON report" in err


def test_module_entry_point_runs_in_a_subprocess():
    proc = subprocess.run(
        [sys.executable, "-m", "blox_inspect", MLP, "--no-xla", "--depth", "1", "--format", "csv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:] == [
        "net/rng,Rng,0,1,0,False,,,0,0,0,0,0,0,0,0",  # its seed and counter are RNG state, not params
        'net/mlp,MLP,0,1,1,False,"float32[4,16]","float32[4,10]",874,0,874,0,3496,6952,128,0',
    ]


def test_model_file_with_dataclass_and_postponed_annotations(capsys, tmp_path):
    # Regression: the model file was not in sys.modules while it ran, so @dataclass with
    # `from __future__ import annotations` failed to import.
    path = write(
        tmp_path,
        "cfg.py",
        """
        from __future__ import annotations

        import dataclasses

        import jax
        import jax.numpy as jnp

        import blox as bx


        @dataclasses.dataclass(frozen=True)
        class Config:
            width: int = 8


        def build():
            graph = bx.Graph("net")
            model = bx.Linear(graph / "out", Config().width, bx.Rng(graph / "rng"))
            return model, (jax.ShapeDtypeStruct((2, 4), jnp.float32),)
        """,
    )
    code, out, _ = run(capsys, path, "--format", "json")
    assert code == 0
    assert json.loads(out)["totals"]["trainable_params"] == 4 * 8 + 8


@pytest.mark.parametrize("command", ["summary", "cost", "graph"])
def test_negative_depth_is_one_clear_error_on_every_command(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "tests/blox_inspect/models/mlp.py", "--depth", "-1"])
    assert e.value.code == 2
    assert "--depth: expected a whole number of levels, 0 or more" in capsys.readouterr().err
