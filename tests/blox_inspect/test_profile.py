"""blox-inspect profile: measured device time per module, attributed through the HLO ops' op_name metadata."""

import dataclasses
import gzip
import json
import os
import re

import pytest

from blox_inspect import cli
from blox_inspect.analysis.op_modules import hlo_ops, module_of_op_name
from blox_inspect.analysis.profile import MSG_STEPS, MSG_WARMUP, build_report, detect_device, profile_loaded
from blox_inspect.analysis.programs import build_program
from blox_inspect.analysis.summary import summarize_loaded
from blox_inspect.common.units import DASH
from blox_inspect.load.model_file import load_model
from blox_inspect.renderers.profile import profile_rows, render_csv, render_markdown, render_table
from blox_inspect.report.profile import OUTSIDE, ProfileReport

MODELS = os.path.join(os.path.dirname(__file__), "models")
MIX = os.path.join(MODELS, "profile_mix.py")
BROKEN = os.path.join(MODELS, "profile_broken.py")
MLP = os.path.join(MODELS, "mlp.py")
MATMUL = os.path.join(MODELS, "matmul.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALPHA, BETA = "net/mix/alpha", "net/mix/beta"
STEPS = 3


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    """One profile of the mix model (3 steps after 1 warmup), shared by the tests that read it."""
    folder = str(tmp_path_factory.mktemp("trace"))
    report = profile_loaded(load_model(MIX), steps=STEPS, warmup=1, device="h100", trace_dir=folder)
    return report


def _trace_events(report: ProfileReport) -> list[dict]:
    """The op events, read straight from the trace file (plain json, no blox_inspect code)."""
    with gzip.open(report.trace_file, "rt") as f:
        events = json.load(f)["traceEvents"]
    return [e for e in events if e.get("ph") == "X" and "hlo_op" in e.get("args", {})]


def test_the_dominant_matmul_module_has_the_largest_share(mix):
    leaves = {m.path: m.total_seconds for m in mix.modules if not mix.summary.module(m.path).children}
    assert max(leaves, key=leaves.get) == ALPHA
    assert mix.module(ALPHA).total_seconds > 0.5 * mix.totals.device_busy
    # The FLOPs are the summary's: 2·M·N·K of the 256x512 @ 512x512 matmul plus its bias add.
    assert mix.module(ALPHA).flops == 2 * 256 * 512 * 512 + 256 * 512


def test_every_op_of_the_scan_body_goes_to_the_scan_module(mix):
    # The ops that run 10 times per step are the loop body's (counted from the trace), and the while op
    # itself runs once: all of them belong to beta, the module that called lax.scan.
    body = [o for o in mix.ops if o.count == 10]
    assert body and all(o.modules == {BETA: 1.0} for o in body)
    assert [o.modules for o in mix.ops if o.opcode == "while"] == [{BETA: 1.0}]
    per_step = {}
    for e in _trace_events(mix):
        per_step[e["args"]["hlo_op"]] = per_step.get(e["args"]["hlo_op"], 0) + 1
    assert {o.name for o in body} == {name for name, n in per_step.items() if n == 10 * STEPS}


def test_module_self_times_and_unattributed_add_up_to_the_busy_time(mix):
    intervals = sorted((e["ts"], e["ts"] + e["dur"]) for e in _trace_events(mix))
    busy, end = 0.0, float("-inf")
    for start, stop in intervals:  # the union of every op interval, in microseconds
        if stop > end:
            busy += stop - max(start, end)
            end = stop
    busy = busy * 1e-6 / STEPS
    t = mix.totals
    assert t.device_busy == pytest.approx(busy, rel=1e-6)
    assert sum(m.self_seconds for m in mix.modules) + t.unattributed == pytest.approx(busy, rel=0.05)
    root = mix.module("net/mix")
    assert root.total_seconds == pytest.approx(sum(m.self_seconds for m in mix.modules if m.path != "net/rng"))


def test_attribution_comes_from_op_metadata_not_op_names(mix):
    events = _trace_events(mix)
    assert not [e for e in events if re.search("alpha|beta|cell|mix", e["args"]["hlo_op"])]
    # Read the compiled program's op_name metadata with a plain regex and match module names in it.
    loaded = load_model(MIX)
    text = build_program(loaded).lower().compile().as_text()
    for op in mix.ops:
        line = re.search(rf"^\s*(?:ROOT )?%{re.escape(op.name)} = .*$", text, re.M).group(0)
        called = re.search(r"calls=%([\w.\-]+)", line)
        names = re.findall(r'op_name="([^"]*)"', line)
        if called:
            body = re.search(rf"^%{re.escape(called.group(1))} .*?^\}}", text, re.M | re.S).group(0)
            names += re.findall(r'op_name="([^"]*)"', body)
        named = {w for n in names for w in ("alpha", "beta") if f"/{w}/" in n}
        if named:
            assert {m.rsplit("/", 1)[-1] for m in op.modules} == named, op
    assert mix.module(ALPHA).self_seconds > 0 and mix.module(BETA).self_seconds > 0


def test_module_of_op_name_reads_nested_scopes_and_transforms():
    mods = frozenset({"gpt2", "gpt2/h/0", "gpt2/h/0/attn", "enc/emb"})
    assert module_of_op_name("jit(step)/transpose(jvp(gpt2))/h/0/attn/dot_general", mods) == "gpt2/h/0/attn"
    assert module_of_op_name("jit(f)/gpt2/my_scope/enc/emb/gather", mods) == "enc/emb"
    assert module_of_op_name("jit(f)/gpt2/h/01/add", mods) == "gpt2"  # h/01 is not h/0
    assert module_of_op_name("jit(step)/mul", mods) == ""


HLO_SHARED = """HloModule jit_f, entry_computation_layout={(f32[4,16]{1,0}, f32[16,8]{1,0})->f32[4,8]{1,0}}

%fused_computation (param_0: f32[4,16], param_1: f32[16,8]) -> f32[4,8] {
  %param_0 = f32[4,16]{1,0} parameter(0)
  %param_1 = f32[16,8]{1,0} parameter(1)
  %dot.1 = f32[4,8]{1,0} dot(%param_0, %param_1), lhs_contracting_dims={1}, rhs_contracting_dims={0}, metadata={op_name="jit(f)/net/a/dot_general"}
  %one = f32[] constant(1), metadata={op_name="jit(f)/net/b/add"}
  %bc = f32[4,8]{1,0} broadcast(%one), dimensions={}, metadata={op_name="jit(f)/net/b/add"}
  ROOT %add.2 = f32[4,8]{1,0} add(%dot.1, %bc), metadata={op_name="jit(f)/net/b/add"}
}

ENTRY %main (x: f32[4,16], w: f32[16,8]) -> f32[4,8] {
  %x = f32[4,16]{1,0} parameter(0), metadata={op_name="x"}
  %w = f32[16,8]{1,0} parameter(1), metadata={op_name="w"}
  %copy.1 = f32[4,16]{1,0} copy(%x)
  ROOT %fusion = f32[4,8]{1,0} fusion(%copy.1, %w), kind=kOutput, calls=%fused_computation, metadata={op_name="jit(f)/net/b/add"}
}
"""


def test_a_fusion_spanning_modules_is_split_by_its_ops_flops():
    ops = hlo_ops(HLO_SHARED, {"net", "net/a", "net/b"})
    dot, add = 2 * 4 * 8 * 16, 4 * 8  # the constant and its broadcast move data: no FLOPs
    assert ops["fusion"].shares == pytest.approx({"net/a": dot / (dot + add), "net/b": add / (dot + add)})
    assert ops["fusion"].bytes == 4 * (4 * 8 + 4 * 16 + 16 * 8)  # result + both operands
    assert ops["copy.1"].shares == {"net/b": 1.0}  # no metadata: the module of the op that uses it


def test_build_report_on_a_hand_written_trace():
    summary = summarize_loaded(load_model(MIX), xla=False)
    text = HLO_SHARED.replace("net/a/", "net/mix/alpha/").replace("net/b/", "net/mix/beta/")
    meta = [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "/host:CPU"}}]

    def ev(ts, dur, op, module="jit_f"):
        return {"ph": "X", "pid": 1, "tid": 7, "ts": ts, "dur": dur, "name": op,
                "args": {"hlo_op": op, "hlo_module": module}}  # fmt: skip

    # Two steps of: copy 10 us, the shared fusion 100 us; plus an op from another program, to be ignored.
    events = meta + [ev(0, 10, "copy.1"), ev(20, 100, "fusion"), ev(200, 10, "copy.1"), ev(220, 100, "fusion")]
    events.append(ev(400, 50, "fusion", module="jit_other"))
    r = build_report(
        summary=summary, text=text, trace={"traceEvents": events}, steps=2, warmup=0, times=[0.001, 0.002], train=False
    )
    share = 2 * 4 * 8 * 16 / (2 * 4 * 8 * 16 + 4 * 8)
    assert r.totals.device_busy == pytest.approx(110e-6)
    assert r.module(ALPHA).self_seconds == pytest.approx(100e-6 * share)
    assert r.module(BETA).self_seconds == pytest.approx(10e-6 + 100e-6 * (1 - share))
    assert r.module("net/mix").total_seconds == pytest.approx(110e-6)
    assert r.totals.split_ops == 1 and r.totals.wall_median == pytest.approx(0.0015)


