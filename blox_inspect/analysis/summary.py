"""Analysis tier: fill a Report (modules, params, FLOPs, edges, costs) from one abstract trace.

Nothing is allocated: params are ``jax.ShapeDtypeStruct`` (from ``jax.eval_shape`` of
the model's init, or from a checkpoint header), the forward pass is traced once with
``jax.make_jaxpr``, and XLA's numbers come from ``jit(...).lower(...).compile()`` of
that same jaxpr.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

import blox as bx
from blox._gc import gc_paused
from blox._paths import path_str
from blox_inspect.analysis.compile import memory_stats as compile_memory_stats
from blox_inspect.analysis.edges import compute_flow
from blox_inspect.analysis.flops import count_flops, xla_loop_reason
from blox_inspect.analysis.jaxpr import count_eqns, scan_lengths
from blox_inspect.analysis.trace import Trace, Traces, spec_of
from blox_inspect.common.errors import InspectError
from blox_inspect.common.units import array_bytes
from blox_inspect.load.model_file import LoadedModel
from blox_inspect.report.model import CallInfo, ModuleInfo, ParamInfo, Report, TensorSpec, Totals

Progress = Callable[[str], None]
FAST_COMPILE = {"xla_backend_optimization_level": 0}
# With xla=None (the CLI's default) programs larger than this skip XLA's compile: it costs
# about 1 ms per equation on a CPU (8 s for a 70B Llama's 12k equations), far more than the trace.
XLA_AUTO_MAX_EQNS = 5000
XLA_SKIPPED = (
    "XLA cost and memory analysis skipped: the forward program has {n:,} equations (more than {limit:,}), "
    "so compiling it would take longer than the summary itself. Pass --xla to compile anyway."
)

MSG_BAD_CHECKPOINT = (
    "{file}: could not read the checkpoint header: {error}. Pass a file written by blox.save (safetensors)."
)


def summary(
    model: bx.Module,
    *inputs: Any,
    params: bx.Params | None = None,
    train: bool = False,
    xla: bool = True,
    **kwargs: Any,
) -> Report:
    """Summarises ``model(params, *inputs, **kwargs)`` without allocating anything.

    Inputs may be arrays or ``jax.ShapeDtypeStruct``. ``params`` defaults to the
    model's own (abstract) init. ``train=True`` adds train-step FLOPs; ``xla=False``
    skips compiling (no XLA FLOPs or memory analysis). The keywords ``params``,
    ``train`` and ``xla`` are the summary's own; every other keyword goes to the model.

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx, blox_inspect
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> node = g / 'mlp'
        >>> mlp = bx.Sequential(node, [bx.Linear(node / 'l1', 8, rng), jax.nn.relu])
        >>> r = blox_inspect.summary(mlp, jax.ShapeDtypeStruct((2, 4), jnp.float32), xla=False)
        >>> r.module('net/mlp/l1').params, r.totals.flops  # 4*8+8 params; 2*2*4*8 + bias + relu
        (40, 160)
    """
    loaded = LoadedModel(model=model, inputs=tuple(inputs), kwargs=dict(kwargs), source=type(model).__name__)
    return summarize_loaded(loaded, train=train, xla=xla, params=params)


def summarize_loaded(
    loaded: LoadedModel,
    *,
    train: bool = False,
    params_file: str | None = None,
    xla: bool | None = True,
    params: bx.Params | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    stats: bool = False,
    traces: Traces | None = None,
    on_read: Callable[[int, int], None] | None = None,
) -> Report:
    """Builds the full Report of a loaded model (the CLI's and other tools' entry point).

    With ``params_file`` only the checkpoint's header is read, unless ``stats=True``:
    then each tensor is read once, one at a time, for its statistics (``ParamInfo.stats``).

    ``xla=True`` compiles the forward program for XLA's FLOP count and memory analysis,
    ``False`` skips that, ``None`` compiles unless the program is very large (see
    ``XLA_AUTO_MAX_EQNS``; a note says when it was skipped).

    ``traces`` shares one run's traces with the other analyses (cost, checks); when given, it
    already holds the params (``params``, ``params_file`` and ``seed`` are then ignored).
    """
    # Tracing makes millions of small objects and no cycles: the GC's full scans were a quarter of the time.
    with gc_paused():
        return _summarize_loaded(
            loaded, train, params_file, xla, params, seed, progress or (lambda _: None), stats, traces, on_read
        )


def _summarize_loaded(loaded, train, params_file, xla, params, seed, say, stats, traces, on_read) -> Report:
    if traces is None:
        if params is None and params_file:
            params = _checkpoint_params(params_file)
            # One message listing every missing, unexpected or mismatched tensor, before the forward
            # pass is traced with params it cannot use (which would fail somewhere deep inside).
            say("matching the checkpoint to the model")
            expected = Traces(loaded, seed=seed).params
            try:
                bx.check_matches(params, expected, where=params_file)
            except bx.CheckpointError as e:
                raise InspectError(str(e)) from e
        traces = Traces(loaded, params=params, seed=seed)
    say("building abstract params")
    params = traces.params
    say("tracing the forward pass")
    trace = traces.forward
    report = _build_report(loaded, params, trace)
    report.abstract = True
    if train:
        say("tracing the train step")
        _add_train_flops(report, traces)
    size = count_eqns(trace.jaxpr)
    if xla is None and size > XLA_AUTO_MAX_EQNS:
        report.notes.append(XLA_SKIPPED.format(n=size, limit=XLA_AUTO_MAX_EQNS))
    elif xla or xla is None:
        say("compiling with XLA for cost and memory analysis")
        _add_xla(report, trace)
    report.totals.train_memory_estimate = train_memory_estimate(report, trace)
    if stats:
        if not params_file:
            raise InspectError(MSG_STATS_NEED_VALUES)
        say("reading the checkpoint for statistics")
        add_param_stats(report, params_file, on_read)
    return report


MSG_STATS_NEED_VALUES = (
    "statistics need real values: abstract params have only shapes. Pass a checkpoint with --params CKPT "
    "(a file written by blox.save) together with --stats."
)


def add_param_stats(report: Report, file: str, on_read: Callable[[int, int], None] | None = None) -> None:
    """Fills ``ParamInfo.stats`` from a checkpoint, reading one tensor at a time (keys are skipped).

    ``on_read(done_bytes, total_bytes)`` is called before the first tensor and after each one (a progress bar).
    """
    import dataclasses

    from blox_inspect.analysis.stats import array_stats
    from blox_inspect.load.checkpoints import CheckpointReader

    reader = CheckpointReader(file)
    todo = [p for p in report.params if p.path in reader and not p.dtype.startswith("key<")]
    total, done = sum(p.bytes for p in todo), 0
    if on_read:
        on_read(0, total)
    for p in todo:
        p.stats = dataclasses.asdict(array_stats(reader.read(p.path)))
        done += p.bytes
        if on_read:
            on_read(done, total)


def _checkpoint_params(file: str) -> bx.Params:
    if not os.path.exists(file):
        raise InspectError(f"{file}: no such checkpoint file. Pass --params with a file written by blox.save.")
    try:
        return bx.load(file, abstract=True)
    except bx.CheckpointError as e:
        raise InspectError(str(e)) from e
    except Exception as e:
        raise InspectError(MSG_BAD_CHECKPOINT.format(file=file, error=f"{type(e).__name__}: {e}")) from e


# --- modules, params, FLOPs -------------------------------------------------------


def _tree_order(root: bx.Graph) -> list[bx.Graph]:
    """Bound nodes depth-first, children in creation order (iterative: deep models are fine)."""
    out = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.module is not None:
            out.append(node)
        stack.extend(reversed(list(node._children.values())))
    return out


_PLAIN = frozenset({int, float, str, bool, type(None)})


def short(value: Any, limit: int = 48) -> str:
    """A constructor argument as a short string: modules as their path, functions by name."""
    if type(value) in _PLAIN:  # most arguments are ints, floats, strings: skip the checks below
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 3] + "..."
    if isinstance(value, bx.Module):
        return value.scope_name
    if isinstance(value, (list, tuple)):
        inner = ", ".join(short(v, limit) for v in value)
        text = f"[{inner}]" if isinstance(value, list) else f"({inner})"
    elif isinstance(value, (jax.Array, np.ndarray)) or hasattr(value, "shape") and hasattr(value, "dtype"):
        text = str(spec_of(value))
    elif callable(value):
        text = getattr(value, "__name__", None) or type(value).__name__
    elif isinstance(value, type) or isinstance(value, np.dtype):
        text = getattr(value, "__name__", str(value))
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _config(module: bx.Module) -> dict[str, str]:
    return {k: short(v) for k, v in module.config.items()}


def _param_infos(params: bx.Params) -> list[ParamInfo]:
    out = []
    dtypes: dict[Any, tuple[str, int]] = {}  # dtype -> (name, bytes per element), worked out once each
    for path, p in params.items():
        v = p.value
        shape = [int(d) for d in v.shape]
        size = math.prod(shape)
        known = dtypes.get(v.dtype)
        if known is None:
            known = dtypes[v.dtype] = (str(v.dtype), array_bytes((), v.dtype))
        out.append(
            ParamInfo(
                path=path_str(path),
                module=path_str(path[:-1]),
                name=path[-1],
                shape=shape,
                dtype=known[0],
                size=size,
                bytes=size * known[1],
                trainable=p.trainable,
                metadata={k: short(m) for k, m in p.metadata.items()} if p.metadata else {},
            )
        )
    return out


def _within(path: tuple, ancestor: tuple) -> bool:
    return path[: len(ancestor)] == ancestor


def _build_report(loaded: LoadedModel, params: bx.Params, trace: Trace) -> Report:
    root = loaded.graph
    nodes = _tree_order(root)
    by_id = {id(n.module): n for n in nodes}
    infos: dict[str, ModuleInfo] = {}
    bound: dict[tuple, str] = {}
    order: list[ModuleInfo] = []
    depths: dict[int, int] = {}  # id(node) -> its depth, for bound nodes (parents come first in tree order)
    for node in nodes:
        path = node.path
        parent, depth = None, 0
        up = node.parent
        while up is not None and up.module is None:  # plain graph nodes (folders) add no level
            up = up.parent
        if up is not None:
            parent, depth = up.path_str, depths[id(up)] + 1
        depths[id(node)] = depth
        info = ModuleInfo(
            path=node.path_str,
            path_tuple=list(path),
            name=node.name,
            type=type(node.module).__name__,
            config=_config(node.module),
            depth=depth,
            parent=parent,
            children=[],
            calls=0,
            call_info=[],
            shared=False,
        )
        infos[info.path] = info
        bound[path] = info.path
        order.append(info)
        if parent is not None:
            infos[parent].children.append(info.path)

    # Calls, callers, sharing.
    callers: dict[str, set] = {}
    site_paths: list[str] = []
    for call in trace.calls:
        node = by_id.get(id(call.module))
        path = node.path_str if node is not None else call.module.scope_name
        site_paths.append(path)
        info = infos.get(path)
        if info is None:
            continue  # a module from another graph: its calls still count for edges
        caller = call.caller.scope_name if call.caller is not None else None
        info.calls += 1
        info.call_info.append(CallInfo(inputs=call.inputs, outputs=call.outputs, method=call.method, caller=caller))
        callers.setdefault(path, set()).add(caller)
        if call.caller is not None and not _within(tuple(info.path_tuple), call.caller.path):
            info.shared = True
    for path, who in callers.items():
        if len(who) > 1:
            infos[path].shared = True

    # Params: own, then subtree sums in one bottom-up pass (reverse tree order).
    pinfos = _param_infos(params)
    rngs = {n.path_str for n in nodes if isinstance(n.module, bx.Rng)}
    totals = Totals()
    for key, p in zip(params.keys(), pinfos):
        owner = _owner(key[:-1], bound)  # the module's path: what params_path_tuple(p) parses back
        if owner is not None:
            infos[owner].param_paths.append(p.path)
        if p.module in rngs:  # an Rng's seed and counter are state: counted on their own line
            p.rng_state = True
            totals.rng_state += p.size
            totals.rng_state_bytes += p.bytes
            continue
        totals.params += p.size
        totals.param_bytes += p.bytes
        if p.trainable:
            totals.trainable_params += p.size
        totals.params_by_dtype[p.dtype] = totals.params_by_dtype.get(p.dtype, 0) + p.size
        totals.bytes_by_dtype[p.dtype] = totals.bytes_by_dtype.get(p.dtype, 0) + p.bytes
        if owner is not None:
            m = infos[owner]
            m.params_own += p.size
            m.param_bytes_own += p.bytes
            m.trainable_params_own += p.size if p.trainable else 0
    totals.non_trainable_params = totals.params - totals.trainable_params

    count = count_flops(trace.jaxpr, infos.keys())
    for path, f in count.by_scope.items():
        if path in infos:
            infos[path].flops_own = f
    totals.flops = count.total
    for info in order:
        info.params = info.params_own
        info.trainable_params = info.trainable_params_own
        info.param_bytes = info.param_bytes_own
        info.flops = info.flops_own
    for info in reversed(order):
        if info.parent is not None:
            up = infos[info.parent]
            up.params += info.params
            up.trainable_params += info.trainable_params
            up.param_bytes += info.param_bytes
            up.flops += info.flops

    notes = []
    if count.dynamic_loops:
        where = sorted({s or "(top level)" for s in count.dynamic_loops})
        notes.append(
            "dynamic while_loop(s) in " + ", ".join(where) + ": their body is counted once (no static trip count)."
        )
    if count.by_scope.get("", 0):
        notes.append(f"{count.by_scope['']:,} FLOPs run outside every module (counted in the total only).")

    edges, merges = compute_flow(trace, site_paths)
    return Report(
        model=loaded.source,
        root=root.name,
        inputs=[spec_of(x) for x in jax.tree.leaves(loaded.abstract_inputs())],
        kwargs={k: short(v) for k, v in loaded.kwargs.items()},
        totals=totals,
        modules=order,
        params=pinfos,
        edges=edges,
        merges=merges,
        outputs=list(trace.out_specs),
        notes=notes,
    )


def params_path_tuple(p: ParamInfo) -> tuple:
    return tuple(bx.parse_path(p.module))


def _owner(path: tuple, bound: dict[tuple, str]) -> str | None:
    """The nearest bound module at or above ``path``."""
    while path:
        if path in bound:
            return bound[path]
        path = path[:-1]
    return None


# --- train step, XLA, memory --------------------------------------------------------


def _add_train_flops(report: Report, traces: Traces) -> None:
    # Observed like the forward pass, so a failure in training mode names its module
    # (the tags it adds count zero FLOPs and pass tangents straight through).
    jaxpr = traces.train_step().jaxpr
    infos = {m.path: m for m in report.modules}
    count = count_flops(jaxpr, infos.keys())
    report.totals.flops_train = count.total
    for m in report.modules:
        m.flops_train_own = count.by_scope.get(m.path, 0)
        m.flops_train = m.flops_train_own
    for m in reversed(report.modules):
        if m.parent is not None:
            infos[m.parent].flops_train += m.flops_train


def _add_xla(report: Report, trace: Trace) -> None:
    try:
        lowered = trace.lower()
        try:
            # The program is analysed, never run: skip LLVM's optimisations (the HLO passes that
            # decide fusion, FLOPs and buffers are unchanged), which roughly halves compile time.
            compiled = lowered.compile(compiler_options=FAST_COMPILE)
        except Exception:
            compiled = lowered.compile()
    except Exception as e:  # XLA numbers are extra: keep the report, say why they are missing
        report.notes.append(f"XLA compile failed, so flops_xla and memory are missing: {type(e).__name__}: {e}")
        return
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    if cost and "flops" in cost:
        report.totals.flops_xla = int(cost["flops"])
        reason = xla_loop_reason(report.totals.flops, report.totals.flops_xla, scan_lengths(trace.jaxpr))
        if reason:
            report.notes.append(f"Forward FLOPs (XLA) differ from ours: {reason}.")
    report.totals.memory = memory_stats(compiled)


def memory_stats(compiled: Any) -> dict[str, int]:
    """argument/output/alias/temp/generated_code/peak bytes of a compiled program, for the Report's JSON.

    ``peak`` is :attr:`MemoryStats.peak <blox_inspect.report.cost.MemoryStats.peak>`, the one
    definition ``cost`` uses too: the larger of XLA's own peak and every buffer live at once;
    ``xla_peak`` is XLA's figure alone (0 where the backend reports none, as CPU does).
    """
    m = compile_memory_stats(compiled)
    if m is None:
        return {}
    return {
        "argument": m.argument,
        "output": m.output,
        "alias": m.alias,
        "temp": m.temp,
        "generated_code": m.generated_code,
        "xla_peak": m.xla_peak,
        "peak": m.peak,
    }


def tensor_bytes(t: TensorSpec) -> int:
    return array_bytes(t.shape, t.dtype)


def train_memory_estimate(report: Report, trace: Trace | None = None) -> dict[str, int]:
    """Bytes to train with Adam: params + grads + 2 moments + activations.

    ``grads`` and each Adam moment are the size of the trainable params; ``activations``
    is the sum of the outputs of every call of a leaf module (one that calls no other
    module) plus the model's inputs: what the backward pass keeps alive without
    rematerialisation. Calls inside ``scan`` are traced once, so count once here.
    """
    t = report.totals
    trainable_bytes = sum(p.bytes for p in report.params if p.trainable)
    callers = {c.caller for m in report.modules for c in m.call_info}
    acts = sum(tensor_bytes(x) for x in report.inputs)
    for m in report.modules:
        if m.path in callers:
            continue
        for c in m.call_info:
            acts += sum(tensor_bytes(x) for x in c.outputs)
    out = {
        "params": t.param_bytes,
        "grads": trainable_bytes,
        "optimizer": 2 * trainable_bytes,
        "activations": acts,
    }
    out["total"] = sum(out.values())
    return out
