"""The rows a summary shows: depth limit and ×N folding of repeated blocks, from a Report only.

Every row's numbers include the module's children, so hiding deeper modules
(``depth``) never changes a total. Runs of >= ``FOLD_MIN`` consecutive siblings
whose subtrees are identical (type, config, param shapes, call shapes) and whose
names differ only in their numbers (``layer_0``, ``layer_1``, ...) become one
group: the first block's rows, marked ``×N``. A row's ``scale`` is N for the group's
rows (the product, for nested groups), and the ``totals`` of a row cover all N blocks,
so the numbers in a folded table still add up to the model's totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blox_inspect.analysis.folds import Fold, find_folds
from blox_inspect.common.units import human, human_seconds
from blox_inspect.report.model import ModuleInfo, ParamInfo, Report


@dataclass
class Row:
    module: ModuleInfo
    level: int  # indentation level in the shown tree
    repeat: int = 1  # ×N for a folded group's head row
    last_name: str | None = None  # name of the last block of a folded group
    scale: int = 1  # how many identical blocks this row stands for (its ×N and its folded ancestors')
    members: list[str] = field(default_factory=list)  # the module paths it stands for (``scale`` of them)

    def total(self, attr: str) -> int | None:
        """``attr`` of the module (e.g. 'params', 'flops') times the blocks this row stands for."""
        value = getattr(self.module, attr)
        return None if value is None else value * self.scale

    @property
    def label(self) -> str:
        name = relative_name(self.module)
        if self.repeat > 1:
            return f"{name}…{self.last_name} ×{self.repeat}"
        return name


def relative_name(m: ModuleInfo) -> str:
    """The path below the parent module: 'h/0' for a block under a plain (module-less) node 'h'."""
    if m.parent and m.path.startswith(m.parent + "/"):
        return m.path[len(m.parent) + 1 :]
    return m.name


def rows(report: Report, depth: int | None = None, fold: bool = True) -> list[Row]:
    """The rows to show, in tree order; ``depth=N`` shows N levels of modules (top level = 1)."""
    # The one fold rule, shared with the diagram and the browser (analysis.folds).
    walk = _RowWalk(report, find_folds(report) if fold else {}, depth)
    walk.visit([m for m in report.modules if m.parent is None], 0, 1, None, [])
    return walk.out


class _RowWalk:
    """The walk behind :func:`rows`. A class rather than a recursive closure: a nested function that calls
    itself holds its own cell, a reference cycle that would keep every module alive until a full collection
    (for a 300,000-tensor checkpoint, a second of collecting at exit)."""

    def __init__(self, report: Report, folds: dict[str, Fold], depth: int | None):
        self.by_path = {m.path: m for m in report.modules}
        self.folds = folds
        self.depth = depth
        self.out: list[Row] = []

    def visit(self, siblings: list[ModuleInfo], level: int, scale: int, head: str | None, bases: list[str]) -> None:
        i = 0
        while i < len(siblings):
            m = siblings[i]
            found = self.folds.get(m.path)
            run = 1
            if found is not None and found.rep == m.path:
                run = len(found.members)
            paths = [s.path for s in siblings[i : i + run]]
            # Inside a folded parent, the same relative paths in every block the parent stands for.
            members = paths if head is None else [b + p[len(head) :] for b in bases for p in paths]
            last = relative_name(siblings[i + run - 1]) if run > 1 else None
            self.out.append(Row(m, level, run, last, scale * run, members))
            if self.depth is None or m.depth + 1 < self.depth:
                self.visit([self.by_path[c] for c in m.children], level + 1, scale * run, m.path, members)
            i += run


FOLD_NOTE = "rows of a folded run (×N) show the totals of all N blocks"


def shapes(m: ModuleInfo) -> str:
    """'f32[4,16] -> f32[4,32]' for the first call (all calls when they differ)."""
    if not m.call_info:
        return ""
    parts = []
    seen = set()
    for c in m.call_info:
        text = f"{', '.join(_short(t) for t in c.inputs)} -> {', '.join(_short(t) for t in c.outputs)}"
        if text not in seen:
            seen.add(text)
            parts.append(text)
    if len(parts) > 2:
        parts = parts[:2] + [f"(+{len(parts) - 2} more)"]
    return "; ".join(parts)


_DTYPES = {
    "float32": "f32",
    "float16": "f16",
    "bfloat16": "bf16",
    "float64": "f64",
    "int32": "i32",
    "int64": "i64",
    "uint32": "u32",
    "int8": "i8",
    "uint8": "u8",
    "bool": "bool",
}


def _short(t) -> str:
    return f"{_DTYPES.get(t.dtype, t.dtype)}[{','.join(map(str, t.shape))}]"


def type_label(m: ModuleInfo, limit: int = 60) -> str:
    cfg = ", ".join(f"{k}={v}" for k, v in m.config.items())
    text = f"{m.type}({cfg})" if cfg else m.type
    if len(text) > limit:
        text = text[: limit - 2] + "…)"
    return text + (" [shared]" if m.shared else "")


def percent(part: int, total: int) -> str:
    return f"{100.0 * part / total:.1f}%" if total else "-"


def both(n: int, si: bool = False) -> str:
    short, exact = human(n, si=si), f"{n:,}"
    return exact if short == exact else f"{short} ({exact})"


def totals_items(report: Report) -> list[tuple[str, str]]:
    """(label, human value) pairs of the totals block, shared by the table and markdown renderers."""
    t = report.totals
    items = [
        ("Parameters", both(t.params)),
        ("Trainable", both(t.trainable_params)),
        ("Non-trainable", both(t.non_trainable_params)),
        ("Parameter bytes", human(t.param_bytes, "B")),
    ]
    if t.rng_state:
        items.append(("RNG state (not params)", f"{t.rng_state:,} values, {human(t.rng_state_bytes, 'B')}"))
    for dtype, n in sorted(t.params_by_dtype.items()):
        items.append((f"  {dtype}", f"{human(n)} params, {human(t.bytes_by_dtype.get(dtype, 0), 'B')}"))
    if report.source != "checkpoint":  # a checkpoint holds no program
        items.append(("Forward FLOPs (one call)", human(t.flops, "FLOP")))
    if t.flops_xla is not None:
        items.append(("Forward FLOPs (XLA)", human(t.flops_xla, "FLOP")))
    if t.flops_train is not None:
        items.append(("Train-step FLOPs", human(t.flops_train, "FLOP")))
    if t.memory:
        mem = t.memory
        items.append(
            (
                "Compiled forward memory",
                f"peak {human(mem.get('peak'), 'B')} (arguments {human(mem.get('argument'), 'B')}, outputs "
                f"{human(mem.get('output'), 'B')}, aliased {human(mem.get('alias'), 'B')}, temp "
                f"{human(mem.get('temp'), 'B')})",
            )
        )
    if t.train_memory_estimate:
        e = t.train_memory_estimate
        items.append(
            (
                "Training memory (Adam, est.)",
                f"{human(e.get('total'), 'B')} = params {human(e.get('params'), 'B')} + grads "
                f"{human(e.get('grads'), 'B')} + moments {human(e.get('optimizer'), 'B')} + activations "
                f"{human(e.get('activations'), 'B')}",
            )
        )
    return items


STATS_HEAD = ["Param", "Shape", "Mean", "Std", "Min", "Max", "L2", "Zeros", "NaN", "Inf"]


def stats_rows(report: Report) -> list[list[str]]:
    """One row per param with statistics (only when the report was made with --stats)."""

    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.4g}"

    out = []
    for p in report.params:
        s = p.stats
        if not s:
            continue
        out.append(
            [
                p.path,
                f"{p.dtype}[{','.join(map(str, p.shape))}]",
                num(s["mean"]),
                num(s["std"]),
                num(s["min"]),
                num(s["max"]),
                num(s["l2"]),
                f"{s['zeros']:,}",
                f"{s['nans']:,}",
                f"{s['infs']:,}",
            ]
        )
    return out


@dataclass
class TableRow:
    """One shown row of the summary table, its cells as text (the same in every renderer)."""

    level: int  # tree depth below the shown top, for indentation
    label: str  # the module's name relative to its parent, or 'h/0…h/11 ×12' for a folded run
    folded: bool  # a ×N row (renderers show it bold)
    cells: list[str]  # type, shapes, params, %, non-trainable, bytes, FLOPs[, train FLOPs]


# A checkpoint's table: modules rebuilt from the tensor names, each followed by its own tensors. The same
# column positions as a model's (name, two text columns, then numbers), so every renderer aligns both alike.
CHECKPOINT_HEAD = ["Module / tensor", "Dtype", "Shape", "Params", "%", "Non-train.", "Bytes"]


def table_head(report: Report, times: dict[str, float] | None = None) -> list[str]:
    if report.source == "checkpoint":
        return list(CHECKPOINT_HEAD)
    head = ["Module", "Type", "Input -> Output", "Params", "%", "Non-train.", "Bytes", "FLOPs"]
    head += ["Train FLOPs"] if report.totals.flops_train is not None else []
    return head + (["Time", "Time %"] if times is not None else [])


def row_seconds(row: Row, times: dict[str, float]) -> float:
    """Measured seconds per step of everything a row stands for (a folded row: all N blocks)."""
    return sum(times.get(p, 0.0) for p in row.members)


def table_rows(
    report: Report,
    depth: int | None = None,
    fold: bool = True,
    blank_zeros: bool = False,
    times: dict[str, float] | None = None,
) -> list[TableRow]:
    """The summary table's rows with formatted cells; ``blank_zeros`` leaves zero counts empty (terminal).

    ``times`` (module path -> measured seconds per step including children, from ``blox-inspect profile``)
    adds the Time and Time % columns; the share is of the top-level modules' total.
    """
    if report.source == "checkpoint":
        return _checkpoint_rows(report, depth, fold, blank_zeros)
    train = report.totals.flops_train is not None
    tops = {m.path for m in report.modules if m.parent is None}
    step = sum(t for p, t in (times or {}).items() if p in tops)
    total = report.totals.params
    out = []
    for row in rows(report, depth, fold):
        m = row.module
        params, trainable = row.total("params"), row.total("trainable_params")

        def num(n, fmt):
            return "" if blank_zeros and not n else fmt(n)

        cells = [
            type_label(m),
            shapes(m),
            num(params, human),
            num(params, lambda n: percent(n, total)),
            num(params - trainable, human),
            num(row.total("param_bytes"), lambda n: human(n, "B")),
            num(row.total("flops"), lambda n: human(n, si=True)),
        ]
        if train:
            cells.append(num(row.total("flops_train"), lambda n: human(n, si=True)))
        if times is not None:
            seconds = row_seconds(row, times)
            cells.append(human_seconds(seconds) if seconds else "")
            cells.append(percent(seconds, step) if seconds and step else "")
        out.append(TableRow(row.level, row.label, row.repeat > 1, cells))
    return out


def checkpoint_rows(report: Report, depth: int | None = None, fold: bool = True) -> list[tuple[Row, list[ParamInfo]]]:
    """A checkpoint's shown modules, each with its own tensors (none when its children are hidden by ``depth``).

    Shared by the table renderers and the CSV: tensors fold into their module as its child modules do.
    """
    by_path = {p.path: p for p in report.params}
    out = []
    for row in rows(report, depth, fold):
        m = row.module
        shown = depth is None or m.depth + 1 < depth
        out.append((row, [by_path[path] for path in m.param_paths] if shown else []))
    return out


def _checkpoint_rows(report: Report, depth: int | None, fold: bool, blank_zeros: bool) -> list[TableRow]:
    """A checkpoint's rows: each shown module, then its own tensors one level deeper (when its children show).

    A tensor under a folded ×N row stands for its N copies, so its counts are N times one tensor's.
    """
    total = report.totals.params

    def num(n, fmt):
        return "" if blank_zeros and not n else fmt(n)

    def counts(size: int, trainable: int, nbytes: int) -> list[str]:
        return [
            num(size, human),
            num(size, lambda n: percent(n, total)),
            num(size - trainable, human),
            num(nbytes, lambda n: human(n, "B")),
        ]

    out = []
    for row, tensors in checkpoint_rows(report, depth, fold):
        cells = ["", "", *counts(row.total("params"), row.total("trainable_params"), row.total("param_bytes"))]
        out.append(TableRow(row.level, row.label, row.repeat > 1, cells))
        for p in tensors:
            size = p.size * row.scale
            shape = "[" + ", ".join(map(str, p.shape)) + "]"
            cells = [p.dtype, shape, *counts(size, size if p.trainable else 0, p.bytes * row.scale)]
            out.append(TableRow(row.level + 1, p.name, False, cells))
    return out
