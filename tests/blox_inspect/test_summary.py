"""The numbers of the Report: params, FLOPs, calls, sharing, edges (not rendered text)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import blox as bx
import blox_inspect
from blox_inspect import InspectError, Report, load_model, summarize_loaded
from blox_inspect.analysis import rows as _rows

HERE = os.path.dirname(os.path.abspath(__file__))
MLP = os.path.join(HERE, "models", "mlp.py")
F32 = jnp.float32


def sds(*shape, dtype=F32):
    return jax.ShapeDtypeStruct(shape, dtype)


@pytest.fixture(scope="module")
def mlp_report():
    return summarize_loaded(load_model(MLP), train=True)


def test_mlp_params_and_flops_are_exact(mlp_report):
    r = mlp_report
    l1, l2, mlp = r.module("net/mlp/l1"), r.module("net/mlp/l2"), r.module("net/mlp")
    assert (l1.params, l2.params, mlp.params, mlp.params_own) == (16 * 32 + 32, 32 * 10 + 10, 874, 0)
    # The Rng's seed and counter are state, reported apart: params is what Keras or PyTorch would count.
    assert (r.totals.params, r.totals.trainable_params, r.totals.non_trainable_params) == (874, 874, 0)
    assert (r.totals.rng_state, r.totals.rng_state_bytes) == (2, 8 + 4)
    assert {p.path for p in r.params if p.rng_state} == {"net/rng/seed", "net/rng/counter"}
    assert r.totals.param_bytes == 874 * 4  # float32 weights; the uint32 counter and threefry key are RNG state
    assert r.totals.params_by_dtype == {"float32": 874}
    assert l1.flops == 2 * 4 * 16 * 32 + 4 * 32  # matmul + bias add
    assert l2.flops == 2 * 4 * 32 * 10 + 4 * 10
    assert mlp.flops_own == 4 * 32  # relu between the layers
    assert r.totals.flops == mlp.flops == l1.flops + l2.flops + 4 * 32
    assert r.totals.flops_xla == r.totals.flops  # XLA's own count of the same program agrees
    assert r.totals.flops_train > r.totals.flops
    assert [str(t) for t in l1.inputs] == ["float32[4,16]"] and [str(t) for t in l1.outputs] == ["float32[4,32]"]
    assert l1.config["output_size"] == "32" and l1.config["rng"] == "net/rng"
    assert [m.path for m in r.modules] == ["net/rng", "net/mlp", "net/mlp/l1", "net/mlp/drop", "net/mlp/l2"]
    assert [m.depth for m in r.modules] == [0, 0, 1, 1, 1]
    assert r.module("net/rng").calls == 0  # abstract params exist already, so no init draws keys


def test_memory_and_train_memory_estimate(mlp_report):
    mem = mlp_report.totals.memory
    assert mem["argument"] > 0 and mem["peak"] >= mem["argument"]
    est = mlp_report.totals.train_memory_estimate
    assert est["grads"] == 874 * 4 and est["optimizer"] == 2 * 874 * 4
    # model input 4x16 + outputs of the leaf calls l1 (4x32), drop (4x32), l2 (4x10), float32
    assert est["activations"] == 4 * (4 * 16 + 4 * 32 + 4 * 32 + 4 * 10)
    assert est["total"] == est["params"] + est["grads"] + est["optimizer"] + est["activations"]


def test_edges_follow_dataflow_through_plain_jax(mlp_report):
    got = {(e.src, e.src_port, e.dst, e.dst_port, str(e.tensor)) for e in mlp_report.edges}
    assert got == {
        ("<input:0>", "out", "net/mlp", "in", "float32[4,16]"),
        ("net/mlp", "in", "net/mlp/l1", "in", "float32[4,16]"),
        ("net/mlp/l1", "out", "net/mlp/drop", "in", "float32[4,32]"),
        ("net/mlp/drop", "out", "net/mlp/l2", "in", "float32[4,32]"),  # through jax.nn.relu
        ("net/mlp/l2", "out", "net/mlp", "out", "float32[4,10]"),
        ("net/mlp", "out", "<output:0>", "in", "float32[4,10]"),
    }


def test_json_round_trip(mlp_report):
    again = Report.from_json(mlp_report.to_json())
    assert again == mlp_report
    assert isinstance(again.modules[0], type(mlp_report.modules[0]))


def test_matmul_chain_flops_equal_the_analytic_count():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    n = g / "chain"
    sizes = [16, 32, 8, 64]
    chain = bx.Sequential(n, [bx.Linear(n / f"l{i}", s, rng, use_bias=False) for i, s in enumerate(sizes[1:])])
    r = blox_inspect.summary(chain, sds(4, 16), train=True)
    expect = [2 * 4 * a * b for a, b in zip(sizes, sizes[1:])]
    assert [r.module(f"net/chain/l{i}").flops for i in range(3)] == expect
    assert r.totals.flops == sum(expect) == r.totals.flops_xla
    # Backward: every layer needs dW (one more matmul); all but the first also need dx.
    assert [r.module(f"net/chain/l{i}").flops_train for i in range(3)] == [2 * expect[0], 3 * expect[1], 3 * expect[2]]


class Repeat(bx.Module):
    """Applies one Linear ``n`` times with lax.scan."""

    def __init__(self, graph, n, rng):
        super().__init__(graph)
        self.n = n
        self.inner = bx.Linear(graph / "inner", 8, rng, use_bias=False)

    def __call__(self, params, x):
        def body(h, _):
            h, _ = self.inner(params, h)
            return jnp.tanh(h), None

        x, _ = jax.lax.scan(body, x, None, length=self.n)
        return x, params


def test_scan_flops_are_multiplied_by_trip_count():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    model = Repeat(g / "rep", 7, rng)
    x = sds(2, 8)
    # Create the kernel outside the scan (abstractly: nothing is allocated).
    params = jax.eval_shape(lambda x: model.inner(bx.seed_all(g, bx.Params(), 0), x)[1], x)
    r = blox_inspect.summary(model, x, params=params.locked(), xla=False)
    assert r.module("net/rep/inner").flops == 7 * 2 * 2 * 8 * 8
    assert r.module("net/rep").flops_own == 7 * 2 * 8  # tanh
    assert r.module("net/rep/inner").calls == 1  # traced once inside the loop body
    src = {(e.src, e.dst) for e in r.edges}
    assert ("net/rep", "net/rep/inner") in src  # edges reach into the scan body


def test_while_loop_is_flagged_in_notes():
    class Until(bx.Module):
        def __call__(self, params, x):
            return jax.lax.while_loop(lambda c: jnp.sum(c) < 100.0, lambda c: c * 2.0, x), params

    g = bx.Graph("net")
    r = blox_inspect.summary(Until(g / "until"), sds(3), xla=False)
    assert any("while_loop" in n and "net/until" in n for n in r.notes)


class Two(bx.Module):
    """Calls an injected module (bound elsewhere) and its own child."""

    def __init__(self, graph, shared, rng):
        super().__init__(graph)
        self.shared = shared
        self.own = bx.Linear(graph / "own", 8, rng)

    def __call__(self, params, x):
        x, params = self.shared(params, x)
        return self.own(params, x)


def test_shared_module_is_counted_once():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    shared = bx.Linear(g / "shared", 8, rng)
    a, b = Two(g / "a", shared, rng), Two(g / "b", shared, rng)
    top = g / "top"
    model = bx.Sequential(top, [a, b])
    r = blox_inspect.summary(model, sds(2, 8), xla=False)
    s = r.module("net/shared")
    assert s.shared and s.calls == 2 and {c.caller for c in s.call_info} == {"net/a", "net/b"}
    assert not r.module("net/a/own").shared
    assert r.module("net/a").params == 72  # only its own child: the injected layer is bound elsewhere
    assert r.totals.trainable_params == 3 * 72
    assert r.module("net/shared").flops == 2 * (2 * 2 * 8 * 8 + 16)  # both calls land on its scope


class Tied(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.embed = bx.Embed(graph / "embed", 50, 16, rng)
        self.norm = bx.LayerNorm(graph / "norm")

    def __call__(self, params, ids):
        h, params = self.embed(params, ids)
        h, params = self.norm(params, h)
        return self.embed.attend(params, h)


def test_tied_embedding_is_counted_once():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    r = blox_inspect.summary(Tied(g / "lm", rng), sds(2, 5, dtype=jnp.int32), xla=False)
    emb = r.module("net/lm/embed")
    assert emb.params == 50 * 16 and emb.calls == 2
    assert [c.method for c in emb.call_info] == ["__call__", "attend"]
    assert r.totals.trainable_params == 50 * 16 + 2 * 16
    # attend's matmul; the lookup only normalises its 10 ids (compare, add, select), the gather is free
    assert emb.flops == 2 * 2 * 5 * 16 * 50 + 3 * 2 * 5
    assert not emb.shared  # called by its own parent only
    assert ("net/lm/norm", "net/lm/embed") in {(e.src, e.dst) for e in r.edges}


class Block(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.fc = bx.Linear(graph / "fc", 8, rng)
        self.norm = bx.LayerNorm(graph / "norm")

    def __call__(self, params, x):
        h, params = self.fc(params, x)
        h, params = self.norm(params, h)
        return x + h, params


def _stack(n_blocks, odd_one=False):
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    node = g / "blocks"
    layers = []
    for i in range(n_blocks):
        if odd_one and i == 2:
            layers.append(bx.Linear(node / "odd", 8, rng))
        layers.append(Block(node / f"b{i}", rng))
    return blox_inspect.summary(bx.Sequential(node, layers), sds(2, 8), xla=False)


def test_identical_blocks_fold_into_one_row():
    r = _stack(5)
    rows = _rows.rows(r)
    heads = [row for row in rows if row.repeat > 1]
    assert [(h.module.path, h.repeat, h.label) for h in heads] == [("net/blocks/b0", 5, "b0…b4 ×5")]
    assert [row.module.path for row in rows] == [
        "net/rng",
        "net/blocks",
        "net/blocks/b0",
        "net/blocks/b0/fc",
        "net/blocks/b0/norm",
    ]
    assert len(_rows.rows(r, fold=False)) == 2 + 5 * 3
    # A different module in between breaks the run: b0 b1 | odd | b2 b3 b4 folds as two runs (the diagram's
    # rule: two or more identical consecutive blocks).
    r = _stack(5, odd_one=True)
    assert [(row.module.name, row.repeat) for row in _rows.rows(r, depth=2)] == [
        ("rng", 1),
        ("blocks", 1),
        ("b0", 2),
        ("odd", 1),
        ("b2", 3),
    ]
    from blox_inspect.analysis.folds import find_folds

    # One fold rule: the table folds exactly the runs the diagram folds.
    runs = {tuple(f.members) for f in find_folds(r).values()}
    assert runs == {tuple(row.members) for row in _rows.rows(r) if row.repeat > 1}


def test_depth_folds_rows_but_never_totals():
    r = _stack(3)
    shown = {d: _rows.rows(r, depth=d, fold=False) for d in (1, 2, None)}
    assert [row.module.path for row in shown[1]] == ["net/rng", "net/blocks"]
    assert len(shown[2]) == 5 and len(shown[None]) == 11
    for rows in shown.values():
        tops = [row.module for row in rows if row.level == 0]
        assert sum(m.params for m in tops) == r.totals.params
        assert sum(m.flops for m in tops) == r.totals.flops
    from blox_inspect.renderers import render

    # The totals section (notes after it say which rows are folded, so they vary with depth).
    texts = [render(r, "markdown", depth=d).split("## Totals")[1].split("## Notes")[0].strip() for d in (1, 2, None)]
    assert texts[0] == texts[1] == texts[2]


def test_folded_rows_show_the_totals_of_all_their_blocks():
    r = _stack(5)
    shown = _rows.rows(r, depth=2)
    folded = [row for row in shown if row.repeat > 1]
    assert [(row.label, row.scale) for row in folded] == [("b0…b4 ×5", 5)]
    # Siblings at one level add up to their parent, folded or not: a folded table reads like the full one.
    blocks = next(row for row in shown if row.module.name == "blocks")
    children = [row for row in shown if row.level == blocks.level + 1]
    assert sum(row.total("params") for row in children) == blocks.total("params") == blocks.module.params
    assert sum(row.total("flops") for row in children) == blocks.module.flops
    from blox_inspect.renderers import render

    assert _rows.FOLD_NOTE in render(r, "markdown", depth=2)
    assert _rows.FOLD_NOTE not in render(r, "markdown", depth=2, fold=False)


class Broken(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.a = bx.Linear(graph / "a", 8, rng)
        self.b = bx.Linear(graph / "b", 4, rng)

    def __call__(self, params, x):
        h, params = self.a(params, x)
        return self.b(params, h[:, :3] @ jnp.ones((5, 8)))


def test_shape_error_names_the_innermost_module_and_restores_the_hook():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    model = Broken(g / "broken", rng)
    params = bx.seed_all(g, bx.Params(), 0)
    seen = []

    def spy(call, proceed):
        seen.append(call.module.scope_name)
        return proceed(call.params, *call.args, **call.kwargs)

    with bx.observe_calls(spy):
        with pytest.raises(InspectError, match=r"net/broken \(Broken\) failed.*\n.*float32\[2,16\].*\n.*TypeError"):
            blox_inspect.summary(model, sds(2, 16), params=params.unlocked(), xla=False)
        # The summary's own observer is gone after the failure; ours still sees calls, once each.
        seen.clear()
        model.a(params.unlocked(), jnp.ones((2, 16)))
    assert seen == ["net/broken/a", "net/rng", "net/rng"]  # kernel and bias draw a key each


def test_shape_error_inside_a_leaf_layer():
    class Bad(bx.Module):
        def __call__(self, params, x):
            return jnp.reshape(x, (7, -1)), params

    g = bx.Graph("net")
    node = g / "seq"
    model = bx.Sequential(node, [Bad(node / "bad")])
    with pytest.raises(
        InspectError, match=r"net/seq/bad \(Bad\) failed.*\n  inputs that flowed into it: float32\[2,3\]"
    ):
        blox_inspect.summary(model, sds(2, 3), xla=False)


def test_checkpoint_header_supplies_the_params(tmp_path):
    loaded = load_model(MLP)
    # Concrete params of the right structure, without compiling the initialisers (slow on CPU).
    params = jax.tree.map(
        lambda s: (
            jax.random.key(0) if jax.dtypes.issubdtype(s.dtype, jax.dtypes.prng_key) else np.zeros(s.shape, s.dtype)
        ),
        loaded.abstract_params(),
    )
    file = str(tmp_path / "mlp.safetensors")
    bx.save(file, params)
    r = summarize_loaded(loaded, params_file=file, xla=False)
    assert r.totals.params == 874 and r.abstract
    small = bx.Params({k: v for k, v in params.items() if k[-1] != "bias"}).locked()
    bad = str(tmp_path / "small.safetensors")
    bx.save(bad, small)
    # The match report lists what is missing before the forward pass is traced.
    with pytest.raises(InspectError, match=r"small.safetensors: does not match the model: 2 missing.*\n.*l1/bias"):
        summarize_loaded(loaded, params_file=bad, xla=False)
    with pytest.raises(InspectError, match="no such checkpoint"):
        summarize_loaded(loaded, params_file=str(tmp_path / "nope.safetensors"))


def test_stats_read_the_values_only_when_asked(tmp_path):
    loaded = load_model(MLP)
    rng = np.random.default_rng(0)
    params = jax.tree.map(
        lambda s: (
            jax.random.key(0)
            if jax.dtypes.issubdtype(s.dtype, jax.dtypes.prng_key)
            else rng.normal(size=s.shape).astype(s.dtype)
        ),
        loaded.abstract_params(),
    )
    kernel = np.asarray(params["net/mlp/l1/kernel"].value)
    kernel[0, :3] = [0.0, np.nan, np.inf]
    params = params.set(("net", "mlp", "l1", "kernel"), bx.Param(kernel))
    file = str(tmp_path / "mlp.safetensors")
    bx.save(file, params)
    plain = summarize_loaded(loaded, params_file=file, xla=False)
    assert all(p.stats is None for p in plain.params)
    r = summarize_loaded(loaded, params_file=file, xla=False, stats=True)
    got = next(p.stats for p in r.params if p.path == "net/mlp/l1/kernel")
    finite = kernel[np.isfinite(kernel)].astype(np.float64)
    assert (got["zeros"], got["nans"], got["infs"]) == (1, 1, 1)
    assert got["mean"] == pytest.approx(finite.mean()) and got["max"] == pytest.approx(finite.max())
    assert got["l2"] == pytest.approx(np.linalg.norm(finite))
    assert next(p.stats for p in r.params if p.path == "net/rng/seed") is None  # keys have no statistics
    assert Report.from_json(r.to_json()) == r
    from blox_inspect.renderers import render

    assert "## Parameter statistics" in render(r, "markdown") and "net/mlp/l1/kernel" in render(r, "markdown")
    with pytest.raises(InspectError, match="statistics need real values"):
        summarize_loaded(loaded, xla=False, stats=True)


def test_summary_api_renders_and_has_a_short_repr(mlp_report):
    from rich.console import Console

    from blox_inspect.renderers.table import render_rich

    text = blox_inspect.render(mlp_report)
    assert "net/mlp" not in text.splitlines()[0] and "l1" in text and "Train-step FLOPs" in text
    console = Console(width=150, record=True, color_system=None)
    console.print(render_rich(mlp_report))
    assert "Linear(output_size=32" in console.export_text()
    assert repr(mlp_report).startswith("<Report ") and len(repr(mlp_report)) < 200 and "\n" not in repr(mlp_report)


def test_concrete_inputs_are_not_needed_but_accepted():
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    r = blox_inspect.summary(bx.Linear(g / "l", 3, rng), np.ones((2, 5), np.float32), xla=False)
    assert r.totals.trainable_params == 18 and r.inputs[0].shape == [2, 5]


def test_gpt2_small_fixture_matches_the_published_count_and_folds():
    # Our own GPT-2 small fixture (the reference examples/ models are tested when they land).
    r = summarize_loaded(load_model(os.path.join(HERE, "models", "gpt2_small.py")), xla=False)
    assert r.totals.trainable_params == 124_439_808
    rows = _rows.rows(r, depth=2)
    assert [(row.label, row.module.params) for row in rows if row.repeat > 1] == [("h0…h11 ×12", 7_087_872)]
    blocks = sum(m.flops for m in r.modules if m.parent == "net/gpt2" and m.name.startswith("h"))
    # 12 blocks of 2*T*(12*d^2) matmul FLOPs plus attention, the tied head 2*T*d*V, all inside modules
    assert r.module("net/gpt2/wte").flops >= 2 * 1024 * 768 * 50257
    assert blocks > 12 * 2 * 1024 * 12 * 768 * 768
    assert r.totals.flops == r.module("net/gpt2").flops


class Transformed(bx.Module):
    """Module calls under jax.checkpoint, jax.jit and jax.vmap."""

    def __init__(self, graph, rng):
        super().__init__(graph)
        self.a = bx.Linear(graph / "a", 8, rng)
        self.b = bx.Linear(graph / "b", 8, rng)

    def __call__(self, params, x):
        h, params = self.a(params, x)  # plain calls first, so that init creates the params
        _, params = self.b(params, h)
        h = jax.checkpoint(lambda p, x: self.a(p, x)[0])(params, x)
        h = jax.jit(lambda p, x: self.b(p, x)[0])(params, h)
        return jax.vmap(lambda row: self.b(params, row)[0])(h), params


def test_calls_and_edges_under_checkpoint_jit_and_vmap():
    for _ in range(2):  # a second summary must not read tags JAX cached from the first
        g = bx.Graph("net")
        r = blox_inspect.summary(Transformed(g / "t", bx.Rng(g / "rng")), sds(2, 8), train=True)
        assert (r.module("net/t/a").calls, r.module("net/t/b").calls) == (2, 3)
        assert r.module("net/t/a").flops == 2 * (2 * 2 * 8 * 8 + 16)
        assert r.module("net/t/b").call_info[2].inputs[0].shape == [8]  # inside vmap: one row
        got = {(e.src, e.src_port, e.dst, e.dst_port) for e in r.edges}
        assert ("net/t/a", "out", "net/t/b", "in") in got  # out of checkpoint, into jit
        assert ("net/t/b", "out", "net/t/b", "in") in got  # jit's output into the vmapped call
        assert ("net/t/b", "out", "net/t", "out") in got
        assert r.totals.flops_train > r.totals.flops


def test_failure_in_training_mode_names_the_module():
    class TrainBug(bx.Module):
        def __call__(self, params, x, *, is_training):
            return (x @ jnp.ones((5, 5)) if is_training else x), params

    g = bx.Graph("net")
    node = g / "seq"
    model = bx.Sequential(node, [TrainBug(node / "bug")])
    assert blox_inspect.summary(model, sds(2, 3), is_training=False, xla=False).totals.flops == 0
    with pytest.raises(InspectError, match=r"net/seq/bug \(TrainBug\) failed while tracing the train step"):
        blox_inspect.summary(model, sds(2, 3), train=True, is_training=False, xla=False)


def test_xla_auto_skips_large_programs(monkeypatch):
    from blox_inspect.analysis import summary as _summary

    loaded = load_model(MLP)
    monkeypatch.setattr(_summary, "XLA_AUTO_MAX_EQNS", 3)
    r = summarize_loaded(loaded, xla=None)
    assert r.totals.flops_xla is None and r.totals.memory == {}
    assert any("XLA cost and memory analysis skipped" in n and "Pass --xla" in n for n in r.notes)
    assert summarize_loaded(loaded, xla=True).totals.flops_xla == r.totals.flops  # forced


def test_tag_primitive_is_an_identity_under_every_transform():
    from blox_inspect.analysis.flops import count_flops
    from blox_inspect.analysis.trace import tag

    def f(x):
        return jnp.sum(tag(x, 0, "in", 0) ** 2)

    x = jnp.arange(3.0)
    assert float(jax.jit(f)(x)) == 5.0
    np.testing.assert_allclose(jax.grad(f)(x), 2 * x)
    np.testing.assert_allclose(jax.vmap(jax.grad(f))(jnp.stack([x, x])), 2 * jnp.stack([x, x]))
    (ct,) = jax.linear_transpose(lambda v: tag(v, 0, "out", 0), x)(jnp.ones(3))
    np.testing.assert_allclose(ct, jnp.ones(3))
    assert count_flops(jax.make_jaxpr(lambda v: tag(v, 0, "in", 0))(x)).total == 0
