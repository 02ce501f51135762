"""Cost analysis: our loop-aware FLOPs beside XLA's cost and memory analyses, a roofline, and (for a mesh)
per-device memory, collectives and a fit verdict. Produces a :class:`CostReport`; prints nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import blox as bx
from blox_inspect.analysis.compile import compile_facts
from blox_inspect.analysis.devices import DTYPE_ALIASES, DeviceSpec, get_device
from blox_inspect.analysis.flops import FlopCount, count_flops, xla_loop_reason
from blox_inspect.analysis.jaxpr import scan_lengths
from blox_inspect.analysis.programs import build_program, module_scopes, op_path, scope_pattern
from blox_inspect.analysis.shard_plan import ShardPlan, make_plan
from blox_inspect.analysis.simulate import compile_for_mesh, with_batch
from blox_inspect.analysis.trace import Traces
from blox_inspect.common.units import human_bytes
from blox_inspect.load.model_file import LoadedModel
from blox_inspect.report.cost import (
    Comparison,
    CompiledFacts,
    CostReport,
    DeviceMemory,
    ModuleFlops,
    Roofline,
    ShardingReport,
)

OUTSIDE = "(outside modules)"
MATMUL_PRIMITIVES = ("dot_general", "conv_general_dilated")


def cost(
    model: Any,
    *inputs: Any,
    train: bool = False,
    device: str | None = "h100",
    dtype: str | None = None,
    mesh: str | dict[str, int] | None = None,
    sharding: str = "fsdp",
    device_memory: int | str | None = None,
    **kwargs: Any,
) -> CostReport:
    """Costs of ``model(params, *inputs, **kwargs)`` (or its train step), compiled from abstract inputs.

    Inputs may be arrays or ``jax.ShapeDtypeStruct``. ``mesh`` (``'data=8'`` or ``{'data': 8}``) compiles for a
    device mesh with the ``sharding`` strategy; this needs that many devices in this process (e.g.
    ``jax.config.update('jax_num_cpu_devices', 8)`` at start-up); the CLI simulates larger meshes in a
    subprocess. Every other keyword goes to the model.

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx, blox_inspect
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> lin = bx.Linear(g / 'proj', 16, rng, use_bias=False)
        >>> r = blox_inspect.cost(lin, jax.ShapeDtypeStruct((64, 32), jnp.float32), device='a100')
        >>> r.flops, r.compiled.flops, r.roofline.bound  # 2 * 64 * 32 * 16
        (65536, 65536, 'memory')
    """
    from blox_inspect.analysis.devices import parse_bytes
    from blox_inspect.analysis.shard_plan import parse_mesh

    loaded = LoadedModel(model=model, inputs=tuple(inputs), kwargs=dict(kwargs), source=type(model).__name__)
    if isinstance(mesh, str):
        mesh = parse_mesh(mesh)
    if isinstance(device_memory, str):
        device_memory = parse_bytes(device_memory)
    return analyse_cost(
        loaded, train=train, device=device, dtype=dtype, mesh=mesh, strategy=sharding, device_memory=device_memory
    )


def analyse_cost(
    loaded: LoadedModel,
    *,
    train: bool = False,
    device: str | None = "h100",
    dtype: str | None = None,
    mesh: dict[str, int] | None = None,
    strategy: str = "fsdp",
    device_memory: int | None = None,
    batch: int | None = None,
    spec: str | None = None,
    force_subprocess: bool = False,
    traces: Any = None,
) -> CostReport:
    """Everything ``blox-inspect cost`` reports, from abstract inputs only.

    Args:
        loaded: the model (see :func:`blox_inspect.load_model`).
        train: analyse the whole train step (forward, backward, Adam update) instead of the forward pass.
        device: roofline device name (see ``blox_inspect.analysis.devices.DEVICES``), or None for no roofline.
        dtype: the compute dtype for the roofline peak; default: the dtype holding most parameter bytes.
        mesh: ``{'data': 8}`` etc. to compile for a device mesh and estimate per-device memory.
        strategy: 'fsdp', 'tp' or 'metadata' (see ``blox_inspect.analysis.shard_plan``).
        device_memory: bytes per device for the fit verdict; default: the device's memory.
        batch: override the leading dimension of every input.
        spec: the model file spec, needed to simulate meshes larger than this process's device count.
        force_subprocess: always compile meshes in a subprocess (used by tests).
        traces: the run's shared :class:`~blox_inspect.analysis.trace.Traces` (ignored with ``batch``,
            which changes the inputs).

    Example:
        >>> from blox_inspect.load.model_file import load_model
        >>> r = analyse_cost(load_model('tests/blox_inspect/models/matmul.py'), device=None)
        >>> r.flops == r.compiled.flops == 2 * 64 * 32 * 16
        True
    """
    if batch is not None or traces is None or traces.loaded is not loaded:
        loaded = with_batch(loaded, batch)
        traces = Traces(loaded)
    params = traces.params
    program = build_program(loaded, train, traces=traces)
    scopes = module_scopes(loaded)
    closed = program.jaxpr()
    count = count_flops(closed, scopes)
    plan: ShardPlan | None = None
    how = "in-process"
    if mesh is None:
        facts = compile_facts(program)
    else:
        plan = make_plan(params, loaded.abstract_inputs(), mesh, strategy)
        facts, how = compile_for_mesh(loaded, plan, train, spec, batch, force_subprocess)
    report = CostReport(
        model=loaded.source,
        program=program.name,
        backend=facts.backend,
        devices=facts.devices,
        flops=count.total,
        flops_matmul=sum(count.by_primitive.get(p, 0) for p in MATMUL_PRIMITIVES),
        modules=module_rows(loaded, count),
        lowered=facts.lowered,
        compiled=facts.compiled,
        comparison=compare(count, facts, scan_lengths(closed)),
        loops=facts.loops,
        memory=facts.memory,
        dynamic_loops=list(count.dynamic_loops),
    )
    if count.dynamic_loops:
        report.notes.append(
            f"{len(count.dynamic_loops)} while_loop(s) without a static trip count (in "
            f"{', '.join(sorted(set(count.dynamic_loops))) or 'the top level'}) are counted once by both counts."
        )
    spec_dev = get_device(device) if device else None
    if spec_dev is not None:
        compute_dtype = dtype or dominant_dtype(params)
        if dtype is None and compute_dtype == "f32" and "tf32" in spec_dev.flops:
            # JAX's default matmul precision runs f32 dots on tensor cores as TF32 on Ampere and newer.
            compute_dtype = "tf32"
            report.notes.append(
                "roofline: f32 matmuls taken at the TF32 tensor-core peak (JAX's default "
                "precision on NVIDIA); --dtype f32 for the full-precision CUDA-core peak"
            )
        report.roofline = roofline(spec_dev, compute_dtype, count.total // facts.devices, facts)
    for c in facts.collectives:
        c.examples = [describe_example(e, scopes) for e in c.examples]
    if plan is not None:
        budget = device_memory or (spec_dev.memory if spec_dev else None) or 80 * 10**9
        leaves = jax.tree.leaves(loaded.inputs)
        global_batch = int(leaves[0].shape[0]) if leaves and leaves[0].shape else None
        report.sharding = sharding_report(plan, facts, how, budget, train, global_batch)
    return report


def describe_example(example: str, scopes: Any) -> str:
    """``'f32[8,16] @ jit(step)/transpose(jvp(net/mlp))/net/mlp/l1/dot_general'`` ->
    ``'f32[8,16] net/mlp/l1 dot_general (backward)'``: the innermost module named in the op name."""
    shape, _, op_name = example.partition(" @ ")
    path = op_path(op_name)
    found = [s for s in scopes if scope_pattern(s).search(path)]
    where = max(found, key=len) if found else ""
    prim = op_name.rsplit("/", 1)[-1].strip("()") if op_name else ""
    backward = " (backward)" if "transpose(" in op_name else ""
    return " ".join(x for x in (shape, where, prim + backward) if x)


# --- per-module FLOPs -------------------------------------------------------------------------------------


def module_rows(loaded: LoadedModel, count: FlopCount) -> list[ModuleFlops]:
    """One row per module in graph order; depth counts enclosing MODULES (plain graph nodes such as a
    ``layers`` folder do not add a level), and name is the path relative to the enclosing module."""
    modules = [(path, module) for path, module in loaded.graph.walk()]
    bound = {path for path, _ in modules}
    rows = []
    for path, module in modules:
        scope = module.scope_name
        parents = [path[:i] for i in range(1, len(path)) if path[:i] in bound]
        name = bx.path_str(path[len(parents[-1]) :]) if parents else scope
        total = sum(f for s, f in count.by_scope.items() if s == scope or s.startswith(scope + "/"))
        rows.append(ModuleFlops(scope, type(module).__name__, len(parents), count.by_scope.get(scope, 0), total, name))
    outside = count.by_scope.get("", 0)
    if outside:
        rows.append(ModuleFlops(OUTSIDE, "", 0, outside, outside, OUTSIDE))
    return rows


# --- ours vs XLA ----------------------------------------------------------------------------------------


def _close(a: int | None, b: int | None, tol: float = 0.005) -> bool:
    return a is not None and b is not None and abs(a - b) <= tol * max(abs(a), abs(b), 1)


def compare(count: FlopCount, facts: CompiledFacts, scans: list[int] | None = None) -> list[Comparison]:
    """The three metrics side by side, each with a one-line reason wherever the numbers differ."""
    ours, lo, co = count.total, facts.lowered.flops, facts.compiled.flops
    reasons = []
    if lo is None and co is None:
        reasons.append(f"the {facts.backend} backend's cost analysis returned no FLOP count")
    elif lo is None or co is None:
        reasons.append(
            f"the {facts.backend} backend returned no FLOP count for the "
            f"{'lowered' if lo is None else 'compiled'} program"
        )
    scans = [n for n in (scans or []) if n > 1]
    xla = lo if lo is not None else co
    loop_reason = xla_loop_reason(ours, max(lo or 0, co or 0) if xla is not None else None, scans)
    if loop_reason:
        if lo is None:
            reasons.append(loop_reason)
        else:  # the ratio is to the lowered count, the one before XLA's own simplifications
            reasons.append(loop_reason.rsplit("hence", 1)[0] + f"hence ours = {ours / max(lo, 1):.1f}x XLA's")
    if facts.devices > 1 and co is not None:
        reasons.append(
            f"compiled = one device's share of the {facts.devices}-device program (ours and lowered "
            f"count the whole program; ours / {facts.devices} = {ours // facts.devices:,})"
        )
    if not loop_reason and lo is not None and not _close(ours, lo):
        reasons.append(
            "per-op rules differ for non-matmul ops: ours counts each elementwise, comparison, "
            "RNG or transcendental op as 1 FLOP per element, XLA has its own per-op costs and "
            "lists transcendentals separately; both count a matmul as 2·M·N·K"
        )
    if facts.devices == 1 and lo is not None and co is not None and not _close(lo, co):
        reasons.append("compiling changed XLA's count (fusion, algebraic simplification, dead code removed)")
    if not reasons:
        reasons.append("all agree")
    rows = [Comparison("FLOPs", ours, lo, co, "; ".join(reasons))]

    lt, ct = facts.lowered.transcendentals, facts.compiled.transcendentals
    note = "ours has no separate count: each transcendental op is 1 FLOP per element, included in FLOPs above"
    if lt is None and ct is None:
        note = f"the {facts.backend} backend's cost analysis returned no transcendental count"
    rows.append(Comparison("transcendentals", None, lt, ct, note))

    lb, cb = facts.lowered.bytes_accessed, facts.compiled.bytes_accessed
    if lb is None and cb is None:
        note = f"the {facts.backend} backend's cost analysis returned no byte count"
    else:
        parts = ["ours counts FLOPs only"]
        if facts.devices > 1:
            parts.append("compiled = per device")
        if lb is not None and cb is not None and cb < lb:
            parts.append("fusion keeps intermediates out of memory, so the compiled program touches fewer bytes")
        elif lb is not None and cb is not None and cb > lb:
            parts.append("the compiled program adds copies, layout changes or collectives' buffers")
        if scans:
            parts.append("loop bodies counted once")
        note = "; ".join(parts)
    rows.append(Comparison("bytes accessed", None, lb, cb, note))
    return rows


# --- roofline ----------------------------------------------------------------------------------------------


def dominant_dtype(params: Any) -> str:
    """The floating dtype holding the most parameter bytes ('f32' when there are none)."""
    by_dtype: Counter = Counter()
    for leaf in jax.tree.leaves(params):
        try:
            dt = np.dtype(leaf.dtype)
        except TypeError:  # PRNG key dtypes
            continue
        if jnp.issubdtype(dt, jnp.floating):
            by_dtype[dt.name] += int(np.prod(leaf.shape)) * dt.itemsize
    name = by_dtype.most_common(1)[0][0] if by_dtype else "float32"
    return DTYPE_ALIASES.get(name, name)


def roofline(device: DeviceSpec, dtype: str, flops: int, facts: CompiledFacts) -> Roofline:
    """A lower bound on one step's time: max(FLOPs / peak FLOP/s, bytes / bandwidth), per device."""
    peak = device.peak_flops(dtype)
    nbytes = facts.compiled.bytes_accessed or facts.lowered.bytes_accessed or 0
    compute_s = flops / peak
    memory_s = nbytes / device.bandwidth
    intensity = flops / nbytes if nbytes else math.inf
    ridge = peak / device.bandwidth
    return Roofline(
        device=device.name,
        description=device.description,
        dtype=DTYPE_ALIASES.get(dtype, dtype),
        peak_flops=peak,
        bandwidth=device.bandwidth,
        flops=flops,
        bytes=nbytes,
        intensity=round(intensity, 3) if nbytes else 0.0,
        ridge=round(ridge, 3),
        bound="compute" if compute_s >= memory_s else "memory",
        compute_seconds=compute_s,
        memory_seconds=memory_s,
        seconds=max(compute_s, memory_s),
        source=device.source,
    )