def test_folded_rows_sum_their_blocks_and_depth_hides_children(mix):
    shown = profile_rows(mix)
    cells = next(r for r in shown if r.repeat == 3)
    members = [f"net/mix/cell/{i}" for i in range(3)]
    assert cells.members == members
    assert cells.total_seconds == pytest.approx(sum(mix.module(p).total_seconds for p in members))
    assert cells.flops == sum(mix.module(p).flops for p in members)
    assert [r.path for r in profile_rows(mix, depth=1)] == ["net/rng", "net/mix"]
    assert [r.path for r in profile_rows(mix, fold=False) if r.path != OUTSIDE] == [m.path for m in mix.modules]


def test_rates_and_the_roofline_fraction(mix):
    m, p = mix.module(ALPHA), mix.peak
    assert (p.device, p.dtype) == ("h100", "tf32")
    row = next(r for r in profile_rows(mix) if r.path == ALPHA)
    assert row.rates.flops_per_second == pytest.approx(m.flops / m.total_seconds)
    assert row.rates.bytes_per_second == pytest.approx(m.bytes / m.total_seconds)
    roof = max(m.flops / p.peak_flops, m.bytes / p.bandwidth)
    assert row.rates.roofline_fraction == pytest.approx(roof / m.total_seconds)
    # x, kernel and bias in, the activations out (float32), as the fused matmul reads and writes them.
    assert m.bytes >= 4 * (256 * 512 + 512 * 512 + 256 * 512)
    # Without a peak (a CPU has none listed) the column shows a dash.
    text = render_table(dataclasses.replace(mix, peak=None))
    assert re.search(rf"alpha .* {DASH}\s*│?$", text, re.M)


