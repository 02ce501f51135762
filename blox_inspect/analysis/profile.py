"""Profiling: run the real forward pass (or train step) on the device under ``jax.profiler`` and measure each module.

Unlike every other analysis, this one allocates: real params (the model's init, or ``--params CKPT``), random
inputs of the factory's shapes (or the factory's own arrays), and the steps run for real. The time of every
device op event in the trace goes to a module through the compiled HLO's op metadata
(:mod:`blox_inspect.analysis.op_modules`); FLOPs are the summary's (ours, loop-aware). Produces a
:class:`ProfileReport`; prints nothing (progress goes through ``progress``).
"""

from __future__ import annotations

import glob
import math
import os
import re
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import blox as bx
from blox_inspect.analysis.cost import dominant_dtype
from blox_inspect.analysis.devices import DTYPE_ALIASES, get_device
from blox_inspect.analysis.op_modules import HloOp, hlo_module_name, hlo_ops
from blox_inspect.analysis.op_times import OpStats, op_times
from blox_inspect.analysis.programs import build_program
from blox_inspect.analysis.summary import MSG_BAD_CHECKPOINT, summarize_loaded
from blox_inspect.analysis.trace import Traces, abstractify
from blox_inspect.analysis.trace_events import OpEvents, find_trace_file, op_events, read_trace
from blox_inspect.analysis.train import make_train_step
from blox_inspect.common.errors import InspectError
from blox_inspect.load.model_file import LoadedModel
from blox_inspect.report.model import Report
from blox_inspect.report.profile import ModuleTime, OpTime, Peak, ProfileReport, ProfileTotals

Progress = Callable[[str], None]
AUTO = "auto"
INT_INPUT_RANGE = 8  # random integer inputs (token ids, labels) are drawn from [0, 8)

MSG_STEPS = "--steps must be a whole number of profiled steps, 1 or more; got {got!r}. For example --steps 10."
MSG_WARMUP = (
    "--warmup must be a whole number of untimed steps run before profiling, 0 or more; got {got!r}. "
    "For example --warmup 2."
)
MSG_COMPILE_FAILED = (
    "XLA failed to compile the {program} of {model} ({error}: {message}). The model traced, so its shapes are "
    "consistent; the failure is in XLA (an unsupported op or dtype on the {backend} backend, or out of memory). "
    "Shrink the factory's inputs, or run with --debug for the traceback."
)
MSG_RUN_FAILED = (
    "the compiled {program} of {model} failed while running on the {backend} device ({error}: {message}). "
    "It may not fit in device memory: shrink the factory's batch, or profile the forward pass without --train."
)
MSG_TRACE_DIR = "--trace-dir {path}: exists and is not a folder. Pass a folder (it is created when missing)."
MSG_PROFILER = (
    "could not start the JAX profiler ({error}: {message}). Only one trace runs at a time in a process: stop "
    "any jax.profiler.start_trace of your own first."
)
MSG_NO_EVENTS = (
    "the trace {file} holds no device op events (events with an hlo_op argument); the {backend} backend's "
    "profiler recorded none of the {program}'s ops, so there is nothing to attribute. Open the trace in "
    "Perfetto (ui.perfetto.dev) to see what it holds."
)
MSG_NO_CHECKPOINT = "{file}: no such checkpoint file. Pass --params with a file written by blox.save."


def check_counts(steps: Any, warmup: Any) -> tuple[int, int]:
    """``--steps`` (1 or more) and ``--warmup`` (0 or more) as ints, or an InspectError saying what is wrong.

    Example:
        >>> check_counts('10', 2)
        (10, 2)
    """
    return _whole(steps, 1, MSG_STEPS), _whole(warmup, 0, MSG_WARMUP)


def _whole(value: Any, least: int, message: str) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = least - 1
    if n < least:
        raise InspectError(message.format(got=value))
    return n