# --- sharding: per device, verdict, advice -------------------------------------------------------------


def sharding_report(
    plan: ShardPlan, facts: CompiledFacts, how: str, budget: int, train: bool, batch: int | None = None
) -> ShardingReport:
    mem = facts.memory
    ab = facts.arg_bytes
    grads = ab.get("trainable", 0) if train else 0
    temp = mem.temp if mem else 0
    per = DeviceMemory(
        params=ab.get("params", 0),
        gradients=grads,
        optimizer_state=ab.get("opt_state", 0),
        inputs=ab.get("inputs", 0),
        activations=max(temp - grads, 0),
        temp=temp,
        output=mem.output if mem else 0,
        alias=mem.alias if mem else 0,
        peak=mem.peak if mem else ab.get("params", 0) + ab.get("opt_state", 0) + ab.get("inputs", 0),
    )
    fits = per.peak <= budget
    report = ShardingReport(
        mesh=dict(plan.mesh),
        strategy=plan.strategy,
        devices=plan.num_devices,
        how=how,
        per_device=per,
        device_memory=budget,
        fits=fits,
        headroom=budget - per.peak,
        params=facts.params,
        collectives=facts.collectives,
        notes=list(plan.notes),
    )
    if mem is None:
        report.notes.append("the backend gave no memory_analysis; peak = params + optimizer state + inputs only")
    if facts.backend == "cpu":
        report.notes.append(
            "compiled by XLA:CPU: parameter, gradient and optimizer bytes are exact for this sharding, but CPU "
            "runs bf16 matmuls in f32 and fuses and schedules differently from GPU/TPU, so activation and temp "
            "bytes are indicative (usually an over-estimate for bf16 models)"
        )
    if not fits:
        report.advice = advice(plan, per, budget, train, facts, batch)
    return report


