"""Real multi-process training and checkpoints: 2 processes on localhost with 2 CPU devices each.

One run (tests/blox/_dist_worker.py) trains examples/train_distributed.py's Transformer with FSDP for K
steps, saves step K, trains K more steps uninterrupted, then dies while saving step 2K. The example
itself (``--processes 2``) then resumes from the checkpoint and trains to 2K: its losses must equal the
uninterrupted ones bit for bit (same mesh, same compiled program, same inputs, and the restored params,
Adam state and Rng state are exact copies, so every float operation repeats). This process then
restores the same checkpoint on one device. Every child process is bounded in time and killed on
failure, so a hung collective fails the test instead of hanging CI.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import SingleDeviceSharding

import blox as bx
from blox import _orbax

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "blox" / "_dist_worker.py"
K = 3
PHASE_SECONDS = 240  # a whole phase on a busy 2-core machine; normally 15-30 s

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["JAX_PLATFORMS"] = "cpu"
    # Halves XLA:CPU compile time. The runs are compared with each other, all compiled the same way.
    env["XLA_FLAGS"] = " ".join(
        [env.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true"]
    ).strip()
    return env


def _start(cmd: list[str], log: pathlib.Path, **env: str) -> subprocess.Popen:
    with open(log, "wb") as f:
        # Its own session: stopping it can then reach any process it started (the example's children).
        return subprocess.Popen(
            cmd, cwd=ROOT, env=_env(**env), stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL for the whole session this test started for it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def _tail(log: pathlib.Path) -> str:
    text = log.read_text(errors="replace") if log.exists() else "(no output)"
    lines = [ln for ln in text.splitlines() if not ln.startswith("[Gloo]")]
    return f"--- {log.name} ---\n" + "\n".join(lines[-25:])


def _first_run(work: pathlib.Path) -> list[dict]:
    """Runs the worker pair; returns what each process recorded. Process 0 is killed once it waits for a
    commit that cannot come (process 1 killed itself during the save)."""
    port = _free_port()
    logs = [work / f"A{i}.log" for i in range(2)]
    procs = [_start([sys.executable, str(WORKER), str(i), "2", str(port), str(work), str(K)], logs[i]) for i in (0, 1)]
    results = [work / f"A{i}.json" for i in (0, 1)]
    try:
        deadline = time.monotonic() + PHASE_SECONDS
        while not (procs[1].poll() is not None and all(r.exists() for r in results)):
            early = procs[0].poll() is not None or (procs[1].poll() is not None and not results[1].exists())
            if early or time.monotonic() > deadline:
                what = "exited early" if early else f"did not finish within {PHASE_SECONDS}s"
                pytest.fail(f"first run {what}\n" + "\n".join(_tail(log) for log in logs))
            time.sleep(0.2)
        assert procs[1].returncode == -signal.SIGKILL, _tail(logs[1])
        assert procs[0].poll() is None, "process 0 should still be waiting for process 1's commit\n" + _tail(logs[0])
    finally:
        for p in procs:
            _stop(p)
    return [json.loads(r.read_text()) for r in results]


def _finish(proc: subprocess.Popen, cmd: list[str], log: pathlib.Path) -> None:
    try:
        proc.wait(timeout=PHASE_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(cmd)} did not finish within {PHASE_SECONDS}s\n{_tail(log)}")
    finally:
        _stop(proc)
    assert proc.returncode == 0, _tail(log)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("distributed")
    ckpt = work / "ckpt"
    # Predicted per-device bytes, by blox-inspect from the model file alone (abstract, one process), run
    # beside the first run. JAX_NUM_CPU_DEVICES=4 lets it compile for data=4 in-process (it would
    # otherwise start a simulation subprocess; test_cost_sharding.py shows both give the same numbers).
    cost_json = work / "cost.json"
    cost_cmd = [sys.executable, "-m", "blox_inspect", "cost", "examples/train_distributed.py", "--train"]
    cost_cmd += ["--mesh", "data=4", "--sharding", "fsdp", "--format", "json", "--output", str(cost_json)]
    cost = _start(cost_cmd, work / "cost.log", JAX_NUM_CPU_DEVICES="4")
    try:
        first = _first_run(work)
    finally:
        _finish(cost, cost_cmd, work / "cost.log")
    # What the killed save left, before anything (a new manager) cleans it up.
    after_kill = sorted(os.listdir(ckpt))
    committed = {name: _orbax.is_committed(str(ckpt / name)) for name in after_kill}
    with pytest.raises(bx.CheckpointError, match="incomplete checkpoint: its save never committed") as incomplete:
        bx.load(ckpt / str(2 * K))
    saved = dict(np.load(work / "saved.npz"))
    # The example as a user runs it, resuming from the latest complete checkpoint (step K).
    resume = [sys.executable, "-m", "examples.train_distributed", "--processes", "2", "--steps", str(2 * K)]
    resume += ["--save-every", str(K), "--ckpt", str(ckpt), "--log", str(work / "B.json")]
    _finish(_start(resume, work / "B.log"), resume, work / "B.log")
    return {
        "work": work,
        "ckpt": ckpt,
        "first": first,
        "after_kill": after_kill,
        "committed": committed,
        "incomplete": str(incomplete.value),
        "cost": json.loads(cost_json.read_text()),
        "saved": saved,
        "resumed": json.loads((work / "B.json").read_text()),
    }


def test_resumed_training_repeats_the_uninterrupted_losses_exactly(run):
    uninterrupted = run["first"][0]["losses"]
    resumed = run["resumed"]["losses"]
    assert sorted(resumed, key=int) == [str(s) for s in range(K + 1, 2 * K + 1)]  # it started from step K
    assert {s: resumed[s] for s in resumed} == {s: uninterrupted[s] for s in resumed}
    assert run["first"][1]["losses"] == uninterrupted  # every process saw the same replicated loss
    assert uninterrupted[str(2 * K)] < uninterrupted["1"]  # and it is learning
    assert run["resumed"]["steps"] == [K, 2 * K]  # the broken step 2K was cleared and saved whole


def test_a_save_killed_half_way_leaves_the_previous_checkpoint(run):
    tmp = f"{2 * K}{_orbax.TMP_SUFFIX}"
    assert run["after_kill"] == [str(K), tmp]  # step 2K exists only as Orbax's uncommitted tmp folder
    assert run["committed"] == {str(K): True, tmp: False}
    assert str(2 * K) in run["incomplete"]
    header = _orbax.read_header(run["ckpt"] / str(K))  # metadata only: names, shapes, dtypes, flags
    saved = run["saved"]
    assert sorted(t.name for t in header.tensors) == sorted(n for n in saved if not n.startswith("state"))
    for t in header.tensors:
        if t.key_impl:  # the reference holds a key's raw data: the key's shape plus its impl's words
            assert (t.dtype, saved[t.name].shape[: len(t.shape)], saved[t.name].dtype) == (
                "key<fry>",
                t.shape,
                "uint32",
            )
        else:
            assert (t.shape, t.dtype) == (saved[t.name].shape, saved[t.name].dtype.name), t.name
        assert t.trainable == ("/rng/" not in t.name)


def test_one_process_on_one_device_restores_the_same_params_and_adam_state(run):
    import optax

    from examples.train_distributed import build, fsdp

    folder = run["ckpt"] / str(K)
    device = SingleDeviceSharding(jax.devices()[0])
    model, (tokens,), _ = build()
    abstract = jax.eval_shape(
        lambda x: fsdp(model(model.rng.seed(bx.Params(), 0), x, is_training=False)[1], "data", 4).locked(), tokens
    )
    params = bx.load(
        folder, like=abstract.map(lambda _, p: jax.ShapeDtypeStruct(p.value.shape, p.value.dtype, sharding=device))
    )
    saved = run["saved"]
    assert sorted(bx.path_str(p) for p in params) == sorted(n for n in saved if not n.startswith("state"))
    for path, p in params.items():
        value = jax.random.key_data(p.value) if jnp.issubdtype(p.value.dtype, jax.dtypes.prng_key) else p.value
        assert value.sharding == device
        np.testing.assert_array_equal(np.asarray(value), saved[bx.path_str(path)], err_msg=bx.path_str(path))
    assert not params["lm/model/rng/seed"].trainable and params["lm/model/head/kernel"].sharding == (None, "data")
    trainable, _ = params.split()
    state = bx.load_state(folder, like=jax.eval_shape(optax.adam(1e-2).init, trainable))
    leaves, _ = jax.tree_util.tree_flatten_with_path(state)
    assert len(leaves) == sum(n.startswith("state") for n in saved)
    for kp, leaf in leaves:
        np.testing.assert_array_equal(np.asarray(leaf), saved["state" + jax.tree_util.keystr(kp)])
    assert int(state[0].count) == K


def test_restore_onto_another_mesh_moves_shards_across_processes(run):
    for rec in run["first"]:
        assert rec["resharded_equal"]
        saved, moved = rec["layouts"]["saved"], rec["layouts"]["moved"]
        assert saved.keys() == moved.keys() and all(saved[d] != moved[d] for d in saved)


def test_a_single_file_refuses_arrays_this_process_cannot_address_and_a_folder_process_local_ones(run):
    for i, rec in enumerate(run["first"]):
        assert rec["safetensors"].startswith(f"{run['work'] / f'single{i}.safetensors'}: cannot write lm/model/"), rec[
            "safetensors"
        ]
        assert "sharded over 2 processes" in rec["safetensors"] and "folder checkpoint" in rec["safetensors"]
        assert not (run["work"] / f"single{i}.safetensors").exists()
        assert "x lives on this process's devices only" in rec["process_local"], rec["process_local"]
    assert not (run["work"] / "local").exists()


def test_blox_inspect_cost_predicts_the_bytes_each_device_holds(run):
    predicted = run["cost"]["sharding"]["per_device"]
    assert run["cost"]["sharding"]["devices"] == 4
    measured = {kind: {} for kind in ("params", "gradients", "optimizer_state")}
    for rec in run["first"]:
        for kind in measured:
            measured[kind].update(rec["memory"][kind])
    for kind, per_device in measured.items():
        assert len(per_device) == 4, per_device  # 2 devices on each of the 2 processes
        assert set(per_device.values()) == {predicted[kind]}, (kind, per_device, predicted[kind])
    # FSDP: nothing big is replicated, so each device holds about a quarter.
    total = sum(v.nbytes for n, v in run["saved"].items() if not n.startswith("state"))
    assert predicted["params"] < total / 4 + 64
