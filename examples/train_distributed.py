"""Train a small Transformer with FSDP over several processes, checkpointing with Orbax, and resume.

This is JAX's multi-controller model: every process runs this same program on its own devices, the
arrays are global (one logical array, its shards spread over every process's devices), and
``jax.jit`` with shardings does the rest. Parameters, gradients and Adam's moments are split over all
devices along the ``data`` mesh axis (FSDP) by each Param's ``'sharding'`` metadata; each process
feeds only its own rows of the batch. Checkpoints are folders written by every process at once, each
writing its own shards (``bx.CheckpointManager``, Orbax underneath); a rerun resumes from the latest.

Try it on one machine (processes on localhost, fake CPU devices, gloo collectives)::

    python -m examples.train_distributed --processes 2 --steps 20 --ckpt out/dist

On a cluster every host runs the same command without ``--processes``; ``jax.distributed.initialize()``
then finds the coordinator, the process count and this process's index from the environment
(SLURM, Cloud TPU pods, Kubernetes, Open MPI). Elsewhere, pass ``--coordinator HOST:PORT
--num-processes N --process-id I`` on each host.
``--ckpt`` must then be a folder every host can see. The model file also works with blox-inspect::

    blox-inspect cost examples/train_distributed.py --train --mesh data=4 --sharding fsdp
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import blox as bx

VOCAB, WIDTH, LAYERS, HEADS, SEQ = 64, 32, 2, 4, 16


class TinyLM(bx.Module):
    """Token embedding, pre-norm decoder blocks (RoPE, RMSNorm, SwiGLU, dropout) and an output head."""

    def __init__(self, graph: bx.Graph, dropout_rate: float = 0.1):
        super().__init__(graph)
        self.rng = bx.Rng(graph / "rng")
        self.embed = bx.Embed(graph / "embed", VOCAB, WIDTH, self.rng)
        self.blocks = [
            bx.TransformerBlock(
                graph / f"block{i}",
                HEADS,
                WIDTH // HEADS,
                2 * WIDTH,
                self.rng,
                dropout_rate=dropout_rate,
                norm="rms",
                mlp="swiglu",
                rope=True,
                use_bias=False,
            )
            for i in range(LAYERS)
        ]
        self.norm = bx.RMSNorm(graph / "norm")
        self.head = bx.Linear(graph / "head", VOCAB, self.rng, use_bias=False)

    def __call__(self, params: bx.Params, tokens: jax.Array, *, is_training: bool):
        x, params = self.embed(params, tokens)
        for block in self.blocks:
            x, params = block(params, x, causal=True, is_training=is_training)
        x, params = self.norm(params, x)
        return self.head(params, x)


def BLOX_LOSS(logits: jax.Array, tokens: jax.Array) -> jax.Array:
    """Next-token cross-entropy; blox-inspect's ``--train`` uses it too (a model file setting)."""
    return optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], tokens[:, 1:]).mean()


def build(batch: int = 8):
    """The blox-inspect factory: the model, abstract inputs and call kwargs."""
    return TinyLM(bx.Graph("lm") / "model"), (jax.ShapeDtypeStruct((batch, SEQ), jnp.int32),), {"is_training": False}


def fsdp(params: bx.Params, axis: str, size: int) -> bx.Params:
    """Marks each param to be split over ``axis`` along its last dimension that ``size`` divides.

    Params with no such dimension (scalars, the Rng state) stay replicated. Why the last dimension:
    an embedding table (vocab, width) then splits its features, so a lookup stays local.
    """

    def spec(shape: tuple[int, ...]) -> tuple:
        dims = [d for d, n in enumerate(shape) if n % size == 0 and n >= size]
        return tuple(axis if d == dims[-1] else None for d in range(len(shape))) if dims and size > 1 else ()

    return bx.Params(
        {
            path: bx.Param(p.value, p.trainable, {**p.metadata.to_dict(), "sharding": spec(tuple(p.value.shape))})
            for path, p in params.items()
        },
        locked=params.is_locked,
    )


def global_batch(step: int, batch: int, seed: int) -> np.ndarray:
    """The whole batch of a step, the same on every process: arithmetic sequences mod VOCAB.

    A pure function of the step, so a resumed run sees exactly the batches an uninterrupted one does.
    """
    rs = np.random.RandomState([seed, step])
    start = rs.randint(0, VOCAB, (batch, 1))
    stride = rs.randint(1, 4, (batch, 1))
    return ((start + stride * np.arange(SEQ)) % VOCAB).astype(np.int32)


def with_shardings(abstract: Any, shardings: Any) -> Any:
    """ShapeDtypeStructs that carry their sharding: the ``like=`` that restores straight into place."""
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)