def advice(
    plan: ShardPlan, per: DeviceMemory, budget: int, train: bool, facts: CompiledFacts, batch: int | None = None
) -> list[str]:
    """Concrete next steps when the peak exceeds the budget, the one addressing the most bytes first."""
    levers: list[tuple[int, str]] = []
    over = per.peak - budget
    state = per.params + per.gradients + per.optimizer_state
    # Scale per-device state back to the whole model by how much the params are sharded on average.
    spread = sum(p.bytes for p in facts.params) / max(sum(p.device_bytes for p in facts.params), 1)
    room = budget - (per.peak - state)
    if state > 0 and room > 0:
        n = 1 << max(math.ceil(state * spread / room) - 1, 0).bit_length()
        if plan.strategy != "fsdp" or n > plan.mesh.get("data", 1):
            levers.append(
                (
                    state,
                    (
                        f"shard params, gradients and optimizer state over more devices: they take {human_bytes(state)} "
                        f"per device now; FSDP over {n} devices (--mesh data={n} --sharding fsdp) brings them to about "
                        f"{human_bytes(state * spread / n)}"
                    ),
                )
            )
    if per.activations > 0.2 * per.peak:
        text = (
            f"activations and temporaries take {human_bytes(per.activations)} per device: rematerialise (wrap each "
            "block's call in jax.checkpoint, keeping only block inputs for the backward pass)"
        )
        data = plan.mesh.get("data", 1)
        if batch and batch % data == 0 and "data" in plan.mesh:
            local = batch // data
            fit_local = int(local * (per.activations - over) / per.activations) if per.activations > over else 0
            if 1 <= fit_local < local:
                text += (
                    f", or cut the per-device batch from {local} to {fit_local} (--batch {fit_local * data}; "
                    "activations scale about linearly with it)"
                )
            elif local > 1:
                text += f", or cut the per-device batch (now {local}; --batch)"
        levers.append((per.activations, text))
    if train and per.optimizer_state >= per.params:
        levers.append(
            (
                per.optimizer_state // 2,
                (
                    f"Adam's two moments take {human_bytes(per.optimizer_state)} per device: a factored optimiser "
                    "(optax.adafactor) or bf16 moments shrink them"
                ),
            )
        )
    fp32 = sum(p.device_bytes for p in facts.params if p.dtype == "float32")
    if fp32 > 0.5 * per.params:
        levers.append(
            (
                fp32,
                (
                    f"{human_bytes(fp32)} of the per-device params are float32: storing them in bfloat16 (param_dtype) "
                    "halves params, gradients and moments"
                ),
            )
        )
    levers.sort(key=lambda lv: -lv[0])
    out = [text for _, text in levers]
    return out or [f"the peak exceeds the budget by {human_bytes(over)}: try a smaller batch or remat"]
