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

import gc
import re
from dataclasses import dataclass

from blox_inspect.report.model import ModuleInfo, Report

FOLD_MIN = 3


@dataclass
class Row:
    module: ModuleInfo
    level: int  # indentation level in the shown tree
    repeat: int = 1  # ×N for a folded group's head row
    last_name: str | None = None  # name of the last block of a folded group
    scale: int = 1  # how many identical blocks this row stands for (its ×N and its folded ancestors')

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


def _signatures(report: Report) -> dict[str, tuple]:
    """A structural signature per module, computed bottom-up in one pass."""
    by_path = {m.path: m for m in report.modules}
    sig: dict[str, tuple] = {}
    own_params: dict[str, list] = {}
    for p in report.params:
        own_params.setdefault(p.module, []).append((p.name, tuple(p.shape), p.dtype, p.trainable))
    for m in reversed(report.modules):
        # Empty parts are common (a checkpoint's modules have no config or calls): skip their work.
        config = ()
        if m.config:
            prefix = m.path + "/"
            config = tuple(sorted((k, v[len(m.path) :] if v.startswith(prefix) else v) for k, v in m.config.items()))
        calls = ()
        if m.call_info:
            calls = tuple(
                (c.method, tuple(str(t) for t in c.inputs), tuple(str(t) for t in c.outputs)) for c in m.call_info
            )
        children = tuple([sig[c] for c in m.children if c in by_path]) if m.children else ()
        own = own_params.get(m.path)
        own = tuple(sorted(own)) if own else ()
        sig[m.path] = (m.type, config, own, calls, children, m.shared)
    return sig


def _numbered(name: str) -> str:
    """'layer_12' -> 'layer_#': only numbered runs fold (query/key/value stay three rows)."""
    return re.sub(r"\d+", "#", name)


def rows(report: Report, depth: int | None = None, fold: bool = True) -> list[Row]:
    """The rows to show, in tree order; ``depth=N`` shows N levels of modules (top level = 1)."""
    by_path = {m.path: m for m in report.modules}
    # A tuple per module (300,000 for a big checkpoint's tree), none in a cycle: the cyclic GC's scans
    # would cost more than building them. (Inline: importing blox here would import JAX for --load.)
    enabled = gc.isenabled()
    gc.disable()
    try:
        sig = _signatures(report) if fold else {}
    finally:
        if enabled:
            gc.enable()
    out: list[Row] = []
    tops = [m for m in report.modules if m.parent is None]

    def visit(siblings: list[ModuleInfo], level: int, scale: int) -> None:
        i = 0
        while i < len(siblings):
            m = siblings[i]
            run = 1
            if fold:
                key = (_numbered(m.name), sig[m.path])
                while (
                    i + run < len(siblings) and (_numbered(siblings[i + run].name), sig[siblings[i + run].path]) == key
                ):
                    run += 1
            if run < FOLD_MIN:
                run = 1
            out.append(Row(m, level, run, relative_name(siblings[i + run - 1]) if run > 1 else None, scale * run))
            if depth is None or m.depth + 1 < depth:
                visit([by_path[c] for c in m.children], level + 1, scale * run)
            i += run

    visit(tops, 0, 1)
    return out


FOLD_NOTE = "rows of a folded run (×N) show the totals of all N blocks"


def human(n: float | int | None, unit: str = "", si: bool = False) -> str:
    """124439808 -> '124.4M', 7e9 -> '7.0B'; with unit 'FLOP' -> '1.2 GFLOP'; with unit 'B' -> '497.8 MiB'.

    ``si=True`` uses SI prefixes without a unit (FLOP columns: '293.5G'). Every renderer of a
    Report formats numbers through this one function.

    Example:
        >>> human(124_439_808), human(999_960), human(6_738_415_616, si=True), human(1023 * 1024 + 1000, "B")
        ('124.4M', '1.0M', '6.7G', '1.0 MiB')
    """
    if n is None:
        return "-"
    if unit == "B":
        value = float(n)
        for suffix in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
            # Compare the value as printed (one decimal), so 1023.97 KiB carries to 1.0 MiB.
            if abs(round(value, 1)) < 1024 or suffix == "PiB":
                return f"{int(value)} B" if suffix == "B" else f"{value:.1f} {suffix}"
            value /= 1024
    value = float(n)
    # Counts read 7.0B (billions, as model sizes are quoted); FLOPs take SI prefixes (1.2 GFLOP).
    suffixes = ("", "K", "M", "G", "T", "P", "E") if unit or si else ("", "K", "M", "B", "T", "P", "E")
    for suffix in suffixes:
        if abs(round(value, 1)) < 1000 or suffix == "E":  # 999,960 reads 1.0M, not 1000.0K
            if suffix == "":
                text = f"{int(n):,}" if float(n).is_integer() else f"{value:.1f}"
                return f"{text} {unit}".rstrip() if unit else text
            return f"{value:.1f} {suffix}{unit}" if unit else f"{value:.1f}{suffix}"
        value /= 1000
    return str(n)


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
    for dtype, n in sorted(t.params_by_dtype.items()):
        items.append((f"  {dtype}", f"{human(n)} params, {human(t.bytes_by_dtype.get(dtype, 0), 'B')}"))
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