@dataclass
class Training:
    """Everything the train loop needs on a mesh: the jitted step, shardings and abstract state."""

    mesh: Any
    model: TinyLM
    optimizer: optax.GradientTransformation
    batch: int
    seed: int
    params_like: bx.Params  # abstract, with shardings: for init and for restoring a checkpoint
    state_like: Any
    init: Any  # () -> (trainable, rest, opt_state), created directly sharded
    step: Any  # (trainable, rest, opt_state, tokens) -> (trainable, rest, opt_state, loss)
    loss: Any  # (trainable, rest, tokens) -> (loss, new_rest): the plain function, for gradients

    def tokens(self, step: int) -> jax.Array:
        """This step's global batch as one global array; each process supplies only its own rows."""
        sharding = NamedSharding(self.mesh, P("data"))
        rows = global_batch(step, self.batch, self.seed)
        index = sharding.addressable_devices_indices_map(rows.shape)
        lo = min(i[0].start or 0 for i in index.values())
        hi = max(i[0].stop or rows.shape[0] for i in index.values())
        return jax.make_array_from_process_local_data(sharding, rows[lo:hi], rows.shape)


def make_training(mesh: Any, *, batch: int, lr: float, seed: int, dropout: float) -> Training:
    """The model, optimizer and jitted steps for ``mesh`` (a 1-D mesh with a ``data`` axis)."""
    model = TinyLM(bx.Graph("lm") / "model", dropout)
    optimizer = optax.adam(lr)
    size = mesh.shape["data"]
    example = jax.ShapeDtypeStruct((batch, SEQ), jnp.int32)

    def init_params(tokens: jax.Array) -> bx.Params:
        _, params = model(model.rng.seed(bx.Params(), seed), tokens, is_training=False)
        return fsdp(params, "data", size).locked()

    abstract = jax.eval_shape(init_params, example)
    param_sh = bx.param_shardings(abstract, mesh)
    trainable_sh, rest_sh = param_sh.split(lambda path, _: abstract[path].trainable)
    abstract_state = jax.eval_shape(optimizer.init, abstract.split()[0])
    # Adam's moments are Params like the trainable ones: they get the same shardings; the count is replicated.
    state_sh = jax.tree.map(
        lambda x: bx.param_shardings(x, mesh) if isinstance(x, bx.Params) else NamedSharding(mesh, P()),
        abstract_state,
        is_leaf=lambda x: isinstance(x, bx.Params),
    )
    replicated = NamedSharding(mesh, P())
    data_sh = NamedSharding(mesh, P("data"))

    def _init() -> tuple:
        # Zero tokens: init only needs shapes. out_shardings below create every array in its shard.
        trainable, rest = init_params(jnp.zeros((batch, SEQ), jnp.int32)).split()
        return trainable, rest, optimizer.init(trainable)

    init = jax.jit(_init, out_shardings=(trainable_sh, rest_sh, state_sh))

    def loss(trainable: bx.Params, rest: bx.Params, tokens: jax.Array):
        logits, params = model(trainable.merge(rest), tokens, is_training=True)
        return BLOX_LOSS(logits, tokens), params.split()[1]  # the Rng counter moved on

    def train_step(trainable, rest, opt_state, tokens):
        (value, rest), grads = jax.value_and_grad(loss, has_aux=True)(trainable, rest, tokens)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), rest, opt_state, value

    step = jax.jit(
        train_step,
        in_shardings=(trainable_sh, rest_sh, state_sh, data_sh),
        out_shardings=(trainable_sh, rest_sh, state_sh, replicated),
        donate_argnums=(0, 1, 2),
    )
    return Training(
        mesh=mesh,
        model=model,
        optimizer=optimizer,
        batch=batch,
        seed=seed,
        params_like=with_shardings(abstract, param_sh),
        state_like=with_shardings(abstract_state, state_sh),
        init=init,
        step=step,
        loss=loss,
    )


def training_from_args(mesh: Any, args: argparse.Namespace) -> Training:
    return make_training(mesh, batch=args.batch, lr=args.lr, seed=args.seed, dropout=args.dropout)


def bytes_per_device(tree: Any) -> dict[int, int]:
    """Bytes each of this process's devices holds for ``tree``, from the live arrays' shards."""
    out: dict[int, int] = {}
    for leaf in jax.tree.leaves(tree):
        for shard in leaf.addressable_shards:
            data = shard.data
            if jnp.issubdtype(data.dtype, jax.dtypes.prng_key):
                data = jax.random.key_data(data)
            out[shard.device.id] = out.get(shard.device.id, 0) + data.nbytes
    return out


# --- processes ---------------------------------------------------------------------------------------------


