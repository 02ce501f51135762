"""blox_inspect.analysis.folds: the module-tree index and the runs of identical numbered blocks."""

import dataclasses

import jax.numpy as jnp

import blox as bx
from blox_inspect.analysis.folds import ModuleIndex, find_folds
from blox_inspect.analysis.rows import table_rows
from blox_inspect.load.checkpoints import CheckpointReader, report_from_checkpoint


def _checkpoint_report(tmp_path, params: dict):
    f = tmp_path / "c.safetensors"
    bx.save(f, bx.Params(params))
    return report_from_checkpoint(CheckpointReader(f))


def test_index_trusts_listed_children_then_adds_the_ones_a_parent_forgets(tmp_path):
    report = _checkpoint_report(tmp_path, {("net", n, "w"): bx.Param(jnp.ones(2)) for n in "abc"})
    net = report.module("net")
    # 'net' lists a module the report lacks and forgets 'net/b': the index drops the one, appends the other.
    net.children[:] = ["net/c", "ghost", "net/a"]
    index = ModuleIndex(report)
    assert index.children["net"] == ["net/c", "net/a", "net/b"]
    assert index.children[None] == ["net"] and index.parent["net/b"] == "net"
    assert index.by_tuple[("net", "b")] == "net/b" and index.known("net/b/w") == "net/b"


def test_checkpoint_folded_rows_add_up_to_the_unfolded_rows_they_stand_for(tmp_path):
    # Blocks 0..3 alike (odd 'sub's frozen in each), 4 with another shape, then a head: one ×4 run.
    params = {("net", str(i), "sub0", "w"): bx.Param(jnp.ones(2)) for i in range(4)}
    params |= {("net", str(i), "sub1", "w"): bx.Param(jnp.ones(3), False) for i in range(4)}
    params |= {("net", "4", "sub0", "w"): bx.Param(jnp.ones(5)), ("net", "4", "sub1", "w"): bx.Param(jnp.ones(3))}
    params[("net", "head", "w")] = bx.Param(jnp.ones(7))
    report = _checkpoint_report(tmp_path, params)
    folds = find_folds(report)
    assert {f.label for f in folds.values()} == {"0..3"} and folds["net/2"].members == [f"net/{i}" for i in range(4)]

    folded = table_rows(report)
    assert [(r.level, r.label) for r in folded] == [
        (0, "net"),
        (1, "0…3 ×4"),
        (2, "sub0"),
        (3, "w"),
        (2, "sub1"),
        (3, "w"),
        (1, "4"),
        (2, "sub0"),
        (3, "w"),
        (2, "sub1"),
        (3, "w"),
        (1, "head"),
        (2, "w"),
    ]
    # The plain reference: every block on its own row; a folded row's cells are those of its four blocks summed.
    plain = table_rows(report, fold=False)
    assert len(plain) == len(folded) + 3 * 5
    blocks = [r for r in plain if r.level == 1 and r.label in ("0", "1", "2", "3")]
    assert [r.cells for r in blocks] == [["", "", "5", "14.3%", "3", "20 B"]] * 4
    assert folded[1].cells == ["", "", "20", "57.1%", "12", "80 B"]  # 4 x 5 params of 35, 4 x 3 frozen
    assert folded[3].cells[:3] == ["float32", "[2]", "8"] and folded[5].cells[4] == "12"
    assert [dataclasses.astuple(r) for r in folded[6:]] == [dataclasses.astuple(r) for r in plain[21:]]
