"""The Report: a plain, serialisable description of an inspected model.

Analysis produces a Report; renderers only consume one. Every number is an
exact int in JSON. ``from_json(to_json(r)) == r`` holds for every report.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from blox_inspect.common.display import rich_display
from blox_inspect.report._json import dumps, plain

# 2: RNG state (the seed and counter of each bx.Rng) is counted apart from params: ``totals.rng_state``,
# ``ParamInfo.rng_state``; ``totals.params`` is the published parameter count. Version 1 still loads.
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass
class TensorSpec:
    """Shape and dtype of one array."""

    shape: list[int]
    dtype: str

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(map(str, self.shape))}]"


@dataclass
class CallInfo:
    """One call of a module during the traced forward pass."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    method: str = "__call__"
    caller: str | None = None  # path of the module that made the call (None: top level)


@dataclass
class ParamInfo:
    path: str
    module: str  # path of the owning module (the param path without its last name)
    name: str
    shape: list[int]
    dtype: str
    size: int
    bytes: int
    trainable: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    rng_state: bool = False  # an Rng's seed or counter: state, not a parameter (not in the totals' params)
    # Filled only for real (non-abstract) params when statistics are asked for.
    stats: dict[str, Any] | None = None


@dataclass
class ModuleInfo:
    path: str
    path_tuple: list[str]
    name: str
    type: str
    config: dict[str, str]
    depth: int
    parent: str | None
    children: list[str]
    calls: int
    call_info: list[CallInfo]
    shared: bool
    # Own = params directly under this module; total = including children (shared counted once).
    params_own: int = 0
    params: int = 0
    trainable_params_own: int = 0
    trainable_params: int = 0
    param_bytes_own: int = 0
    param_bytes: int = 0
    flops_own: int = 0
    flops: int = 0
    flops_train_own: int = 0
    flops_train: int = 0
    param_paths: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> list[TensorSpec]:
        return self.call_info[0].inputs if self.call_info else []

    @property
    def outputs(self) -> list[TensorSpec]:
        return self.call_info[0].outputs if self.call_info else []


@dataclass
class Edge:
    """Dataflow: an array produced by ``src`` and consumed by ``dst``.

    Endpoints are module paths, or ``<input:i>`` / ``<output:i>`` for the
    model's own inputs and outputs.
    """

    src: str
    dst: str
    tensor: TensorSpec
    src_index: int = 0
    dst_index: int = 0
    # 'out': an output of src; 'in': an input of src passed on inside it (src encloses dst).
    src_port: str = "out"
    # 'in': an input of dst; 'out': becomes an output of dst (dst encloses src).
    dst_port: str = "in"


@dataclass
class Totals:
    params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0
    param_bytes: int = 0
    flops: int = 0
    flops_train: int | None = None
    flops_xla: int | None = None
    params_by_dtype: dict[str, int] = field(default_factory=dict)
    bytes_by_dtype: dict[str, int] = field(default_factory=dict)
    # RNG state (every bx.Rng's seed and counter), apart from params: elements and bytes.
    rng_state: int = 0
    rng_state_bytes: int = 0
    # memory_analysis of the compiled forward program: argument/output/alias/temp/peak bytes.
    memory: dict[str, int] = field(default_factory=dict)
    # Estimated bytes to train with an Adam-style optimiser (params, grads, 2 moments, activations).
    train_memory_estimate: dict[str, int] = field(default_factory=dict)


@dataclass
class MergeInfo:
    """Where two modules' outputs meet in plain JAX (a residual add, a concatenate, a gate): an endpoint
    ``<merge:SCOPE#N:OP>`` of :class:`Edge` s, drawn as a small function node."""

    id: str
    op: str  # the primitive: add, add_any, sub, mul, concatenate
    scope: str  # the module whose code ran it ('' outside every module)
    tensor: TensorSpec  # its result


class SavedReport:
    """What every saved data model (Report, CostReport, ProfileReport) does alike: JSON with a
    ``schema_version`` read back by ``from_json``, and notebook display through the renderer registry.

    A subclass names the versions it reads (``READABLE``) and how to re-create one (``RECREATE``).
    """

    READABLE: tuple[int, ...] = ()
    RECREATE = "run without --load"
    KIND = "report"

    def to_dict(self) -> dict[str, Any]:
        return plain(self)  # no deep copies: reports of 70B models have 10^4 rows

    def to_json(self, indent: int | None = 2) -> str:
        return dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        version = data.get("schema_version")
        if version not in cls.READABLE:
            from blox_inspect.common.errors import InspectError

            raise InspectError(
                f"{cls.KIND} has schema_version {version!r}, this blox-inspect reads version"
                f"{'s' * (len(cls.READABLE) > 1)} {', '.join(map(str, cls.READABLE))}. "
                f"Re-create it with this version ({cls.RECREATE})."
            )
        return _build(cls, data)

    @classmethod
    def from_json(cls, text: str) -> Any:
        return cls.from_dict(json.loads(text))

    def _repr_html_(self) -> str:  # Jupyter / IPython: real HTML tables, folded like the terminal's
        return rich_display(self, "html")

    def _repr_markdown_(self) -> str:
        return rich_display(self, "markdown")


@dataclass
class Report(SavedReport):
    model: str  # "file.py:factory" or a description
    root: str
    inputs: list[TensorSpec]
    kwargs: dict[str, str]
    totals: Totals
    modules: list[ModuleInfo]
    params: list[ParamInfo]
    edges: list[Edge] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    merges: list[MergeInfo] = field(default_factory=list)
    abstract: bool = True
    notes: list[str] = field(default_factory=list)
    # "model" (traced from a model file) or "checkpoint" (rebuilt from a checkpoint's tensors alone)
    source: str = "model"
    schema_version: int = SCHEMA_VERSION

    READABLE = READABLE_VERSIONS

    # --- lookup ---------------------------------------------------------
    def module(self, path: str) -> ModuleInfo:
        """The module at ``path`` (a dict lookup: tools call this once per module)."""
        index = self.__dict__.get("_by_path")
        if index is None or len(index) != len(self.modules):
            index = self.__dict__["_by_path"] = {m.path: m for m in self.modules}
        found = index.get(path)
        if found is None or found.path != path:
            self.__dict__["_by_path"] = None
            for m in self.modules:
                if m.path == path:
                    return m
            raise KeyError(path)
        return found

    def __repr__(self) -> str:
        t = self.totals
        return (
            f"<Report {self.model!r}: {len(self.modules)} modules, {t.params:,} params, "
            f"{t.flops:,} FLOPs; render with blox_inspect.render(report)>"
        )


def _build(tp: Any, value: Any) -> Any:
    """Rebuilds dataclasses from plain JSON data using the type hints above."""
    if value is None:
        return None
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        kwargs = {f.name: _build(hints[f.name], value[f.name]) for f in dataclasses.fields(tp) if f.name in value}
        return tp(**kwargs)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _build(inner[0], value) if len(inner) == 1 else value
    if origin is list:
        return [_build(args[0], v) for v in value]
    if origin is dict:
        return {k: _build(args[1], v) for k, v in value.items()}
    return value