def start_runtime(args: argparse.Namespace) -> None:
    """Joins the multi-controller runtime: explicit for local processes, auto-detected on a cluster."""
    if args.cpu_devices:
        # CPU try-out: fake devices per process and gloo for the collectives between processes.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.config.update("jax_num_cpu_devices", args.cpu_devices)
    if args.coordinator:
        jax.distributed.initialize(args.coordinator, num_processes=args.num_processes, process_id=args.process_id)
        return
    try:
        jax.distributed.initialize()  # SLURM, TPU pods, Kubernetes, Open MPI
    except (ValueError, RuntimeError) as e:
        raise SystemExit(
            f"jax.distributed.initialize() found no cluster to join ({e}). On one machine, run with --processes 2; "
            "elsewhere pass --coordinator HOST:PORT --num-processes N --process-id I on each host."
        ) from e


def train(args: argparse.Namespace) -> dict:
    """One process's part of the run; returns what process 0 logs."""
    start_runtime(args)
    me = jax.process_index()
    mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    t = training_from_args(mesh, args)
    manager = bx.CheckpointManager(args.ckpt, max_to_keep=args.keep)
    start = manager.latest_step() or 0
    if start:
        params = manager.load(start, like=t.params_like)
        trainable, rest = params.split()
        opt_state = manager.load_state(start, like=t.state_like)
    else:
        trainable, rest, opt_state = t.init()
    if me == 0:
        print(
            f"{jax.process_count()} processes, {jax.device_count()} devices, mesh {dict(mesh.shape)}; "
            + (f"resumed from step {start}" if start else "fresh start"),
            flush=True,
        )
    losses: dict[int, float] = {}
    t0 = time.perf_counter()
    for step in range(start + 1, args.steps + 1):
        trainable, rest, opt_state, loss = t.step(trainable, rest, opt_state, t.tokens(step))
        losses[step] = float(loss)  # a replicated scalar: every process can read it
        if step % args.save_every == 0 or step == args.steps:
            manager.save(step, trainable.merge(rest), state=opt_state)  # returns while the files are written
        if me == 0 and (step % 10 == 0 or step == args.steps):
            print(f"step {step}: loss {losses[step]:.4f}", flush=True)
    manager.close()  # waits for the last save to commit
    memory = {
        "params": bytes_per_device((trainable, rest)),
        "optimizer_state": bytes_per_device(opt_state),
    }
    if me == 0:
        first = next(iter(memory["params"]))
        print(
            f"{args.steps - start} steps in {time.perf_counter() - t0:.1f}s; per device: params "
            f"{memory['params'][first]:,} B, Adam state {memory['optimizer_state'][first]:,} B; "
            f"checkpoints {manager.steps()} in {manager.directory}",
            flush=True,
        )
    result = {"losses": losses, "memory": memory, "steps": manager.steps()}
    if me == 0 and args.log:
        with open(args.log, "w", encoding="utf-8") as f:
            json.dump(result, f)
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: argparse.Namespace) -> int:
    """Starts ``--processes`` copies of this program on localhost and waits for them all."""
    port = free_port()
    common = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k in _PASSED_ON and v is not None]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "examples.train_distributed", *common]
            + [f"--coordinator=127.0.0.1:{port}", f"--num-processes={args.processes}", f"--process-id={i}"]
            + [f"--cpu-devices={args.cpu_devices or 2}"]
        )
        for i in range(args.processes)
    ]
    # SIGTERM (e.g. from a job scheduler) unwinds through the finally below, which stops the children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        while True:
            codes = [c.poll() for c in children]
            if any(code not in (None, 0) for code in codes):
                return 1  # the others would wait for it forever: the finally stops them
            if all(code == 0 for code in codes):
                return 0
            time.sleep(0.2)
    finally:
        for c in children:
            if c.poll() is None:
                c.terminate()
        for c in children:
            try:
                c.wait(timeout=10)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()


_PASSED_ON = ("steps", "save_every", "keep", "batch", "lr", "dropout", "seed", "ckpt", "log")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=0, help="start this many local processes (a try-out)")
    ap.add_argument("--steps", type=int, default=20, help="train until this step (resuming counts saved steps)")
    ap.add_argument("--save-every", type=int, default=10)
    ap.add_argument("--keep", type=int, default=3, help="checkpoints to keep")
    ap.add_argument("--batch", type=int, default=8, help="global batch; a multiple of the device count")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ckpt", default=os.path.join("out", "train_distributed"))
    ap.add_argument("--log", default=None, help="process 0 writes losses and per-device bytes here (JSON)")
    ap.add_argument("--cpu-devices", type=int, default=0, help="fake CPU devices per process (CPU runs)")
    # Set by --processes for each child; on a recognised cluster jax.distributed.initialize() finds them itself.
    ap.add_argument("--coordinator", default=None, help="HOST:PORT of process 0 (without cluster auto-detection)")
    ap.add_argument("--num-processes", type=int, default=None)
    ap.add_argument("--process-id", type=int, default=None)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.processes:
        return launch(args)
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
