"""The ProfileReport: time measured per module on the real device, beside our FLOPs and the roofline, as plain data.

Analysis (``blox_inspect.analysis.profile``) builds it; renderers (``blox_inspect.renderers.profile``) print it.
Times are seconds per step (the mean over the profiled steps), FLOP and byte counts exact ints;
``from_json(to_json(r)) == r``. The summary Report of the same model rides along, so renderers fold and
limit rows by the summary's own rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from blox_inspect.report.model import Report, SavedReport

PROFILE_SCHEMA_VERSION = 1
OUTSIDE = "(outside modules)"


@dataclass
class ModuleTime:
    """One module's measured time per step; ``total_*`` include its child modules, ``self_*`` do not."""

    path: str
    type: str
    parent: str | None
    self_seconds: float  # device op time attributed to this module and no child
    total_seconds: float
    ops_own: float  # device op executions per step (kernels on GPU, thunks on CPU)
    ops: float
    calls: int  # calls of the module in the traced program (a loop body's calls count once)
    flops_own: int  # ours (jaxpr, loop-aware), for the profiled program
    flops: int
    bytes_own: int  # bytes the module's device ops read and write per step (HLO operand + result sizes)
    bytes: int
    split_seconds: float = 0.0  # part of self time from fusions shared with other modules (split by FLOPs)


@dataclass
class OpTime:
    """One HLO op of the compiled program as it ran: where its time went."""

    name: str  # the HLO instruction name the trace events carry (``hlo_op``)
    opcode: str
    modules: dict[str, float]  # module path ('' outside every module) -> share of the op's time
    seconds: float  # per step, exclusive of ops nested in it (a CPU while loop holds its body's ops)
    count: float  # executions per step
    bytes: int  # operand + result bytes of one execution (0 for control flow)


@dataclass
class Peak:
    """The roofline peak the achieved rates are compared against."""

    device: str
    description: str
    dtype: str
    peak_flops: int  # FLOP/s
    bandwidth: int  # bytes/s
    source: str


@dataclass
class ProfileTotals:
    steps: int
    warmup: int
    step_seconds: list[float]  # wall time of each profiled step (call to block_until_ready)
    wall_median: float
    wall_min: float
    wall_max: float
    wall_mean: float
    device_busy: float  # per step: union of every device op interval
    in_modules: float  # per step: sum of module self times
    unattributed: float  # per step: device op time outside every module (loss, optimizer, XLA's own ops)
    off_device: float  # per step: wall mean minus device busy (host, transfers, idle)
    compile_seconds: float
    events: int  # device op events read from the trace
    split_ops: int = 0  # HLO fusions whose ops belong to several modules
    split_seconds: float = 0.0  # per step, the time of those fusions (split by their ops' FLOPs)
    peak_memory: int | None = None  # peak device bytes in use, when the backend reports it
    flops: int = 0  # ours, the whole program
    bytes: int = 0  # per step, every device op's operand + result bytes


@dataclass
class ProfileReport(SavedReport):
    model: str
    program: str  # 'forward' or 'train step'
    backend: str
    device_kind: str  # what JAX calls the device (``jax.devices()[0].device_kind``)
    hlo_module: str
    trace_file: str  # the *.trace.json.gz read; the folder opens in Perfetto or TensorBoard
    totals: ProfileTotals
    modules: list[ModuleTime]
    ops: list[OpTime]
    summary: Report  # the module tree (and its folding rules) of the same model
    peak: Peak | None = None
    notes: list[str] = field(default_factory=list)
    schema_version: int = PROFILE_SCHEMA_VERSION

    def module(self, path: str) -> ModuleTime:
        """The row of the module at ``path``."""
        for m in self.modules:
            if m.path == path:
                return m
        raise KeyError(path)

    READABLE = (PROFILE_SCHEMA_VERSION,)
    KIND = "profile report"
    RECREATE = "blox-inspect profile"

    def __repr__(self) -> str:
        t = self.totals
        return (
            f"<ProfileReport {self.model!r}: {self.program}, {len(self.modules)} modules, "
            f"median step {t.wall_median * 1e3:.3f} ms; render with blox_inspect.render(report)>"
        )


@dataclass
class Rates:
    """Achieved rates of some FLOPs and bytes in some seconds, and the fraction of the roofline they reach."""

    flops_per_second: float | None
    bytes_per_second: float | None
    roofline_fraction: float | None  # roofline time / measured time: 1.0 runs at the roofline


def rates(flops: int, nbytes: int, seconds: float, peak: Peak | None) -> Rates:
    """FLOP/s, bytes/s and the fraction of the roofline reached (None where undefined).

    The roofline time is ``max(flops / peak FLOP/s, bytes / bandwidth)``: the least time the device
    could take for that work, so the fraction is at most about 1.

    Example:
        >>> p = Peak('x', 'x', 'f32', peak_flops=10**12, bandwidth=10**11, source='')
        >>> r = rates(10**9, 10**6, 0.002, p)  # compute-bound: 1 ms at peak, measured 2 ms
        >>> r.flops_per_second, r.roofline_fraction
        (500000000000.0, 0.5)
    """
    if seconds <= 0 or not math.isfinite(seconds):
        return Rates(None, None, None)
    fraction = None
    if peak is not None and (flops or nbytes):
        fraction = max(flops / peak.peak_flops, nbytes / peak.bandwidth) / seconds
    return Rates(flops / seconds, nbytes / seconds, fraction)
