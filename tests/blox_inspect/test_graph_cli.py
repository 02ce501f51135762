"""`blox-inspect graph`: outputs, --load, engines (missing, failing, hanging) and bad input."""

import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import graph_reports as gr
import pytest

from blox_inspect import InspectError
from blox_inspect.cli import main
from blox_inspect.renderers import _layout

REPO = pathlib.Path(__file__).resolve().parents[2]
PURE = os.path.join(os.path.dirname(sys.executable), "graphviz-pure")


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(gr.gpt2(n_layer=4, d=64, vocab=100, seq=8).to_json())
    return str(path)


def _fake_engine(tmp_path, body: str) -> str:
    script = tmp_path / "fake-dot"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in -T\\?) echo \'Format: "?" not recognized. Use one of: png svg\' >&2; exit 1;; esac\n' + body
    )
    script.chmod(0o755)
    return str(script)


def test_svg_png_dot_and_stdout_outputs(saved, tmp_path, capsys):
    svg, png, dot = tmp_path / "m.svg", tmp_path / "m.png", tmp_path / "m.dot"
    assert main(["graph", "--load", saved, "-o", str(svg), "--depth", "1", "--rankdir", "LR"]) == 0
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and "h/0..h/3" in svg.read_text()
    assert main(["graph", "--load", saved, "-o", str(png), "--color", "flops"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["graph", "--load", saved, "-o", str(dot), "--focus", "h/1"]) == 0
    assert dot.read_text().startswith("digraph blox {") and "outside: gpt2/h/0" in dot.read_text()
    capsys.readouterr()
    assert main(["graph", "--load", saved, "--expand", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph blox {") and '"gpt2/h/3"' in out


def test_unsupported_extension_lists_supported_ones(saved, tmp_path, capsys):
    assert main(["graph", "--load", saved, "-o", str(tmp_path / "m.txt")]) == 2
    assert "cannot write '.txt' files" in capsys.readouterr().err
    assert not (tmp_path / "m.txt").exists()
    pure = _layout._engine(PURE)
    with pytest.raises(InspectError, match=r"m\.pdf: cannot write '\.pdf' files with graphviz-pure .*Supported extensions: "
                       r"\.svg, \.png, \.jpg, \.jpeg, \.dot, \.gv .*apt-get install graphviz"):  # fmt: skip
        _layout.output_format("m.pdf", pure)
    with pytest.raises(InspectError, match=r"cannot write '\(no extension\)' files.*Supported extensions: \.dot, \.gv"):
        _layout.output_format("diagram", None)


def test_engine_failure_reports_stderr_and_writes_nothing(saved, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(_layout.ENGINE_ENV, _fake_engine(tmp_path, 'echo "Error: syntax error in line 7" >&2\nexit 3\n'))
    out = tmp_path / "m.svg"
    out.write_text("previous")
    assert main(["graph", "--load", saved, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "fake-dot failed (exit 3)" in err and "syntax error in line 7" in err and "Nothing was written" in err
    assert out.read_text() == "previous"  # the old file is untouched
    with pytest.raises(
        InspectError, match=r"fake-dot failed \(exit 3\) laying out the diagram for x\.svg:\nError: syntax"
    ):
        _layout.layout(_layout.find_engine(), "digraph {}", "svg", "x.svg")


def test_engine_timeout_is_an_error(saved, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(_layout.ENGINE_ENV, _fake_engine(tmp_path, "echo laying out >&2\nexec sleep 20\n"))
    with pytest.raises(
        InspectError, match=r"fake-dot did not finish laying out the diagram for m\.svg within 0\.3 s.*--timeout"
    ):
        _layout.layout(_layout.find_engine(), "digraph {}", "svg", "m.svg", timeout=0.3)
    assert main(["graph", "--load", saved, "-o", str(tmp_path / "m.svg"), "--timeout", "0.3"]) == 2
    assert "within 0.3 s" in capsys.readouterr().err and not (tmp_path / "m.svg").exists()


def test_without_an_engine_the_source_is_written_with_instructions(saved, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(_layout.ENGINE_ENV, "")
    assert main(["graph", "--load", saved, "-o", str(tmp_path / "m.svg")]) == 2
    err = capsys.readouterr().err
    assert "no Graphviz layout engine found" in err and "pip install graphviz-pure" in err and "-Tsvg" in err
    assert (tmp_path / "m.dot").read_text().startswith("digraph blox {") and not (tmp_path / "m.svg").exists()


def test_bad_arguments(saved, tmp_path, capsys):
    assert main(["graph", "--load", saved, "--focus", "gpt2/h/9"]) == 2
    assert "--focus 'gpt2/h/9': no module" in capsys.readouterr().err
    assert main(["graph", "--load", str(tmp_path / "missing.json")]) == 2
    assert "cannot read it" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{}")
    assert main(["graph", "--load", str(tmp_path / "bad.json")]) == 2
    assert "schema_version" in capsys.readouterr().err
    assert main(["graph"]) == 2
    assert "graph needs a model file" in capsys.readouterr().err
    assert main(["graph", "model.py", "--load", saved]) == 2
    assert "takes no model file or --params" in capsys.readouterr().err


def test_entry_point_runs_as_a_process(saved, tmp_path):
    out = tmp_path / "m.svg"
    done = subprocess.run(
        [sys.executable, "-m", "blox_inspect", "graph", "--load", saved, "-o", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stderr and ET.parse(out).getroot().tag.endswith("svg")


def test_draws_a_model_file_through_the_analysis(tmp_path):
    out = tmp_path / "mlp.svg"
    assert main(["graph", str(REPO / "tests/blox_inspect/models/mlp.py"), "-o", str(out)]) == 0
    names = {t.text for t in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}title")}
    assert {"net/mlp/l1", "net/mlp/drop", "net/mlp/l2", "cluster_net/mlp", "input_0", "output_0"} <= names
    assert {"input_0->net/mlp/l1", "net/mlp/l1->net/mlp/drop", "net/mlp/l2->output_0"} <= names  # edge titles


def test_params_from_a_checkpoint_header(tmp_path):
    import jax

    import blox as bx
    from blox_inspect.load.model_file import load_model

    model = str(REPO / "tests/blox_inspect/models/mlp.py")
    ckpt = tmp_path / "mlp.safetensors"
    bx.save(ckpt, load_model(model).init(0, jax.numpy.ones((4, 16))))
    out = tmp_path / "mlp.dot"
    assert main(["graph", model, "--params", str(ckpt), "-o", str(out)]) == 0
    assert "params 544" in out.read_text()  # l1: 16*32 + 32
