"""Compiling a program from abstract inputs (optionally for a device mesh) and collecting what XLA reports.

Only ``jit(...).lower(ShapeDtypeStructs).compile()`` runs: no buffer is ever allocated, so a 7B model
compiles on a laptop. For a mesh, the arguments carry ``NamedSharding``s over a mesh with ``Auto`` axes
(GSPMD/Shardy propagate shardings through the model, as for ordinary pjit code); ``jax.make_mesh`` would
otherwise default to ``Explicit`` axes, which require sharding-aware model code.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from typing import Any

import jax
from jax.sharding import AxisType, NamedSharding, PartitionSpec

import blox as bx
from blox_inspect.analysis.hlo_parse import COLLECTIVES, find_collectives, find_loops
from blox_inspect.analysis.programs import Program
from blox_inspect.analysis.shard_plan import ShardPlan, partition_spec, spec_str, state_specs
from blox_inspect.common.units import array_bytes
from blox_inspect.report.cost import CollectiveStats, CompiledFacts, LoopInfo, MemoryStats, ParamShard, XlaCost


def xla_cost(source: Any) -> XlaCost:
    """``cost_analysis()`` of a Lowered or Compiled object as exact ints (None where missing)."""
    try:
        raw = source.cost_analysis()
    except Exception:  # some backends raise instead of returning nothing
        raw = None
    if isinstance(raw, (list, tuple)):  # older jax: one dict per partition
        raw = raw[0] if raw else None
    raw = raw or {}

    def get(key: str) -> int | None:
        v = raw.get(key)
        return None if v is None or v < 0 else int(round(v))

    cost = XlaCost(flops=get("flops"), transcendentals=get("transcendentals"), bytes_accessed=get("bytes accessed"))
    if cost.flops is not None and cost.transcendentals is None:
        cost.transcendentals = 0  # XLA leaves the key out when the program has none
    return cost


def memory_stats(compiled: Any) -> MemoryStats | None:
    try:
        m = compiled.memory_analysis()
    except Exception:
        m = None
    if m is None:
        return None
    stats = MemoryStats(
        argument=int(m.argument_size_in_bytes),
        output=int(m.output_size_in_bytes),
        alias=int(m.alias_size_in_bytes),
        temp=int(m.temp_size_in_bytes),
        generated_code=int(m.generated_code_size_in_bytes),
    )
    stats.xla_peak = int(getattr(m, "peak_memory_in_bytes", 0) or 0)
    stats.total = stats.argument + stats.output - stats.alias + stats.temp
    return stats


def summarize_collectives(text: str) -> list[CollectiveStats]:
    by_kind: dict[str, list] = defaultdict(list)
    for c in find_collectives(text):
        by_kind[c.kind].append(c)
    out = []
    for kind in COLLECTIVES:
        items = by_kind.get(kind)
        if not items:
            continue
        top = sorted(items, key=lambda c: -c.bytes)[:3]
        out.append(
            CollectiveStats(
                kind=kind,
                count=len(items),
                bytes=sum(c.bytes for c in items),
                largest=max(c.bytes for c in items),
                in_loops=sum(c.repeats > 1 for c in items),
                bytes_per_step=sum(c.bytes * c.repeats for c in items),
                examples=[f"{_short_shape(c.shape)} @ {c.op_name}" for c in top],
            )
        )
    return out


def _short_shape(shape: str) -> str:
    """``f32[8,512]{1,0}`` -> ``f32[8,512]``; a tuple of n arrays -> its first array and ``+ n-1 more``."""
    arrays = re.findall(r"[a-z][a-z0-9]*\[[0-9,]*\]", shape)
    if not arrays:
        return shape
    return arrays[0] if len(arrays) == 1 else f"({arrays[0]} + {len(arrays) - 1} more)"


def _device_bytes(leaf: Any, sharding: Any) -> int:
    shape = tuple(leaf.shape)
    local = sharding.shard_shape(shape) if sharding is not None and hasattr(sharding, "shard_shape") else shape
    return array_bytes(tuple(local), leaf.dtype)


def make_mesh(plan: ShardPlan, devices: list | None = None) -> jax.sharding.Mesh:
    n = plan.num_devices
    devices = list(jax.devices()[:n] if devices is None else devices)
    return jax.make_mesh(
        tuple(plan.mesh.values()), tuple(plan.mesh), axis_types=(AxisType.Auto,) * len(plan.mesh), devices=devices
    )


def _shard_args(program: Program, plan: ShardPlan, mesh: Any) -> tuple[tuple, Any]:
    """The program's abstract args carrying NamedShardings, and matching out_shardings (None for forward)."""

    def sds(x: Any, spec: tuple) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=NamedSharding(mesh, partition_spec(spec)))

    def params_like(p: bx.Params) -> bx.Params:
        return jax.tree_util.tree_map_with_path(lambda kp, x: sds(x, plan.params[kp[0].key]), p)

    args = program.args
    n_params = 3 if program.name == "train step" else 1
    inputs = args[n_params:]
    in_leaves, in_tree = jax.tree.flatten(inputs)
    inputs = jax.tree.unflatten(in_tree, [sds(x, s) for x, s in zip(in_leaves, plan.inputs)])
    if program.name != "train step":
        return (params_like(args[0]), *inputs), None
    trainable, rest, opt_state = params_like(args[0]), params_like(args[1]), args[2]
    specs = state_specs(opt_state, plan)
    opt_state = jax.tree.map(sds, opt_state, specs)  # specs is flattened up to opt_state's leaves
    out = jax.tree.map(lambda x: x.sharding, (trainable, rest, opt_state))
    return (trainable, rest, opt_state, *inputs), (*out, NamedSharding(mesh, PartitionSpec()))


