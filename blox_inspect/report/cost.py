"""The CostReport: compiled costs, memory, roofline and sharded per-device estimates, as plain data.

Analysis (``blox_inspect.analysis.cost``) builds it; renderers (``blox_inspect.renderers.cost``) print it. Every byte
and FLOP count is an exact int in JSON (floats only for ratios and seconds); ``from_json(to_json(r)) == r``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blox_inspect.report.model import SavedReport

COST_SCHEMA_VERSION = 1


@dataclass
class XlaCost:
    """XLA's ``cost_analysis`` of one program (None where the backend reported nothing)."""

    flops: int | None = None
    transcendentals: int | None = None
    bytes_accessed: int | None = None


@dataclass
class MemoryStats:
    """``memory_analysis`` of a compiled program, in bytes (per device for a sharded program)."""

    argument: int = 0
    output: int = 0
    alias: int = 0  # output bytes that reuse a donated argument's buffer
    temp: int = 0  # scratch: activations kept for the backward pass, gradients, fusion buffers
    generated_code: int = 0
    xla_peak: int = 0  # XLA's peak_memory_in_bytes (0: not reported). On CPU it can undercount live arguments.
    total: int = 0  # argument + output - alias + temp: every buffer live at once, a conservative peak

    @property
    def peak(self) -> int:
        """The larger of XLA's peak and the conservative total; what fit verdicts compare."""
        return max(self.xla_peak, self.total)


@dataclass
class Comparison:
    """One metric side by side: our jaxpr count, XLA on the lowered and on the compiled program."""

    metric: str
    ours: int | None
    lowered: int | None
    compiled: int | None
    note: str = ""


@dataclass
class ModuleFlops:
    path: str
    type: str
    depth: int  # number of enclosing modules
    flops_own: int  # ops attributed to this module's scope and no child's
    flops: int  # including children
    name: str = ""  # path relative to the enclosing module


@dataclass
class LoopInfo:
    op_name: str
    trip_count: int | None


@dataclass
class CollectiveStats:
    """All collectives of one kind in the compiled program. ``count`` and ``bytes`` are static (an op in a
    loop body counts once); ``bytes_per_step`` multiplies each op by the trip counts of its loops."""

    kind: str
    count: int
    bytes: int  # sum of result sizes on one device
    largest: int
    in_loops: int = 0  # how many of them sit inside a while-loop body (run once per iteration)
    bytes_per_step: int = 0  # sum of result sizes times how often each runs (loop trip counts)
    examples: list[str] = field(default_factory=list)  # op names of the largest few


@dataclass
class ParamShard:
    path: str
    shape: list[int]
    dtype: str
    spec: str
    shards: int
    bytes: int  # global
    device_bytes: int  # on one device


@dataclass
class CompiledFacts:
    """What compiling one program yields; crosses the process boundary as JSON for simulated meshes."""

    backend: str
    devices: int
    lowered: XlaCost
    compiled: XlaCost
    memory: MemoryStats | None
    loops: list[LoopInfo]
    collectives: list[CollectiveStats]
    # per-device bytes of each argument group: params, trainable, opt_state, inputs
    arg_bytes: dict[str, int]
    params: list[ParamShard]
    compile_seconds: float = 0.0


@dataclass
class DeviceMemory:
    """Per-device bytes of a (sharded) train step. gradients is an estimate: trainable params' bytes at the
    params' sharding; activations is the compiled temp minus that estimate (never below 0)."""

    params: int
    gradients: int
    optimizer_state: int
    inputs: int
    activations: int
    temp: int
    output: int
    alias: int
    peak: int


@dataclass
class Roofline:
    device: str
    description: str
    dtype: str
    peak_flops: int  # FLOP/s
    bandwidth: int  # bytes/s
    flops: int  # per device
    bytes: int  # per device
    intensity: float  # FLOPs per byte
    ridge: float  # peak_flops / bandwidth: intensities above it are compute-bound
    bound: str  # 'compute' or 'memory'
    compute_seconds: float
    memory_seconds: float
    seconds: float  # lower bound: max of the two (no overlap loss, no communication)
    source: str


@dataclass
class ShardingReport:
    mesh: dict[str, int]
    strategy: str
    devices: int
    how: str  # 'in-process' or 'subprocess' (fake CPU devices)
    per_device: DeviceMemory
    device_memory: int  # the budget compared against
    fits: bool
    headroom: int  # budget - peak (negative when it does not fit)
    params: list[ParamShard]
    collectives: list[CollectiveStats]
    advice: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class CostReport(SavedReport):
    model: str
    program: str  # 'forward' or 'train step'
    backend: str
    devices: int
    flops: int  # our loop-aware jaxpr count, whole program (all devices)
    flops_matmul: int  # the dot_general/conv part of it
    modules: list[ModuleFlops]
    lowered: XlaCost
    compiled: XlaCost
    comparison: list[Comparison]
    loops: list[LoopInfo]
    memory: MemoryStats | None
    roofline: Roofline | None = None
    sharding: ShardingReport | None = None
    dynamic_loops: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    schema_version: int = COST_SCHEMA_VERSION

    READABLE = (COST_SCHEMA_VERSION,)
    KIND = "cost report"
    RECREATE = "blox-inspect cost"

    def __repr__(self) -> str:
        peak = f", peak {self.memory.peak:,} B per device" if self.memory else ""
        return (
            f"<CostReport {self.model!r} ({self.program}, {self.devices} device{'s' * (self.devices > 1)}): "
            f"{self.flops:,} FLOPs{peak}; render with blox_inspect.render(report)>"
        )
