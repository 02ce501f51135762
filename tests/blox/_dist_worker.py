"""One process of test_distributed.py's first run (run as a script, never imported by tests).

It trains examples/train_distributed.py's model with its default settings for K steps, saves step K
with bx.CheckpointManager, records what the test checks (losses, the live params, per-device bytes of
params, gradients and Adam state, the safetensors refusal, a restore onto another mesh), trains K more
steps without interruption, then starts saving step 2K and dies half way: process 1 kills itself
while its shards are being written, and the test kills process 0, which waits for it.

    python tests/blox/_dist_worker.py PROCESS_ID NUM_PROCESSES PORT WORKDIR K
"""

from __future__ import annotations

import json
import os
import signal
import sys


def main(argv: list[str]) -> None:
    pid, n, port, work, k = int(argv[0]), int(argv[1]), int(argv[2]), argv[3], int(argv[4])
    import jax

    # Before JAX first runs: 2 fake CPU devices per process, gloo for the collectives between processes.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_num_cpu_devices", 2)
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=n, process_id=pid)

    import numpy as np
    from jax.experimental import multihost_utils
    from jax.sharding import Mesh, NamedSharding

    import blox as bx
    from examples.train_distributed import bytes_per_device, parse_args, training_from_args

    mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    t = training_from_args(mesh, parse_args([]))  # exactly the example's default run
    manager = bx.CheckpointManager(os.path.join(work, "ckpt"))
    trainable, rest, opt_state = t.init()
    out: dict = {"losses": {}}

    def train(first: int, last: int) -> None:
        nonlocal trainable, rest, opt_state
        for step in range(first, last + 1):
            trainable, rest, opt_state, loss = t.step(trainable, rest, opt_state, t.tokens(step))
            out["losses"][step] = float(loss)

    def gather(value):
        if jax.numpy.issubdtype(value.dtype, jax.dtypes.prng_key):
            value = jax.random.key_data(value)
        return np.asarray(multihost_utils.process_allgather(value, tiled=True))

    train(1, k)
    params = trainable.merge(rest)
    manager.save(k, params, state=opt_state)
    manager.wait()
    # The live values at step k, gathered from every process: the reference for every restore.
    saved = {bx.path_str(p): gather(v.value) for p, v in params.items()}
    saved.update({"state" + name: gather(v) for name, v in _keyed(opt_state)})
    if pid == 0:
        np.savez(os.path.join(work, "saved.npz"), **saved)

    # Gradients as XLA lays them out (no out_shardings): what the step holds per device.
    grads = jax.jit(jax.grad(lambda tr, rest, x: t.loss(tr, rest, x)[0]))(trainable, rest, t.tokens(k + 1))
    out["memory"] = {
        "params": bytes_per_device(params),
        "gradients": bytes_per_device(grads),
        "optimizer_state": bytes_per_device(opt_state),
    }
    out["grad_specs"] = sorted({str(g.sharding.spec) for g in jax.tree.leaves(grads)})

    try:
        bx.save(os.path.join(work, f"single{pid}.safetensors"), params)
        out["safetensors"] = "saved"
    except bx.CheckpointError as e:
        out["safetensors"] = str(e)

    try:  # an array only this process holds, in a save by every process
        bx.save(os.path.join(work, "local"), bx.Params({("x",): bx.Param(jax.numpy.ones(2))}))
        out["process_local"] = "saved"
    except bx.CheckpointError as e:
        out["process_local"] = str(e)

    # Restore onto a mesh of the same devices in reverse order: every shard changes process.
    reverse = Mesh(np.array(jax.devices()[::-1]), ("data",))
    like = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=NamedSharding(reverse, a.sharding.spec)),
        t.params_like,
    )
    moved = manager.load(k, like=like)
    out["resharded_equal"] = all(np.array_equal(gather(moved[p].value), saved[bx.path_str(p)]) for p in moved)
    head = ("lm", "model", "head", "kernel")
    out["layouts"] = {"saved": _layout(params[head].value), "moved": _layout(moved[head].value)}

    train(k + 1, 2 * k)  # the uninterrupted run the resumed one must match
    manager.save(2 * k, trainable.merge(rest), state=opt_state)  # returns while the shards are written
    with open(os.path.join(work, f"A{pid}.json"), "w", encoding="utf-8") as f:
        json.dump(out, f)
    if pid == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # dies with its save in flight
    manager.wait()  # never returns: process 1 will not commit; the test kills this process


def _layout(x) -> dict:
    """This process's shards of ``x``: device id -> the slice of each dimension it holds."""
    return {str(s.device.id): [[i.start, i.stop] for i in s.index] for s in x.addressable_shards}


def _keyed(tree):
    import jax

    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(jax.tree_util.keystr(kp), leaf) for kp, leaf in leaves]


if __name__ == "__main__":
    main(sys.argv[1:])