def compile_facts(program: Program, plan: ShardPlan | None = None, devices: list | None = None) -> CompiledFacts:
    """Lowers and compiles ``program`` (for ``plan``'s mesh when given) and reads costs, memory, collectives."""
    start = time.perf_counter()
    if plan is None:
        args, out_shardings, mesh = program.args, None, None
        jitted = None
    else:
        mesh = make_mesh(plan, devices)
        args, out_shardings = _shard_args(program, plan, mesh)
        kwargs = {} if out_shardings is None else {"out_shardings": out_shardings}
        jitted = program.jitted(**kwargs)
    if mesh is not None:
        with jax.set_mesh(mesh):
            lowered = jitted.lower(*args)
            compiled = lowered.compile()
    else:
        lowered = program.lower()  # the run's shared trace when the program has one
        compiled = lowered.compile()
    elapsed = time.perf_counter() - start
    text = compiled.as_text() or ""
    arg_bytes, params = _argument_bytes(program, args, compiled, plan)
    return CompiledFacts(
        backend=jax.default_backend(),
        devices=1 if plan is None else plan.num_devices,
        lowered=xla_cost(lowered),
        compiled=xla_cost(compiled),
        memory=memory_stats(compiled),
        loops=[LoopInfo(op_name=lp.op_name, trip_count=lp.trip_count) for lp in find_loops(text)],
        collectives=summarize_collectives(text),
        arg_bytes=arg_bytes,
        params=params,
        compile_seconds=round(elapsed, 3),
    )


def _argument_bytes(program: Program, args: tuple, compiled: Any, plan: ShardPlan | None):
    """Per-device bytes of each argument group, read from the compiled program's input shardings."""
    try:
        shardings = compiled.input_shardings[0]
    except Exception:
        shardings = None
    groups = ["params"] if program.name != "train step" else ["trainable", "rest", "opt_state"]
    groups += ["inputs"] * (len(args) - len(groups))
    totals: dict[str, int] = defaultdict(int)
    rows: list[ParamShard] = []
    for i, (group, arg) in enumerate(zip(groups, args)):
        leaves = jax.tree_util.tree_leaves_with_path(arg)
        shard_leaves = jax.tree.leaves(shardings[i]) if shardings is not None else [None] * len(leaves)
        if len(shard_leaves) != len(leaves):
            shard_leaves = [None] * len(leaves)
        for (kp, leaf), sh in zip(leaves, shard_leaves):
            device = _device_bytes(leaf, sh)
            totals[group] += device
            if group in ("params", "trainable", "rest"):
                path = kp[0].key
                full = array_bytes(tuple(leaf.shape), leaf.dtype)
                spec = plan.params.get(path, ()) if plan is not None else ()
                rows.append(
                    ParamShard(
                        path=path,
                        shape=list(leaf.shape),
                        dtype=str(leaf.dtype),
                        spec=spec_str(spec),
                        shards=full // device if device else 1,
                        bytes=full,
                        device_bytes=device,
                    )
                )
    out = dict(totals)
    if program.name == "train step":
        out["params"] = out.get("trainable", 0) + out.get("rest", 0)
    else:
        out["trainable"] = out.get("params", 0)
    out.setdefault("inputs", 0)
    out.setdefault("opt_state", 0)
    rows.sort(key=lambda r: r.path)
    return out, rows
