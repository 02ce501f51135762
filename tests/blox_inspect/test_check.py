"""blox-inspect check: the broken-model corpus, the good twins, the runner options and the CLI."""

import json
import pathlib
import re

import jax
import pytest

import blox as bx
import blox_inspect
from blox_inspect import cli
from blox_inspect.checks import CODES, CheckContext, exit_code, parse_mesh, run_checks
from blox_inspect.common.errors import InspectError
from blox_inspect.load.model_file import load_model

HERE = pathlib.Path(__file__).parent
MODELS = HERE / "check_models"
ROOT = HERE.parent.parent

# Each deliberately broken model -> the exact codes check must report (and no others).
EXPECTED = {
    "rng_reuse_bad.py": {"BX101"},
    "rng_shared_key_bad.py": {"BX101"},
    "rng_fold_in_seed_bad.py": {"BX101"},
    "rng_loop_bad.py": {"BX102"},
    "rng_vmap_bad.py": {"BX103"},
    "dead_module_bad.py": {"BX201"},
    "dead_param_bad.py": {"BX202"},
    "unused_input_bad.py": {"BX203"},
    "no_grad_bad.py": {"BX301"},
    "frozen_weight_bad.py": {"BX302"},
    "stop_gradient_bad.py": {"BX303"},
    "float64_bad.py": {"BX402"},
    "param_upcast_bad.py": {"BX403"},
    "activation_upcast_bad.py": {"BX404"},
    "counter_bad.py": {"BX405"},
    "weak_param_bad.py": {"BX406"},
    "captured_const_bad.py": {"BX501"},
    "sharding_bad.py": {"BX604"},
    "norm_no_eps_bad.py": {"BX701"},
    "l2norm_bad.py": {"BX701"},
    "softmax_bad.py": {"BX702"},
}
GOOD = sorted(p.name for p in MODELS.glob("*_good.py"))


def check(name, mesh=None, **kwargs):
    return run_checks(CheckContext(load_model(str(MODELS / name)), parse_mesh(mesh)), **kwargs)


def test_every_bad_model_has_a_good_twin():
    assert sorted(EXPECTED) == sorted(set(p.name for p in MODELS.glob("*_bad.py")))
    assert {n.replace("_bad", "_good") for n in EXPECTED} <= set(GOOD)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_check_finds_the_planted_bug(name):
    findings = check(name)
    assert {f.code for f in findings} == EXPECTED[name], [f.message for f in findings]
    for f in findings:
        assert f.severity == CODES[f.code].severity
        assert f.message.endswith(".") and f.fix.endswith(".")


@pytest.mark.parametrize("name", GOOD + ["../models/mlp.py"])
def test_good_twins_have_no_findings(name):
    assert check(name) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt2.py", "vit.py", "llama.py", "resnet50.py"])
def test_reference_architectures_have_no_findings(name):
    loaded = load_model(str(ROOT / "examples" / name))
    assert run_checks(CheckContext(loaded)) == []


def test_sharded_llama_fits_the_mesh():
    findings = run_checks(CheckContext(load_model(str(ROOT / "examples" / "llama.py")), parse_mesh("data=8,model=4")))
    assert findings == []


def test_float64_with_x64_enabled_is_an_error():
    with jax.enable_x64(True):
        findings = check("float64_bad.py")
    assert [(f.code, f.severity, f.path) for f in findings] == [("BX401", "error", "net/block")]


def test_sharding_against_a_mesh():
    findings = check("sharding_bad.py", mesh="data=8,model=4")
    got = {(f.code, f.path) for f in findings}
    assert got == {
        ("BX601", "net/block/up"),  # 10 columns over 4 'model' shards
        ("BX602", "net/block/embed"),  # 2 MiB replicated while 'model' shards its neighbours
        ("BX603", "net/block/down"),  # 'expert' is not a mesh axis
        ("BX604", "net/block/up"),  # bias spec longer than the bias
    }
    assert check("sharding_good.py", mesh="data=8,model=4") == []