def test_json_round_trip_and_renderers(mix, tmp_path):
    again = ProfileReport.from_json(mix.to_json())
    assert again == mix
    path = tmp_path / "profile.json"
    path.write_text(mix.to_json())
    assert cli.main(["profile", "--load", str(path), "-o", str(tmp_path / "p.csv")]) == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    row = next(line.split(",") for line in lines if line.startswith(ALPHA + ","))
    assert float(row[6]) == mix.module(ALPHA).total_seconds  # exact, not rounded
    md = render_markdown(mix)
    assert md.startswith("# Profile of") and "| Module |" in md and "## Heaviest HLO ops" in md
    assert "cell/0…cell/2 ×3" in render_table(mix)
    assert render_csv(mix).startswith("path,type,level,repeat,members,self_seconds,total_seconds,")


def test_train_step_profile_from_the_cli(tmp_path, capsys):
    out, traces = tmp_path / "train.json", tmp_path / "traces"
    argv = ["profile", MLP, "--train", "--steps", "2", "--warmup", "1", "--trace-dir", str(traces), "-o", str(out)]
    assert cli.main(argv) == 0
    assert "trace in" in capsys.readouterr().err
    r = ProfileReport.from_json(out.read_text())
    assert r.program == "train step" and r.trace_file.startswith(str(traces))
    # The Adam update and the loss run in no module: their time is outside every module.
    assert r.totals.unattributed > 0
    assert any("" in o.modules for o in r.ops) and r.module("net/mlp/l1").self_seconds > 0
    assert r.module("net/mlp/l1").flops == r.summary.module("net/mlp/l1").flops_train
    rows = profile_rows(r)
    assert rows[-1].path == OUTSIDE and rows[-1].total_seconds == r.totals.unattributed


