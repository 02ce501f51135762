"""Sharded compiles. The suite runs with 8 fake CPU devices, so meshes of up to 8 compile in-process;
one test forces the subprocess path that larger meshes take."""

import os

import pytest

from blox_inspect import cli
from blox_inspect.analysis.cost import analyse_cost
from blox_inspect.analysis.shard_plan import MAX_SIMULATED_DEVICES, make_plan, parse_mesh
from blox_inspect.common.errors import InspectError
from blox_inspect.load.model_file import load_model
from blox_inspect.renderers.cost import render_text

MODELS = os.path.join(os.path.dirname(__file__), "models")
MATMUL = os.path.join(MODELS, "matmul.py")
MLP = os.path.join(MODELS, "mlp.py")
SHARDED = os.path.join(MODELS, "sharded.py")


def _plan(spec, mesh, strategy):
    loaded = load_model(spec)
    return make_plan(loaded.abstract_params(), loaded.abstract_inputs(), parse_mesh(mesh), strategy)


def test_matmul_compiled_flops_are_2mnk_per_device():
    r = analyse_cost(load_model(MATMUL), mesh={"data": 8}, strategy="fsdp", device="h100")
    m, k, n = 64, 32, 16
    assert r.devices == 8 and r.sharding.how == "in-process"
    assert r.compiled.flops == 2 * (m // 8) * n * k  # each device multiplies its 8 rows of the batch
    assert r.lowered.flops == r.flops == 2 * m * n * k  # before partitioning: the whole program
    assert "one device's share of the 8-device program" in r.comparison[0].note
    assert r.roofline.flops == r.flops // 8


def test_fsdp_train_step_per_device_bytes_and_collectives():
    r = analyse_cost(load_model(SHARDED), train=True, mesh={"data": 8}, strategy="fsdp", device="h100")
    s = r.sharding
    rows = {p.path: p for p in s.params}
    up = rows["net/block/up/kernel"]  # (16, 64): split along 64 over data=8
    assert up.shape == [16, 64] and up.spec == "(None, data)" and up.shards == 8
    assert up.device_bytes == up.bytes // 8 == 16 * 64 * 4 // 8
    assert s.per_device.params == sum(p.device_bytes for p in s.params)
    assert s.per_device.gradients == sum(p.device_bytes for p in s.params if not p.path.startswith("net/rng"))
    # Adam: two moments per trainable param at the param's sharding, plus a replicated int32 step count.
    assert s.per_device.optimizer_state == 2 * s.per_device.gradients + 4
    kinds = {c.kind for c in s.collectives}
    assert "all-gather" in kinds or "all-reduce" in kinds  # weights gathered or gradients reduced
    assert all(c.bytes > 0 and c.count > 0 for c in s.collectives)
    assert s.fits and s.advice == []


def test_tensor_parallel_from_metadata():
    r = analyse_cost(load_model(SHARDED), train=True, mesh={"data": 2, "model": 4}, strategy="metadata", device=None)
    rows = {p.path: p for p in r.sharding.params}
    assert rows["net/block/up/kernel"].spec == "(None, model)" and rows["net/block/up/kernel"].shards == 4
    assert rows["net/block/down/kernel"].spec == "(model, None)"
    assert rows["net/block/down/bias"].spec == "replicated" and rows["net/block/down/bias"].shards == 1
    assert any(c.kind == "all-reduce" for c in r.sharding.collectives)  # row-parallel output is summed


def test_does_not_fit_gives_advice():
    r = analyse_cost(load_model(MLP), train=True, mesh={"data": 2}, batch=8, device="h100", device_memory=5000)
    s = r.sharding
    assert not s.fits and s.headroom == 5000 - s.per_device.peak < 0
    assert any("FSDP over" in a for a in s.advice)
    assert "Verdict: DOES NOT FIT" in render_text(r)


def test_subprocess_simulation_matches_in_process():
    loaded = load_model(MATMUL)
    sub = analyse_cost(loaded, mesh={"data": 4}, device=None, spec=MATMUL, force_subprocess=True)
    here = analyse_cost(loaded, mesh={"data": 4}, device=None)
    assert sub.sharding.how == "subprocess" and here.sharding.how == "in-process"
    assert sub.compiled == here.compiled and sub.sharding.per_device == here.sharding.per_device


def test_mesh_errors():
    with pytest.raises(InspectError, match=rf"has 4096 devices, more than the {MAX_SIMULATED_DEVICES} fake CPU"):
        parse_mesh("data=64,model=64")
    with pytest.raises(InspectError, match=r"cannot read --mesh 'data=8,data=2'"):
        parse_mesh("data=8,data=2")
    with pytest.raises(InspectError, match=r"mesh axis 'model' \(size 4\) is not used by --sharding fsdp"):
        _plan(SHARDED, "data=8,model=4", "fsdp")
    with pytest.raises(InspectError, match=r"mesh axis 'expert' \(size 2\) is not used by --sharding metadata"):
        _plan(SHARDED, "model=4,expert=2", "metadata")
    with pytest.raises(InspectError, match=r"--sharding tp needs a mesh axis named 'model'"):
        _plan(SHARDED, "data=8", "tp")
    with pytest.raises(
        InspectError,
        match=r"param net/block/down/kernel has shape \(30, 16\); its dimension 0 \(30\) is not divisible by mesh axis "
        r"'model' \(size 4\)",
    ):
        _plan(SHARDED + ":build_odd", "model=4", "metadata")
    with pytest.raises(InspectError, match=r"param net/block/up/kernel has shape \(16, 30\); its dimension 1"):
        _plan(SHARDED + ":build_odd", "model=4", "tp")
    with pytest.raises(InspectError, match=r"naming axis 'model', which --mesh data=2 does not have"):
        _plan(SHARDED, "data=2", "metadata")
    with pytest.raises(
        InspectError,
        match=r"input 0 has shape \(4, 16\); its batch dimension 0 \(4\) is not "
        r"divisible by mesh axis 'data' \(size 8\).*--batch 8",
    ):
        _plan(MLP, "data=8", "fsdp")


def test_cli_mesh_errors_exit_2(capsys):
    assert cli.main(["cost", SHARDED, "--train", "--mesh", "data=4096"]) == 2
    assert "2048 fake CPU devices" in capsys.readouterr().err
    assert cli.main(["cost", SHARDED, "--mesh", "data=8", "--sharding", "zero3"]) == 2
    assert "unknown --sharding 'zero3'; expected one of: fsdp, tp, metadata" in capsys.readouterr().err