def test_unannotated_model_gets_one_info_with_a_mesh():
    loaded = load_model(str(MODELS / "dead_module_good.py"))
    loaded.file_settings["BLOX_CHECK_REPLICATED_BYTES"] = 64
    (f,) = run_checks(CheckContext(loaded, parse_mesh("data=2,model=2")))
    assert (f.code, f.severity, f.path) == ("BX605", "info", "")
    assert "replicated on each of the 4 devices" in f.message
    assert run_checks(CheckContext(loaded)) == []  # no mesh, no sharding opinion


def test_bx301_and_bx303_name_the_param_and_the_cut():
    (f,) = check("stop_gradient_bad.py")
    assert "net/block/scale" in f.message and "stop_gradient in net/block" in f.message
    (f,) = check("no_grad_bad.py")
    assert f.path == "net/block" and "net/block/scale" in f.message


def test_key_reuse_inside_different_cond_branches_is_fine():
    from blox_inspect.analysis.flat_program import FlatProgram as Program
    from blox_inspect.checks.rng import reuse_findings

    def f(key, pred, x):
        return jax.lax.cond(pred, lambda: jax.random.normal(key, x.shape), lambda: jax.random.uniform(key, x.shape))

    key = jax.random.key(0)
    closed = jax.make_jaxpr(f)(key, True, jax.numpy.ones(3))
    assert list(reuse_findings(Program.build(closed, []))) == []
    closed = jax.make_jaxpr(lambda k, x: jax.random.normal(k, x.shape) + jax.random.uniform(k, x.shape))(
        key, jax.numpy.ones(3)
    )
    assert [f.code for f in reuse_findings(Program.build(closed, []))] == ["BX101"]


def test_dependencies_follow_scan_carries_and_while_predicates():
    from blox_inspect.analysis.flat_program import FlatProgram as Program

    def f(a, b, c, d):
        carry, _ = jax.lax.scan(lambda h, x: (h * x, None), a, b)  # out depends on a and b
        w = jax.lax.while_loop(lambda v: v[0] < c, lambda v: v * 2.0, jax.numpy.ones(2))  # on c
        return carry, w, jax.lax.stop_gradient(d) * 2.0

    x = jax.numpy.ones(2)
    prog = Program.build(jax.make_jaxpr(f)(x, jax.numpy.ones((3, 2)), 1.0, x), [])
    a, b, c, d = prog.invars
    out_carry, out_w, out_d = prog.outvars
    assert {a, b} <= prog.reach([out_carry]) and c not in prog.reach([out_carry])
    assert c in prog.reach([out_w]) and c not in prog.reach([out_w], differentiable=True)
    assert d in prog.reach([out_d]) and d not in prog.reach([out_d], differentiable=True)


def test_ignore_option_and_model_ignore_list():
    assert check("softmax_bad.py", ignore=["bx702"]) == []
    loaded = load_model(str(MODELS / "softmax_bad.py"))
    loaded.file_settings["BLOX_CHECK_IGNORE"] = ["BX702"]
    assert run_checks(CheckContext(loaded)) == []


def test_unknown_ignore_code_is_an_error():
    with pytest.raises(InspectError, match=r"unknown check code 'BX999' in --ignore\. Known codes: BX001, BX101"):
        check("softmax_bad.py", ignore=["BX999"])


def test_bad_mesh_is_an_error():
    with pytest.raises(InspectError, match=r"--mesh 'data8': expected comma-separated NAME=SIZE pairs"):
        parse_mesh("data8")
    # Regression: check's own parser kept the last size of a repeated axis without a word.
    with pytest.raises(InspectError, match=r"--mesh 'data=2,data=4'.*distinct names.*'data=4'"):
        parse_mesh("data=2,data=4")
    # Sharding checks need no devices, so the compile-simulation limit of `cost` does not apply.
    assert parse_mesh("data=4096,model=2") == {"data": 4096, "model": 2}


