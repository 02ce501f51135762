import json
import os

import pytest

from blox_inspect import cli
from blox_inspect.analysis.cost import analyse_cost
from blox_inspect.analysis.devices import DEVICES, get_device, parse_bytes
from blox_inspect.common.errors import InspectError
from blox_inspect.load.model_file import load_model
from blox_inspect.renderers.cost import render_markdown, render_text
from blox_inspect.report.cost import CostReport

MODELS = os.path.join(os.path.dirname(__file__), "models")
MATMUL = os.path.join(MODELS, "matmul.py")
SCAN = os.path.join(MODELS, "scan.py")
MLP = os.path.join(MODELS, "mlp.py")


def test_known_matmul_flops_agree_everywhere():
    r = analyse_cost(load_model(MATMUL), device="h100")
    m, k, n = 64, 32, 16
    assert r.flops == r.flops_matmul == r.lowered.flops == r.compiled.flops == 2 * m * n * k
    assert r.comparison[0].note == "all agree"
    # Arguments are x and the kernel; the output is x @ kernel; nothing donated in a forward pass.
    assert r.memory.argument == 4 * (m * k + k * n) and r.memory.output == 4 * m * n and r.memory.alias == 0
    assert r.memory.total == r.memory.argument + r.memory.output - r.memory.alias + r.memory.temp


def test_scan_count_is_ten_times_xlas_and_the_report_says_why():
    r = analyse_cost(load_model(SCAN), device=None)
    one_step = 2 * 8 * 32 * 32
    assert r.flops == 10 * one_step
    # XLA counts the while body once (plus a couple of loop-counter ops).
    assert one_step <= r.compiled.flops < 2 * one_step and one_step <= r.lowered.flops < 2 * one_step
    assert [lp.trip_count for lp in r.loops] == [10]
    assert "XLA counts a loop body once" in r.comparison[0].note and "1 loop of 10 steps" in r.comparison[0].note
    assert "ours = 10.0x XLA's" in r.comparison[0].note
    assert {m.path: m.flops for m in r.modules}["net/loop"] == 10 * one_step


def test_train_step_report_roundtrips_as_exact_json():
    r = analyse_cost(load_model(MLP), train=True, device="a100")
    assert r.program == "train step" and r.memory.alias > 0  # params and optimizer state donated
    # Dropout's random bits compile to small threefry while loops; they are not scans, so they are not
    # given as the reason the counts differ (regression).
    assert any(lp.trip_count == 5 for lp in r.loops) and "loop body" not in r.comparison[0].note
    data = json.loads(r.to_json())
    assert isinstance(data["flops"], int) and isinstance(data["memory"]["temp"], int)
    assert CostReport.from_json(r.to_json()) == r
    rows = {m.path: m for m in r.modules}
    assert rows["net/mlp"].flops == rows["net/mlp"].flops_own + sum(
        rows[f"net/mlp/{c}"].flops for c in ("l1", "drop", "l2")
    )
    assert sum(m.flops_own for m in r.modules) == r.flops  # every FLOP lands in exactly one row


def test_roofline_math():
    r = analyse_cost(load_model(MATMUL), device="tpu-v5e", dtype="bf16")
    f = r.roofline
    assert f.peak_flops == 197 * 10**12 and f.bandwidth == 819 * 10**9
    assert f.flops == r.flops and f.bytes == r.compiled.bytes_accessed
    assert f.intensity == pytest.approx(f.flops / f.bytes, rel=1e-3)
    assert f.bound == ("compute" if f.intensity > f.ridge else "memory")
    assert f.seconds == max(f.flops / f.peak_flops, f.bytes / f.bandwidth)


def test_renderers_show_every_section():
    r = analyse_cost(load_model(SCAN), device="h100")
    text = render_text(r)
    for heading in (
        "FLOPs and bytes: ours vs XLA",
        "Memory of the compiled program",
        "Roofline on NVIDIA H100",
        "FLOPs by module",
    ):
        assert heading in text
    md = render_markdown(r)
    assert "## Roofline on NVIDIA H100 SXM 80GB" in md and "| FLOPs | 163.8K |" in md


def test_device_table_and_sizes():
    assert get_device("A100").memory == 80 * 10**9
    assert all(d.flops["bf16"] > d.flops["f32"] for d in DEVICES.values())
    with pytest.raises(InspectError, match=r"unknown device 'x100'; known devices: h100, h100-pcie, h200, a100"):
        get_device("x100")
    with pytest.raises(InspectError, match=r"device 'tpu-v5e' has no peak FLOP/s listed for dtype 'fp8'"):
        get_device("tpu-v5e").peak_flops("fp8")
    assert parse_bytes("80GB") == 80 * 10**9 and parse_bytes("16GiB") == 16 * 2**30
    with pytest.raises(InspectError, match=r"cannot read 'lots' as a memory size"):
        parse_bytes("lots")


def test_cli_json_output_and_bad_device(tmp_path, capsys):
    out = tmp_path / "cost.json"
    assert cli.main(["cost", MATMUL, "--format", "json", "-o", str(out), "--device", "l4"]) == 0
    data = json.loads(out.read_text())
    assert data["compiled"]["flops"] == 65536 and data["roofline"]["device"] == "l4"
    assert cli.main(["cost", MATMUL, "--device", "v100"]) == 2
    assert "known devices: h100" in capsys.readouterr().err
    md = tmp_path / "cost.md"  # re-render the saved report; the format follows the extension
    assert cli.main(["cost", "--load", str(out), "-o", str(md)]) == 0
    assert md.read_text().startswith("# Cost of") and "| FLOPs | 65.5K | 65.5K | 65.5K | all agree |" in md.read_text()
    (tmp_path / "bad.json").write_text("{}")
    assert cli.main(["cost", "--load", str(tmp_path / "bad.json")]) == 2
    assert "cost report has schema_version None" in capsys.readouterr().err