@pytest.mark.parametrize(
    "argv, message",
    [
        (["profile"], "profile needs a model file"),
        (["profile", BROKEN, "--steps", "1", "--warmup", "0"], r"net/wrong \(Wrong\) failed while tracing"),
        (["profile", MIX, "--steps", "0"], re.escape(MSG_STEPS.format(got="0"))),
        (["profile", MIX, "--warmup", "-1"], re.escape(MSG_WARMUP.format(got="-1"))),
        (["profile", MIX, "--warmup", "two"], re.escape(MSG_WARMUP.format(got="two"))),
        (["profile", MIX, "--device", "v100"], "unknown device 'v100'"),
        (["profile", "--load", "/nonexistent/p.json"], "no such report file"),
        (["profile", MIX, "--load", "p.json"], "not both"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(argv, message, capsys):
    assert cli.main(argv) == 2
    assert re.search(message, capsys.readouterr().err)


def test_params_from_a_checkpoint(tmp_path, capsys):
    import jax.numpy as jnp

    import blox as bx

    good, wrong = str(tmp_path / "good.safetensors"), str(tmp_path / "wrong.safetensors")
    bx.save(good, bx.Params({("net", "proj", "kernel"): bx.Param(jnp.ones((32, 16)))}).locked())
    bx.save(wrong, bx.Params({("net", "proj", "kernel"): bx.Param(jnp.ones((31, 16)))}).locked())
    out = tmp_path / "p.json"
    args = ["--steps", "1", "--warmup", "0", "--trace-dir", str(tmp_path / "t")]
    assert cli.main(["profile", MATMUL, "--params", good, *args, "-o", str(out)]) == 0
    assert ProfileReport.from_json(out.read_text()).module("net/proj").self_seconds > 0
    assert cli.main(["profile", MATMUL, "--params", wrong, *args]) == 2
    assert "net/proj" in capsys.readouterr().err
    assert cli.main(["profile", MATMUL, "--params", str(tmp_path / "none.safetensors"), *args]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err


def test_a_trace_dir_that_is_a_file_is_refused_and_kept(tmp_path, capsys):
    target = tmp_path / "trace"
    target.write_text("keep me")
    assert cli.main(["profile", MIX, "--trace-dir", str(target)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err and target.read_text() == "keep me"


def test_device_detection():
    kinds = {
        "NVIDIA H100 80GB HBM3": "h100",
        "NVIDIA H100 PCIe": "h100-pcie",
        "NVIDIA H200": "h200",
        "NVIDIA A100-SXM4-80GB": "a100",
        "NVIDIA A100-PCIE-40GB": "a100-40gb",
        "NVIDIA L4": "l4",
        "TPU v4": "tpu-v4",
        "TPU v5 lite": "tpu-v5e",
        "TPU v5p": "tpu-v5p",
        "cpu": None,
    }
    assert {k: detect_device(k) for k in kinds} == kinds


def test_docs_profile_example_runs(capsys):
    text = open(os.path.join(ROOT, "docs", "inspect.md"), encoding="utf-8").read()
    section = next(s for s in re.split(r"\n(?=## )", text) if s.startswith("## Profiling"))
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/inspect.md", "exec"), {})
    assert "Device busy" in capsys.readouterr().out


def test_summary_takes_a_saved_profile_as_time_columns(tmp_path, capsys):
    """`summary --profile p.json`: Time per row; a folded ×N row sums the measured time of all N blocks."""
    import json as _json

    from blox_inspect import cli as _cli

    src = tmp_path / "stack.py"
    src.write_text(
        "import jax.numpy as jnp, blox as bx\n"
        "def build():\n"
        "    g = bx.Graph('net'); rng = bx.Rng(g / 'rng'); n = g / 'stack'\n"
        "    layers = [bx.Linear(n / f'l{i}', 64, rng) for i in range(4)]\n"
        "    return bx.Sequential(n, layers), jnp.zeros((32, 64))\n"
    )
    prof = tmp_path / "p.json"
    assert _cli.main(["profile", str(src), "--steps", "2", "--warmup", "1", "-o", str(prof)]) == 0
    measured = {m["path"]: m["total_seconds"] for m in _json.loads(prof.read_text())["modules"]}
    capsys.readouterr()
    assert _cli.main([str(src), "--no-xla", "--profile", str(prof), "--format", "csv", "--fold"]) == 0
    rows = [line.split(",") for line in capsys.readouterr().out.splitlines()]
    head, body = rows[0], {r[0]: r for r in rows[1:]}
    assert head[-1] == "time_seconds"
    folded = body["net/stack/l0"]  # the ×4 row stands for l0..l3
    assert folded[head.index("repeat")] == "4"
    expected = sum(measured[f"net/stack/l{i}"] for i in range(4))
    assert float(folded[-1]) == pytest.approx(expected, rel=1e-6)
    # A profile of another model is refused, naming both.
    other = tmp_path / "other.json"
    data = _json.loads(prof.read_text())
    for m in data["modules"]:
        m["path"] = "elsewhere/" + m["path"]
    other.write_text(_json.dumps(data))
    assert _cli.main([str(src), "--no-xla", "--profile", str(other)]) == 2
    assert "names none of this model's modules" in capsys.readouterr().err