def test_forward_and_train_step_are_traced_once():
    """The model's code runs once per program: init, forward, the gradients' program, the train step."""
    from blox_inspect.analysis.cost import analyse_cost
    from blox_inspect.analysis.summary import summarize_loaded
    from blox_inspect.analysis.trace import Traces

    loaded = load_model(str(MODELS / "transformer_good.py"))
    root = loaded.model
    runs = []

    def count(call, proceed):
        if call.module is root:
            runs.append(call.method)
        return proceed(call.params, *call.args, **call.kwargs)

    traces = Traces(loaded)
    with bx.observe_calls(count):
        summarize_loaded(loaded, train=True, xla=False, traces=traces)
        assert len(runs) == 3  # init, forward, train step
        analyse_cost(loaded, device=None, traces=traces)
        analyse_cost(loaded, train=True, device=None, traces=traces)
        assert len(runs) == 3  # cost reuses both programs, compiling what the summary traced
        run_checks(CheckContext(loaded, traces=traces))
    assert len(runs) == 4  # checks add only the loss-and-gradient program


def test_train_step_failure_is_reported_and_other_checks_run():
    loaded = load_model(str(MODELS / "dead_param_bad.py"))
    loaded.file_settings["BLOX_LOSS"] = lambda out, x: out.astype(jax.numpy.int32).sum()  # not differentiable
    codes = {f.code for f in run_checks(CheckContext(loaded))}
    assert codes == {"BX001", "BX202"}


def test_exit_code_follows_fail_on():
    findings = check("softmax_bad.py")  # one warning
    assert [exit_code(findings, s) for s in ("error", "warning", "info", "none")] == [0, 1, 1, 0]


def test_docs_explain_every_code_with_a_bad_and_a_good_example():
    text = (ROOT / "docs" / "checks.md").read_text()
    sections = dict(re.findall(r"^### (BX\d{3})[^\n]*\n(.*?)(?=^### |\Z)", text, flags=re.M | re.S))
    assert set(sections) == set(CODES)
    for code_, body in sections.items():
        assert "Bad:" in body and "Good:" in body and body.count("```python") >= 2, code_


def test_cli_text_groups_by_severity_and_sets_exit_code(capsys):
    rc = cli.main(["check", str(MODELS / "rng_reuse_bad.py")])
    out = capsys.readouterr().out
    assert rc == 1
    assert "1 error, 0 warnings, 0 info" in out
    assert out.index("Errors (1)") < out.index("BX101 net/block:") < out.index("fix: Draw a fresh key")
    assert cli.main(["check", str(MODELS / "softmax_bad.py")]) == 0
    assert cli.main(["check", str(MODELS / "softmax_bad.py"), "--fail-on", "warning"]) == 1


def test_cli_json_to_file(tmp_path, capsys):
    out = tmp_path / "findings.json"
    rc = cli.main(["check", str(MODELS / "dead_module_bad.py"), "-o", str(out), "--fail-on", "warning"])
    assert rc == 1 and capsys.readouterr().out == ""
    data = json.loads(out.read_text())
    assert data["counts"] == {"error": 0, "warning": 1, "info": 0}
    (f,) = data["findings"]
    assert set(f) == {"code", "severity", "path", "message", "fix"}
    assert (f["code"], f["severity"], f["path"]) == ("BX201", "warning", "net/block/proj")