def detect_device(kind: str) -> str | None:
    """The name in ``DEVICES`` of a JAX device kind (``jax.devices()[0].device_kind``), None when unlisted.

    Example:
        >>> detect_device('NVIDIA H100 80GB HBM3'), detect_device('TPU v5 lite'), detect_device('cpu')
        ('h100', 'tpu-v5e', None)
    """
    k = kind.lower()
    if "h200" in k:
        return "h200"
    if "h100" in k:
        return "h100-pcie" if "pcie" in k else "h100"
    if "a100" in k:
        return "a100-40gb" if "40gb" in k else "a100"
    if re.search(r"\bl4\b", k):
        return "l4"
    if "tpu" in k:
        if "v4" in k:
            return "tpu-v4"
        if "lite" in k or "v5e" in k:
            return "tpu-v5e"
        if "v5" in k:
            return "tpu-v5p"
    return None


def profile(
    model: bx.Module,
    *inputs: Any,
    params: bx.Params | None = None,
    train: bool = False,
    steps: int = 10,
    warmup: int = 2,
    device: str | None = AUTO,
    dtype: str | None = None,
    trace_dir: str | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> ProfileReport:
    """Measures ``model(params, *inputs, **kwargs)`` (or its train step) on the device, per module.

    Inputs may be arrays (used as they are) or ``jax.ShapeDtypeStruct`` (random values of that shape: normal
    floats, integers in [0, 8)). ``params`` defaults to the model's init with ``seed``. ``device`` names the
    roofline peak (``'auto'``: the detected device; None: no roofline). The trace goes to ``trace_dir`` (default:
    a new temporary folder; ``report.trace_file`` says where). Every other keyword goes to the model.

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx, blox_inspect
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> lin = bx.Linear(g / 'proj', 64, rng)
        >>> r = blox_inspect.profile(lin, jax.ShapeDtypeStruct((128, 256), jnp.float32), steps=3, warmup=1)
        >>> r.module('net/proj').total_seconds > 0, r.module('net/proj').flops == 2 * 128 * 256 * 64 + 128 * 64
        (True, True)
    """
    loaded = LoadedModel(model=model, inputs=tuple(inputs), kwargs=dict(kwargs), source=type(model).__name__)
    return profile_loaded(
        loaded,
        train=train,
        steps=steps,
        warmup=warmup,
        params=params,
        device=device,
        dtype=dtype,
        trace_dir=trace_dir,
        seed=seed,
    )


def profile_loaded(
    loaded: LoadedModel,
    *,
    train: bool = False,
    steps: int = 10,
    warmup: int = 2,
    params_file: str | None = None,
    params: bx.Params | None = None,
    device: str | None = AUTO,
    dtype: str | None = None,
    trace_dir: str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> ProfileReport:
    """Everything ``blox-inspect profile`` reports (see :func:`profile`); ``progress`` hears each stage."""
    say = progress or (lambda _: None)
    steps, warmup = check_counts(steps, warmup)
    peak_name = _peak_device(device)  # an unknown --device fails before anything runs
    folder = _trace_folder(trace_dir)
    say("building inputs and params")
    inputs = real_inputs(loaded.inputs, seed)
    loaded = LoadedModel(loaded.model, inputs, loaded.kwargs, loaded.source, loaded.file_settings)
    if params is None:
        params = _checkpoint(params_file) if params_file else _init(loaded, seed)
    abstract = abstractify(params)
    traces = Traces(loaded, params=abstract, seed=seed)
    summary = summarize_loaded(loaded, train=train, xla=False, traces=traces, progress=say)
    summary.edges = []  # the tree is what a profile needs; edges only make the JSON larger
    program = build_program(loaded, train, abstract)
    say(f"compiling the {program.name}")
    start = time.perf_counter()
    # The program that runs is lowered from its own function (real pytree arguments, donation), observed
    # like every trace so a failure names its module.
    lowered, _ = traces.run(lambda: program.jitted().lower(*program.args), what=f"the {program.name}")
    compiled, notes = _compile(lowered, program.name, loaded.source)
    compile_seconds = time.perf_counter() - start
    args = _real_args(loaded, train, params, inputs)
    runner = _Runner(compiled, args, train, len(inputs), program.name, loaded.source)
    for k in range(warmup):
        say(f"warmup step {k + 1}/{warmup}")
        runner.step()
    before = set(glob.glob(os.path.join(folder, "**", "*.trace.json.gz"), recursive=True))
    times = _profiled_steps(runner, steps, folder, say)
    stats_dev = jax.local_devices()[0]
    memory = _peak_memory(stats_dev)
    say("reading the trace")
    trace_file = find_trace_file(folder, before)
    text = compiled.as_text() or ""
    report = build_report(
        summary=summary,
        text=text,
        trace=read_trace(trace_file),
        steps=steps,
        warmup=warmup,
        times=times,
        train=train,
        trace_file=trace_file,
        compile_seconds=compile_seconds,
        peak=_peak(peak_name, dtype, abstract, notes),
        device_kind=str(stats_dev.device_kind),
        backend=jax.default_backend(),
    )
    report.totals.peak_memory = memory
    report.notes[:0] = notes
    if device == AUTO and peak_name is None:
        report.notes.append(
            f"no roofline: the device kind {stats_dev.device_kind!r} has no listed peak; pass --device NAME "
            "(h100, a100, tpu-v5e, ...) to compare against one"
        )
    return report


# --- real inputs and params --------------------------------------------------------------------------------


def real_inputs(inputs: tuple, seed: int = 0) -> tuple:
    """Arrays stay as they are; each ``ShapeDtypeStruct`` becomes random values of its shape and dtype."""
    leaves, tree = jax.tree.flatten(tuple(inputs))
    key = jax.random.key(seed + 1)  # not the params' seed: inputs and weights stay independent
    out = []
    for i, x in enumerate(leaves):
        if isinstance(x, (jax.Array, np.ndarray)):
            out.append(jnp.asarray(x))
            continue
        k = jax.random.fold_in(key, i)
        shape, dt = tuple(x.shape), x.dtype
        if jax.dtypes.issubdtype(dt, jax.dtypes.extended):  # typed PRNG keys
            out.append(jax.random.split(k, math.prod(shape)).reshape(shape) if shape else k)
        elif jnp.issubdtype(dt, jnp.inexact):
            out.append(jax.random.normal(k, shape, dt))
        elif jnp.issubdtype(dt, jnp.bool_):
            out.append(jax.random.bernoulli(k, 0.5, shape))
        else:
            out.append(jax.random.randint(k, shape, 0, INT_INPUT_RANGE, dt))
    return tuple(jax.tree.unflatten(tree, out))


def _init(loaded: LoadedModel, seed: int) -> bx.Params:
    init = jax.jit(lambda *xs: loaded.init(seed, *xs))
    params, _ = Traces(loaded).run(init, *loaded.inputs, what="the model's init")
    return params


def _checkpoint(file: str) -> bx.Params:
    if not os.path.exists(file):
        raise InspectError(MSG_NO_CHECKPOINT.format(file=file))
    try:
        return bx.load(file)
    except bx.CheckpointError as e:
        raise InspectError(str(e)) from e
    except Exception as e:
        raise InspectError(MSG_BAD_CHECKPOINT.format(file=file, error=f"{type(e).__name__}: {e}")) from e


def _real_args(loaded: LoadedModel, train: bool, params: bx.Params, inputs: tuple) -> tuple:
    if not train:
        return (params, *inputs)
    trainable, rest = params.split()
    opt_state = make_train_step(loaded).optimizer.init(trainable)
    return (trainable, rest, opt_state, *inputs)


# --- compiling and running ---------------------------------------------------------------------------------


def _compile(lowered: Any, program: str, model: str) -> tuple[Any, list[str]]:
    notes: list[str] = []
    try:
        if jax.default_backend() == "gpu":
            try:
                # CUDA graphs launch many kernels at once, and their kernels lose the op annotation the
                # trace maps to modules: run each op as its own launch.
                compiled = lowered.compile(compiler_options={"xla_gpu_enable_command_buffer": ""})
                notes.append(
                    "compiled with CUDA graphs off (xla_gpu_enable_command_buffer=''), so every kernel "
                    "names its HLO op; real runs with graphs on may launch faster"
                )
                return compiled, notes
            except Exception:  # an XLA without that flag: the default compile below
                pass
        return lowered.compile(), notes
    except Exception as e:
        raise InspectError(
            MSG_COMPILE_FAILED.format(
                program=program, model=model, error=type(e).__name__, message=_short(e), backend=jax.default_backend()
            )
        ) from e


def _short(e: BaseException, limit: int = 600) -> str:
    text = str(e).strip()
    return text if len(text) <= limit else text[:limit] + " ..."


class _Runner:
    """Runs the compiled program once per :meth:`step`; a train step's outputs become the next step's state."""

    def __init__(self, compiled: Any, args: tuple, train: bool, n_inputs: int, program: str, model: str):
        self.compiled, self.args, self.train = compiled, args, train
        self.inputs = args[len(args) - n_inputs :] if n_inputs else ()
        self.program, self.model = program, model

    def step(self) -> float:
        start = time.perf_counter()
        try:
            out = jax.block_until_ready(self.compiled(*self.args))
        except Exception as e:
            raise InspectError(
                MSG_RUN_FAILED.format(
                    program=self.program,
                    model=self.model,
                    error=type(e).__name__,
                    message=_short(e),
                    backend=jax.default_backend(),
                )
            ) from e
        elapsed = time.perf_counter() - start
        if self.train:  # the params and optimizer state were donated: carry the new ones on
            self.args = (*out[:3], *self.inputs)
        return elapsed


def _profiler_options() -> Any:
    options = jax.profiler.ProfileOptions()
    # Python function events would slow every step; op events need only the lowest host level.
    options.python_tracer_level = 0
    options.host_tracer_level = 1
    return options


def _profiled_steps(runner: _Runner, steps: int, folder: str, say: Progress) -> list[float]:
    try:
        tracer = jax.profiler.trace(folder, profiler_options=_profiler_options())
        tracer.__enter__()
    except Exception as e:
        raise InspectError(MSG_PROFILER.format(error=type(e).__name__, message=_short(e))) from e
    times = []
    try:
        for i in range(steps):
            say(f"profiling step {i + 1}/{steps}")
            times.append(runner.step())
    finally:
        say("writing the trace")
        tracer.__exit__(None, None, None)
    return times


def _trace_folder(trace_dir: str | None) -> str:
    if trace_dir is None:
        return tempfile.mkdtemp(prefix="blox-profile-")
    if os.path.exists(trace_dir) and not os.path.isdir(trace_dir):
        raise InspectError(MSG_TRACE_DIR.format(path=trace_dir))
    os.makedirs(trace_dir, exist_ok=True)
    return trace_dir


def _peak_memory(device: Any) -> int | None:
    try:
        stats = device.memory_stats()
    except Exception:  # backends without memory statistics may raise rather than return None
        stats = None
    value = (stats or {}).get("peak_bytes_in_use")
    return int(value) if value is not None else None


# --- the roofline peak ---------------------------------------------------------------------------------------


def _peak_device(device: str | None) -> str | None:
    if device is None or str(device).lower() == "none":
        return None
    if device == AUTO:
        return detect_device(str(jax.local_devices()[0].device_kind))
    return get_device(device).name


def _peak(name: str | None, dtype: str | None, params: Any, notes: list[str]) -> Peak | None:
    if name is None:
        return None
    spec = get_device(name)
    compute = dtype or dominant_dtype(params)
    if dtype is None and compute == "f32" and "tf32" in spec.flops:
        compute = "tf32"  # JAX's default precision: f32 matmuls on tensor cores (the cost command's rule)
        notes.append("roofline: f32 matmuls taken at the TF32 tensor-core peak; --dtype f32 for the CUDA-core peak")
    peak = spec.peak_flops(compute)
    return Peak(spec.name, spec.description, DTYPE_ALIASES.get(compute, compute), peak, spec.bandwidth, spec.source)


# --- from trace events to module rows ----------------------------------------------------------------------------


def build_report(
    *,
    summary: Report,
    text: str,
    trace: OpEvents | dict[str, Any],
    steps: int,
    warmup: int,
    times: list[float],
    train: bool,
    trace_file: str = "",
    compile_seconds: float = 0.0,
    peak: Peak | None = None,
    device_kind: str = "",
    backend: str = "",
) -> ProfileReport:
    """The ProfileReport of one profiled run: trace events -> HLO ops -> modules, with the summary's FLOPs.

    ``trace`` is what :func:`read_trace` returns, or the trace's JSON already parsed. Pure data work (no JAX
    calls): the benchmark runs it on synthetic traces.
    """
    paths = frozenset(m.path for m in summary.modules)
    ops = hlo_ops(text, paths)
    hlo_name = hlo_module_name(text)
    stats = op_times(trace if isinstance(trace, OpEvents) else op_events(trace), hlo_name)
    program = "train step" if train else "forward"
    if not stats.events:
        raise InspectError(MSG_NO_EVENTS.format(file=trace_file or "(given)", backend=backend, program=program))
    per = 1.0 / steps
    own: dict[str, float] = defaultdict(float)
    split: dict[str, float] = defaultdict(float)
    ops_own: dict[str, float] = defaultdict(float)
    bytes_own: dict[str, float] = defaultdict(float)
    op_rows: list[OpTime] = []
    unknown = 0
    split_ops = 0
    for name, seconds in stats.seconds.items():
        info = ops.get(name)
        if info is None:
            unknown += 1
            info = HloOp(name, "?", "", {"": 1.0}, 0, 1)
        shared = len(info.shares) > 1
        split_ops += shared
        for m, share in info.shares.items():
            own[m] += seconds * share * per
            ops_own[m] += stats.count[name] * per
            bytes_own[m] += info.bytes * info.repeats * share
            if shared:
                split[m] += seconds * share * per
        op_rows.append(OpTime(name, info.opcode, dict(info.shares), seconds * per, stats.count[name] * per, info.bytes))
    op_rows.sort(key=lambda o: -o.seconds)
    modules = _module_rows(summary, train, own, ops_own, bytes_own, split)
    wall_mean = statistics.fmean(times)
    busy = stats.busy * per
    in_modules = sum(m.self_seconds for m in modules)
    unattributed = own.get("", 0.0)
    totals = ProfileTotals(
        steps=steps,
        warmup=warmup,
        step_seconds=list(times),
        wall_median=statistics.median(times),
        wall_min=min(times),
        wall_max=max(times),
        wall_mean=wall_mean,
        device_busy=busy,
        in_modules=in_modules,
        unattributed=unattributed,
        off_device=max(wall_mean - busy, 0.0),
        compile_seconds=compile_seconds,
        events=stats.events,
        split_ops=split_ops,
        split_seconds=sum(split.values()),
        flops=(summary.totals.flops_train or 0) if train else summary.totals.flops,
        bytes=int(round(sum(bytes_own.values()))),
    )
    report = ProfileReport(
        model=summary.model,
        program=program,
        backend=backend,
        device_kind=device_kind,
        hlo_module=hlo_name,
        trace_file=trace_file,
        totals=totals,
        modules=modules,
        ops=op_rows,
        summary=summary,
        peak=peak,
    )
    report.notes.extend(_notes(stats, hlo_name, unknown, busy, in_modules + unattributed))
    return report


def _module_rows(
    summary: Report,
    train: bool,
    own: dict[str, float],
    ops_own: dict[str, float],
    bytes_own: dict[str, float],
    split: dict[str, float],
) -> list[ModuleTime]:
    rows = []
    for m in summary.modules:
        flops_own = (m.flops_train_own if train else m.flops_own) or 0
        flops = (m.flops_train if train else m.flops) or 0
        b = int(round(bytes_own.get(m.path, 0.0)))
        s, n = own.get(m.path, 0.0), ops_own.get(m.path, 0.0)
        rows.append(
            ModuleTime(m.path, m.type, m.parent, s, s, n, n, m.calls, flops_own, flops, b, b, split.get(m.path, 0.0))
        )
    index = {r.path: r for r in rows}
    for r in reversed(rows):  # children come after their parent: one bottom-up pass
        up = index.get(r.parent) if r.parent is not None else None
        if up is not None:
            up.total_seconds += r.total_seconds
            up.ops += r.ops
            up.bytes += r.bytes
    return rows


def _notes(stats: OpStats, hlo_name: str, unknown: int, busy: float, summed: float) -> list[str]:
    notes = []
    if not stats.matched:
        notes.append(
            f"no op event named the compiled module {hlo_name!r} (the trace names {', '.join(stats.modules_seen)}); "
            "every op event was used"
        )
    if unknown:
        notes.append(f"{unknown} op(s) in the trace are not in the compiled HLO text; their time is outside modules")
    if busy and summed > busy * 1.02:
        notes.append(
            f"device ops overlapped (several streams or threads): module and outside-module times add up to "
            f"{100 * summed / busy:.0f}% of the device's busy time"
        )
    return notes
