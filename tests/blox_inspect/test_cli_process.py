"""The CLI process: a model file's own prints and exits never corrupt our output or exit code."""

import json
import pathlib
import subprocess
import sys
import textwrap

import pytest

from blox_inspect.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]

MODEL = """
import jax, jax.numpy as jnp, blox as bx
print("hello from import")

class Loud(bx.Module):
    def __call__(self, params, x):
        print("hello from the forward pass")
        return x * 2, params

def build():
    print("hello from the factory")
    return Loud(bx.Graph("net") / "loud"), jax.ShapeDtypeStruct((2, 3), jnp.float32)
"""


def test_model_prints_go_to_stderr_and_json_stays_clean(tmp_path, capsys):
    f = tmp_path / "loud.py"
    f.write_text(MODEL)
    assert main([str(f), "--format", "json", "--no-xla"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["root"] == "net"
    assert "hello from import" in err and "hello from the factory" in err and "hello from the forward pass" in err


@pytest.mark.parametrize(
    "body, when", [("import sys\nsys.exit(3)", "imported"), ("import sys\ndef build():\n    sys.exit(3)", "built")]
)
def test_a_model_file_that_exits_is_reported_not_obeyed(tmp_path, capsys, body, when):
    f = tmp_path / "exits.py"
    f.write_text(textwrap.dedent(body))
    assert main([str(f)]) == 2
    err = capsys.readouterr().err
    assert f"the model file exited with status 3 while being {when}" in err


def test_every_written_file_is_reported_with_its_size(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["tests/blox_inspect/models/mlp.py", "--no-xla", "-o", str(out)]) == 0
    assert f"wrote {out} ({out.stat().st_size:,} bytes)" in capsys.readouterr().err


def test_a_read_only_output_is_refused_with_exit_2_and_kept(tmp_path, capsys):
    out = tmp_path / "r.json"
    out.write_text("old")
    out.chmod(0o444)
    assert main(["tests/blox_inspect/models/mlp.py", "--no-xla", "-o", str(out)]) == 2
    assert str(out) in capsys.readouterr().err and out.read_text() == "old"


@pytest.mark.parametrize("delay", [0.5, 0.8, 1.2, 2.5])
def test_ctrl_c_at_any_moment_ends_with_interrupted_and_130(delay, tmp_path):
    """Ctrl-C while Python imports JAX (early) or while the model is traced (late): one line, exit 130."""
    import signal
    import time

    model = tmp_path / "slow.py"
    model.write_text(
        "import time\nimport jax.numpy as jnp\nimport blox as bx\n"
        "def build():\n"
        "    g = bx.Graph('net'); rng = bx.Rng(g / 'rng')\n"
        "    for _ in range(600):\n        time.sleep(0.1)  # a slow factory: the interrupt lands here\n"
        "    return bx.Linear(g / 'l', 2, rng), jnp.zeros((1, 2))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "blox_inspect", str(model)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "blox-inspect: interrupted"
    assert "Traceback" not in err and out == ""