def test_cli_ignore_and_errors(capsys):
    assert cli.main(["check", str(MODELS / "rng_reuse_bad.py"), "--ignore", "BX101", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []
    assert cli.main(["check", str(MODELS / "rng_reuse_bad.py"), "--ignore", "BX9"]) == 2
    assert "unknown check code 'BX9'" in capsys.readouterr().err


NUMERICS = {
    # jax's own functions guard themselves: nothing to report.
    "logsumexp": (lambda x: jax.nn.logsumexp(x, axis=-1), set()),
    "softmax": (lambda x: jax.nn.softmax(x, axis=-1), set()),
    "log_softmax": (lambda x: jax.nn.log_softmax(x, axis=-1), set()),
    "masked_softmax": (lambda x: jax.nn.softmax(x, axis=-1, where=x > 0), set()),
    "standardize": (lambda x: jax.nn.standardize(x, axis=-1), set()),
    "var_with_eps": (lambda x: x / jax.numpy.sqrt(x.var(-1, keepdims=True) + 1e-5), set()),
    "gaussian_kernel": (lambda x: jax.numpy.exp(-jax.numpy.square(x)).sum(-1), set()),
    "vae_kl_sum_of_exp": (lambda x: jax.numpy.sum(jax.numpy.exp(x) - x - 1.0, axis=-1), set()),
    # hand-written hazards.
    "std_without_eps": (lambda x: x / x.std(-1, keepdims=True), {"BX701"}),
    "rsqrt_var_without_eps": (lambda x: jax.lax.rsqrt(x.var(-1, keepdims=True)), {"BX701"}),
    "log_of_relu": (lambda x: jax.numpy.log(jax.nn.relu(x)), {"BX701"}),
    "hand_logsumexp": (lambda x: jax.numpy.log(jax.numpy.exp(x).sum(-1)), {"BX702"}),
}


@pytest.mark.parametrize("name", sorted(NUMERICS))
def test_numerics_patterns(name):
    from blox_inspect.analysis.flat_program import FlatProgram as Program
    from blox_inspect.checks.numerics import _numerics

    fn, expected = NUMERICS[name]
    x = jax.numpy.ones((4, 8))
    for f in (fn, jax.grad(lambda x: fn(x).sum())):  # the backward pass adds nothing
        prog = Program.build(jax.make_jaxpr(f)(x), [])
        assert {c for c, _, _ in _numerics(prog)} == expected


RANDOM = {
    "split_three_ways": (lambda k, x: sum(jax.random.normal(s, x.shape) for s in jax.random.split(k, 3)), []),
    "permutation": (lambda k, x: jax.random.permutation(k, x, axis=0), []),
    "categorical": (lambda k, x: jax.random.categorical(k, x).astype(x.dtype), []),
    "gamma_while_loop": (lambda k, x: jax.random.gamma(k, x), []),
    "vmapped_keys": (lambda k, x: jax.vmap(lambda s: jax.random.normal(s, (8,)))(jax.random.split(k, 4)), []),
    "fold_in_per_step": (
        lambda k, x: jax.lax.fori_loop(0, 3, lambda i, a: a + jax.random.normal(jax.random.fold_in(k, i), x.shape), x),
        [],
    ),
    "same_key_every_step": (
        lambda k, x: jax.lax.fori_loop(0, 3, lambda i, a: a + jax.random.normal(k, x.shape), x),
        ["BX102"],
    ),
}


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_jax_random_functions_are_not_key_reuse(name):
    from blox_inspect.analysis.flat_program import FlatProgram as Program
    from blox_inspect.checks.rng import reuse_findings

    fn, expected = RANDOM[name]
    prog = Program.build(jax.make_jaxpr(fn)(jax.random.key(0), jax.numpy.ones((4, 8))), [])
    assert [f.code for f in reuse_findings(prog)] == expected


def test_vmap_setting_on_a_model_that_cannot_be_vmapped_is_a_clear_error():
    import numpy as np

    import blox as bx

    class HostCall(bx.Module):  # pure_callback without a vmap_method traces, but not under vmap
        def __call__(self, params, x):
            return jax.pure_callback(np.negative, jax.ShapeDtypeStruct(x.shape, x.dtype), x), params

    model = HostCall(bx.Graph("net") / "host")
    x = jax.ShapeDtypeStruct((4,), jax.numpy.float32)
    with pytest.raises(InspectError, match=r"BLOX_CHECK_VMAP is set, but tracing the model under jax\.vmap"):
        blox_inspect.check(model, x, settings={"BLOX_CHECK_VMAP": True})


def test_cli_lists_codes_and_needs_a_model(capsys):
    assert cli.main(["check", "--list-codes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(CODES) and lines[1].split()[:3] == ["BX101", "error", "rng"]
    assert cli.main(["check"]) == 2
    assert "missing the model file: blox-inspect check model.py[:factory]" in capsys.readouterr().err
