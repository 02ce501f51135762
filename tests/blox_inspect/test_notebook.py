"""Notebook display: a short repr, and HTML / markdown that Jupyter shows as real tables (folded like the terminal)."""

from __future__ import annotations

import pathlib
from html.parser import HTMLParser

import blox_inspect
from blox_inspect.analysis.cost import analyse_cost
from blox_inspect.load.model_file import load_model

HERE = pathlib.Path(__file__).parent
MLP = str(HERE / "models" / "mlp.py")
MATMUL = str(HERE / "models" / "matmul.py")


class _Cells(HTMLParser):
    """Collects table rows as lists of cell texts, and checks that tags nest."""

    def __init__(self):
        super().__init__()
        self.rows, self.stack, self._row, self._cell = [], [], None, None

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)
        if tag == "tr":
            self._row = []
        if tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag in ("td", "th"):
            self._row.append(self._cell.strip())
            self._cell = None
        if tag == "tr":
            self.rows.append(self._row)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _parse(text: str) -> list[list[str]]:
    p = _Cells()
    p.feed(text)
    p.close()
    assert p.stack == [], p.stack
    return p.rows


def test_report_shows_as_an_html_table_folded_like_the_terminal():
    loaded = load_model(MLP)
    report = blox_inspect.summarize_loaded(loaded, xla=False)
    assert len(repr(report)) < 200 and "874 params" in repr(report)
    rows = _parse(report._repr_html_())
    head = rows[0]
    assert head[:4] == ["Module", "Type", "Input -> Output", "Params"]
    by_name = {r[0].replace("\xa0", ""): r for r in rows[1:] if len(r) == len(head)}
    assert by_name["l1"][3] == "544" and by_name["mlp"][3] == "874"
    totals = {r[0]: r[1] for r in rows if len(r) == 2}
    assert totals["Parameters"] == "874" and totals["RNG state (not params)"] == "2 values, 12 B"
    md = report._repr_markdown_()
    assert md.startswith("# ") and "| l1 |" not in md and "&nbsp;&nbsp;l1 |" in md


def test_a_folded_run_is_one_bold_row(tmp_path):
    src = tmp_path / "stack.py"
    src.write_text(
        "import jax.numpy as jnp, blox as bx\n"
        "def build():\n"
        "    g = bx.Graph('net'); rng = bx.Rng(g / 'rng')\n"
        "    n = g / 'stack'\n"
        "    layers = [bx.Linear(n / f'l{i}', 8, rng) for i in range(6)]\n"
        "    return bx.Sequential(n, layers), jnp.zeros((2, 8))\n"
    )
    report = blox_inspect.summarize_loaded(load_model(str(src)), xla=False)
    html = report._repr_html_()
    rows = _parse(html)
    folded = [r for r in rows if r and "×6" in r[0]]
    assert len(folded) == 1 and folded[0][3] == "432"  # 6 x (8*8 + 8): the totals of all six
    assert '<tr class="fold">' in html


def test_cost_report_repr_and_html():
    r = analyse_cost(load_model(MATMUL), device=None)
    assert len(repr(r)) < 200 and "65,536 FLOPs" in repr(r)
    rows = _parse(r._repr_html_())
    flops = [row for row in rows if row and row[0] == "FLOPs"]
    assert flops and flops[0][1:4] == ["65.5K", "65.5K", "65.5K"]


def test_profile_report_repr_and_html(tmp_path):
    from blox_inspect.analysis.profile import profile_loaded

    r = profile_loaded(load_model(MATMUL), steps=1, warmup=0, trace_dir=str(tmp_path))
    assert len(repr(r)) < 200 and repr(r).startswith("<ProfileReport")
    rows = _parse(r._repr_html_())
    assert rows[0][:3] == ["Module", "Type", "Self"]
    assert any(row and row[0].replace("\xa0", "").endswith("proj") for row in rows[1:])
    assert r._repr_markdown_().startswith("# ")
