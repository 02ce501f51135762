"""blox_inspect.load.checkpoints: lazy reads, a module tree rebuilt from path keys, model matching."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tui_reports import gpt_params, gpt_report

import blox as bx
from blox_inspect import InspectError
from blox_inspect.load.checkpoints import CheckpointReader, match_checkpoint, report_from_checkpoint


def test_report_from_checkpoint_rebuilds_the_tree(tmp_path):
    report = gpt_report(2)
    f = tmp_path / "gpt.safetensors"
    bx.save(f, gpt_params(report))
    r = report_from_checkpoint(CheckpointReader(f))
    assert r.root == "gpt" and not r.abstract
    assert r.totals.params == report.totals.params
    assert r.totals.param_bytes == report.totals.param_bytes
    got = {m.path: (m.params, sorted(m.children)) for m in r.modules}
    want = {m.path: (m.params, sorted(m.children)) for m in report.modules}
    assert got == want
    emb = next(p for p in r.params if p.path == "gpt/embed/embedding")
    assert emb.metadata == {"sharding": [None, "model"]} and emb.shape == [64, 8]


def test_reads_one_tensor_and_keys(tmp_path):
    f = tmp_path / "c.safetensors"
    key = jax.random.key(3)
    params = bx.Params({("a", "w"): bx.Param(jnp.arange(6.0).reshape(2, 3)), ("b", "seed"): bx.Param(key, False)})
    bx.save(f, params)
    reader = CheckpointReader(f)
    np.testing.assert_array_equal(reader.read("a/w"), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(reader.read("b/seed").ravel(), np.asarray(jax.random.key_data(key)).ravel())
    r = report_from_checkpoint(reader)
    # two top-level names: a root named after the file holds them
    assert r.root == "" and r.modules[0].name == "c.safetensors"
    assert sorted(r.module("").children) == ["a", "b"]
    assert r.module("b").trainable_params == 0


def test_match_checkpoint_lists_every_difference(tmp_path):
    report = gpt_report(1)
    params = gpt_params(report)
    params = bx.Params({k: v for k, v in params.items() if k != ("gpt", "head", "bias")}).unlocked()
    params = params.set(("gpt", "extra", "w"), bx.Param(jnp.ones(2)))
    params = params.set(("gpt", "embed", "embedding"), bx.Param(jnp.ones((10, 8))))
    f = tmp_path / "c.safetensors"
    bx.save(f, params)
    m = match_checkpoint(report, CheckpointReader(f))
    assert m.missing == ["gpt/head/bias"]
    assert m.extra == ["gpt/extra/w"]
    assert m.changed == {"gpt/embed/embedding": "checkpoint has float32[10,8], model needs float32[64,8]"}
    assert m.summary() == "1 missing in checkpoint, 1 not in the model, 1 with another shape/dtype"
    assert m.problem("gpt/head/bias") == "missing in the checkpoint" and m.problem("gpt/head/kernel") is None


def test_corrupt_file(tmp_path):
    f = tmp_path / "x.safetensors"
    f.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json......}")
    with pytest.raises(
        InspectError, match=r"x.safetensors: not a safetensors checkpoint: the header is not valid JSON"
    ):
        CheckpointReader(f)


def test_a_checkpoint_report_and_its_rows_leave_no_reference_cycle(tmp_path):
    # Regression: recursive closures in _report and rows() kept every module (and, through them, the
    # header) alive until a full collection; for 300,000 tensors, a second of collecting at exit.
    import gc
    import weakref

    from blox_inspect.analysis.rows import table_rows

    f = tmp_path / "c.safetensors"
    bx.save(f, bx.Params({("net", str(i), "w"): bx.Param(jnp.ones(2)) for i in range(3)}))
    report = report_from_checkpoint(CheckpointReader(f))
    assert [r.label for r in table_rows(report)] == ["net", "0…2 ×3", "w"]
    module = weakref.ref(report.modules[-1])
    enabled = gc.isenabled()
    gc.disable()  # only reference counting may free them
    try:
        del report
        assert module() is None
    finally:
        if enabled:
            gc.enable()
