"""Graphviz diagrams of a Report: modules as boxes inside nested clusters, dataflow as labelled edges.

``to_dot(report)`` returns DOT source built with the ``graphviz`` package;
``blox_inspect.renderers._layout`` turns it into SVG/PNG with a layout engine.
What is drawn (clusters, folded runs, re-attached edges) is decided by
``_diagram.plan``; this module only styles it.

Example:
    >>> from blox_inspect.report.model import Edge, ModuleInfo, Report, TensorSpec, Totals
    >>> t = TensorSpec([2, 4], "float32")
    >>> lin = ModuleInfo("net", ["net"], "net", "Linear", {"features": "4"}, 0, None, [], 1, [], False, params=20)
    >>> r = Report("demo", "net", [t], {}, Totals(), [lin], [], [Edge("<input:0>", "net", t)], outputs=[t])
    >>> source = to_dot(r)
    >>> source.splitlines()[0]
    'digraph blox {'
    >>> "f32[2,4]" in source  # edges carry dtype and shape
    True
"""

from __future__ import annotations

import html
import math
import re

import graphviz

from blox_inspect.analysis.diagram import IO_ENDPOINT, Item, Plan, plan
from blox_inspect.analysis.edges import MERGE_SYMBOLS
from blox_inspect.common.errors import InspectError
from blox_inspect.common.text import visible
from blox_inspect.common.units import human
from blox_inspect.report.model import ModuleInfo, Report, TensorSpec


def _h(text: object) -> str:
    """Model- or file-derived text for an HTML-like DOT label: control characters shown, markup escaped."""
    return html.escape(visible(text))


RANKDIRS = ("TB", "LR", "BT", "RL")
COLORINGS = ("type", "params", "flops")
FONT = "Helvetica"
# Pastel qualitative colours for --color type (cycled when a model has more types).
TYPE_COLORS = (
    "#a6cee3", "#b2df8a", "#fdbf6f", "#cab2d6", "#fb9a99", "#ffff99",
    "#8dd3c7", "#bebada", "#80b1d3", "#fccde5", "#d9d9d9", "#ccebc5",
)  # fmt: skip
# Light to dark for --color params|flops; the last two get white text.
SCALE_COLORS = ("#ffffff", "#fff5d6", "#fed98e", "#fe9929", "#d95f0e", "#993404")
CLUSTER_FILLS = ("#f6f6f6", "#ebebeb")
SHARED_COLOR = "#c0392b"
DTYPES = {
    "float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64", "int32": "i32", "int64": "i64",
    "int16": "i16", "int8": "i8", "uint8": "u8", "uint32": "u32", "float8_e4m3fn": "f8e4m3", "float8_e5m2": "f8e5m2",
}  # fmt: skip
MAX_CONFIG_ITEMS = 3
MAX_CONFIG_CHARS = 28
BAD_OPTION = "{flag} {value!r}: expected one of {choices}."
_SAFE_ID = re.compile(r"[A-Za-z0-9_./\-]+")


def to_dot(
    report: Report,
    *,
    depth: int | None = None,
    expand: bool = False,
    focus: str | None = None,
    rankdir: str = "TB",
    color: str = "type",
) -> str:
    """DOT source of the model's structure and dataflow (see :func:`build_graph`)."""
    return build_graph(report, depth=depth, expand=expand, focus=focus, rankdir=rankdir, color=color).source


def to_image(report: Report, *, out: str, timeout: float = 60.0, dpi: int = 150, **options) -> bytes:
    """The diagram laid out as an image in the format ``out``'s extension names (SVG, PNG, ...).

    Needs a layout engine (``dot`` or ``graphviz-pure``); without one, the DOT source is written next to
    ``out`` and the error says how to lay it out by hand.
    """
    import os
    import sys

    from blox_inspect.common.output import write_output
    from blox_inspect.renderers import _layout

    source = to_dot(report, **options)
    engine = _layout.find_engine()
    fmt = _layout.output_format(out, engine)
    if engine is None:
        dot_path = os.path.splitext(out)[0] + ".dot"
        write_output(source, dot_path)
        raise InspectError(_layout.NO_ENGINE.format(python=sys.executable, out=out, dot=dot_path, fmt=fmt))
    return _layout.layout(engine, source, fmt, out, timeout=timeout, dpi=dpi)


def build_graph(
    report: Report,
    *,
    depth: int | None = None,
    expand: bool = False,
    focus: str | None = None,
    rankdir: str = "TB",
    color: str = "type",
) -> graphviz.Digraph:
    """A ``graphviz.Digraph`` of ``report``.

    Args:
        report: the Report to draw; nothing is traced.
        depth: module levels below the top drawn as clusters; deeper modules collapse into their ancestor's box
            and their edges are re-attached to it (deduplicated). ``None``: all levels.
        expand: draw every block of a run of identical consecutive blocks instead of one box marked ×N.
        focus: a module path; draw only its subtree, with the edges that cross its boundary.
        rankdir: ``TB`` (top to bottom) or ``LR`` (left to right); ``BT``/``RL`` also work.
        color: fill boxes by module ``type``, or on a scale of ``params`` or ``flops``; a legend explains it.
    """
    if rankdir not in RANKDIRS:
        raise InspectError(BAD_OPTION.format(flag="--rankdir", value=rankdir, choices=", ".join(RANKDIRS)))
    if color not in COLORINGS:
        raise InspectError(BAD_OPTION.format(flag="--color", value=color, choices=", ".join(COLORINGS)))
    drawn = plan(report, depth=depth, expand=expand, focus=focus)
    return _Builder(report, drawn, rankdir, color).graph()


class _Builder:
    def __init__(self, report: Report, drawn: Plan, rankdir: str, color: str):
        self.report, self.plan, self.color = report, drawn, color
        self.ids: dict[str, str] = {}
        self.paths = {m.path for m in report.modules}
        self.parent = drawn.parent_cluster()
        self.g = graphviz.Digraph(
            "blox",
            graph_attr={
                "rankdir": rankdir, "compound": "true", "fontname": FONT, "fontsize": "11", "nodesep": "0.25",
                "ranksep": "0.35", "bgcolor": "white", "tooltip": visible(report.model),
            },
            node_attr={"fontname": FONT, "fontsize": "11", "shape": "box", "style": "rounded,filled", "margin": "0.08,0.04"},
            edge_attr={"fontname": FONT, "fontsize": "9", "color": "#555555", "fontcolor": "#333333", "arrowsize": "0.7"},
        )  # fmt: skip
        self.fills = self._fills()
        self.loops = _returns_to_shared(drawn)

    # --- ids --------------------------------------------------------------
    def id(self, path: str) -> str:
        """A DOT id: the module path itself where DOT allows it (so the SVG's <title> names the module)."""
        if path not in self.ids:
            io = IO_ENDPOINT.fullmatch(path)
            if io:
                self.ids[path] = f"{io.group(1)}_{io.group(2)}"
            elif path.startswith("<outside:"):
                self.ids[path] = f"outside_{len(self.ids)}"
            elif path.startswith("<merge:"):
                self.ids[path] = f"merge_{len(self.ids)}"
            elif _SAFE_ID.fullmatch(path):
                self.ids[path] = path
            else:
                self.ids[path] = f"m{len(self.ids)}"
        return self.ids[path]

    # --- whole graph ----------------------------------------------------
    def graph(self) -> graphviz.Digraph:
        items = self.plan.items
        for path in self.plan.io:
            if path.startswith("<input"):
                self._io(self.g, items[path])
        top = items[self.plan.top]
        if top.cluster:
            self._cluster(self.g, top, level=0)
        else:
            self._box(self.g, top)
        for path in self.plan.io:
            if not path.startswith("<input"):
                self._io(self.g, items[path])
        for edge in self.plan.edges:
            self._edge(edge.src, edge.dst, edge.tensors)
        self._legend()
        return self.g

    def _cluster(self, g: graphviz.Digraph, item: Item, level: int) -> None:
        if not item.path:  # the invisible top above several roots
            for c in item.children:
                self._child(g, self.plan.items[c], level)
            return
        if item.fold:
            # Graphviz draws one border around a cluster (peripheries=2 is for nodes only): a folded run is
            # an unlabelled cluster just around it, so it gets the double border the legend promises.
            with g.subgraph(name="cluster_fold_" + self.id(item.path)) as outer:
                outer.attr(label="", style="rounded", color="#555555", margin="3", tooltip=self._tooltip(item))
                self._cluster_body(outer, item, level)
            return
        self._cluster_body(g, item, level)

    def _cluster_body(self, g: graphviz.Digraph, item: Item, level: int) -> None:
        with g.subgraph(name="cluster_" + self.id(item.path)) as sub:
            m = item.module
            title = _h(item.path if not item.fold else self._rel(item))
            mark = f" &#215;{item.times}" if item.fold else ""
            stats = self._stats(item)
            sub.attr(
                label=f'<<b>{title}</b>{mark}  <font color="#555555">{_h(m.type)}</font>'
                f'<br/><font point-size="9">{stats}</font>>',
                style="rounded,filled",
                fillcolor=CLUSTER_FILLS[level % 2],
                color="#555555" if item.fold else "#aaaaaa",
                labeljust="l",
                tooltip=self._tooltip(item),
            )
            for c in item.children:
                self._child(sub, self.plan.items[c], level + 1)

    def _child(self, g: graphviz.Digraph, item: Item, level: int) -> None:
        if item.kind == "merge":
            self._merge(g, item)
        elif item.cluster:
            self._cluster(g, item, level)
        else:
            self._box(g, item)

    def _box(self, g: graphviz.Digraph, item: Item) -> None:
        m = item.module
        name = _h(self._rel(item))
        rows = [
            f'<b>{name}</b>{f" &#215;{item.times}" if item.fold else ""}  <font color="#444444">{_h(m.type)}</font>'
        ]
        config = _config_text(m, self.paths)
        if config:
            rows.append(f'<font point-size="9">{_h(config)}</font>')
        rows.append(f'<font point-size="9">{self._stats(item)}</font>')
        if _shared(m):
            rows.append(f'<font point-size="9" color="{SHARED_COLOR}"><b>shared</b>: {_h(_calls(m))}</font>')
        if item.hidden:
            rows.append(
                f'<font point-size="9" color="#555555">+{item.hidden} submodule{"s" * (item.hidden > 1)}</font>'
            )
        fill = self.fills.get(item.path, "#ffffff")
        dark = fill in SCALE_COLORS[-2:]
        label = "<br/>".join(rows)
        if dark:
            for grey in ("#444444", "#555555", SHARED_COLOR):
                label = label.replace(grey, "white")
            label = f'<font color="white">{label}</font>'
        attrs = {"label": f"<{label}>", "fillcolor": fill, "tooltip": self._tooltip(item)}
        if item.fold:
            attrs["peripheries"] = "2"  # a stack of identical blocks
        if _shared(m):
            attrs.update(color=SHARED_COLOR, penwidth="2")
        g.node(self.id(item.path), **attrs)

    def _merge(self, g: graphviz.Digraph, item: Item) -> None:
        """Where module outputs meet in plain JAX: a small circle with the operation (+, ×, @, concat)."""
        symbol = MERGE_SYMBOLS.get(item.op, item.op)
        spec = f" -> {_spec(item.tensor)}" if item.tensor else ""
        g.node(
            self.id(item.path),
            label=symbol,
            shape="circle" if len(symbol) == 1 else "ellipse",
            style="filled",
            fillcolor="#ffffff",
            color="#777777",
            fontsize="10",
            width="0.3",
            height="0.3",
            fixedsize="false",
            margin="0.02",
            tooltip=visible(f"{item.op}{spec}"),
        )

    def _io(self, g: graphviz.Digraph, item: Item) -> None:
        if item.kind == "merge":
            self._merge(g, item)
            return
        if item.kind == "external":
            m = item.module
            inner = item.path[len("<outside:") : -1]
            label = visible(f"outside: {inner}") + (f"\n{visible(m.type)}" if m else "")
            g.node(self.id(item.path), label=label, style="rounded,dashed", fillcolor="white", tooltip=visible(inner))
            return
        index = item.path.split(":")[1][:-1]
        spec = f"\n{_spec(item.tensor)}" if item.tensor else ""
        g.node(
            self.id(item.path), label=f"{item.kind} {index}{spec}", shape="oval", style="filled", fillcolor="#eef5ff"
        )

    def _edge(self, src: str, dst: str, tensors: list[TensorSpec]) -> None:
        attrs = {}
        if tensors:
            text = "\n".join(_spec(t) for t in tensors[:2])
            attrs["label"] = text + (f"\n(+{len(tensors) - 2} more)" if len(tensors) > 2 else "")
        if (src, dst) in self.loops:
            attrs["constraint"] = "false"  # a later call of a shared module: keep the layout flowing one way
        items = self.plan.items
        tail, head = src, dst
        if items[src].cluster:  # leave the cluster from its last box, clipped at the cluster's border
            tail = self._anchor(items[src], last=True)
            attrs["ltail"] = "cluster_" + self.id(src)
        if items[dst].cluster:
            head = self._anchor(items[dst], last=False)
            attrs["lhead"] = "cluster_" + self.id(dst)
        self.g.edge(self.id(tail), self.id(head), **attrs)

    def _anchor(self, item: Item, last: bool) -> str:
        while item.cluster:
            item = self.plan.items[item.children[-1 if last else 0]]
        return item.path

    # --- text -------------------------------------------------------------
    def _rel(self, item: Item) -> str:
        """The item's name relative to the cluster drawn around it (the full path at the top)."""
        if item.fold:
            return item.fold.label
        parent = self.parent.get(item.path)
        m = item.module
        if parent and self.plan.items[parent].module is not None:
            base = self.plan.items[parent].module.path_tuple
            if m.path_tuple[: len(base)] == base:
                return "/".join(m.path_tuple[len(base) :])
        return m.path

    def _stats(self, item: Item) -> str:
        times = f"{item.times} &#215; " if item.fold else ""
        params = f"params {times}{human(item.params // item.times)}" if item.params else "no params"
        if item.fold and item.params:
            params += f" = {human(item.params)}"
        flops = f" | FLOPs {human(item.flops, si=True)}" if item.flops else ""
        return params + flops

    def _tooltip(self, item: Item) -> str:
        m = item.module
        lines = [m.path]
        if item.fold:
            lines = [
                f"{m.path}, drawn for {item.times} identical blocks: {', '.join(item.fold.members[:3])}{', ...' * (item.times > 3)}"
            ]
        lines.append(m.type + "".join(f"\n  {k}={v}" for k, v in m.config.items()))
        lines.append(f"params {item.params:,}  FLOPs {item.flops:,}")
        if _shared(m):
            lines.append(f"shared: {_calls(m)}")
        return "\n".join(visible(line) for line in lines)

    # --- colour -----------------------------------------------------------
    def _fills(self) -> dict[str, str]:
        boxes = [i for i in self.plan.boxes() if i.kind == "module" and i.module is not None]
        if self.color == "type":
            self.type_colors: dict[str, str] = {}
            for b in boxes:
                self.type_colors.setdefault(b.module.type, TYPE_COLORS[len(self.type_colors) % len(TYPE_COLORS)])
            return {b.path: self.type_colors[b.module.type] for b in boxes}
        values = {b.path: (b.params if self.color == "params" else b.flops) for b in boxes}
        self.bins = _log_bins([v for v in values.values() if v > 0], len(SCALE_COLORS) - 1)
        return {p: SCALE_COLORS[_bin(v, self.bins)] for p, v in values.items()}

    def _legend(self) -> None:
        rows = []
        if self.color == "type":
            for t, c in self.type_colors.items():
                rows.append((c, _h(t)))
        else:
            what = "params" if self.color == "params" else "FLOPs"
            rows.append((SCALE_COLORS[0], f"no {what}"))
            flops = self.color == "flops"
            for k, hi in enumerate(self.bins):
                span = f"{human(self.bins[k - 1], si=flops)} to " if k else "up to "
                rows.append((SCALE_COLORS[k + 1], f"{span}{human(hi, si=flops)} {what}"))
        if not rows:
            return
        cells = "".join(
            f'<tr><td align="left" bgcolor="{c}" border="1">'
            f"{f'<font color={chr(34)}white{chr(34)}>{t}</font>' if c in SCALE_COLORS[-2:] else t}</td></tr>"
            for c, t in rows
        )
        marks = (
            '<tr><td align="left"><font point-size="8">double border: identical blocks folded (&#215;N)</font></td></tr>'
            '<tr><td align="left"><font point-size="8">circle: outputs meeting in plain JAX (+, &#215;, @ matmul, concat)</font></td></tr>'
            f'<tr><td align="left"><font point-size="8"><font color="{SHARED_COLOR}">red border</font>: shared module'
            "</font></td></tr>"
        )
        title = {"type": "module type", "params": "parameters (box total)", "flops": "FLOPs (box total)"}[self.color]
        label = (
            f'<<table border="0" cellborder="0" cellspacing="1" cellpadding="1">'
            f'<tr><td align="left"><b>colour: {title}</b></td></tr>{cells}{marks}</table>>'
        )
        with self.g.subgraph(name="cluster_legend") as sub:
            sub.attr(label="legend", style="rounded", color="#cccccc", fontsize="9")
            sub.node("legend", label=label, shape="plain", style="")


def _returns_to_shared(drawn: Plan) -> set[tuple[str, str]]:
    """Edges into a shared box from something its own output reaches (GPT-2's ``ln_f -> wte``).

    Such an edge closes a cycle; left to rank the layout, it would pull the shared box below everything it
    feeds. Without rank constraint it is drawn as a return arrow instead.
    """
    succ: dict[str, list[str]] = {}
    for e in drawn.edges:
        succ.setdefault(e.src, []).append(e.dst)
    loops = set()
    for item in drawn.items.values():
        if item.module is None or item.cluster or not _shared(item.module):
            continue
        seen, todo = set(), list(succ.get(item.path, []))
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(succ.get(n, []))
        loops |= {(e.src, e.dst) for e in drawn.edges if e.dst == item.path and e.src in seen}
    return loops


def _shared(m: ModuleInfo) -> bool:
    """Shared: bound at several places, or called more than once (a tied embedding embeds and attends)."""
    return m.shared or m.calls > 1


def _calls(m: ModuleInfo) -> str:
    methods = list(dict.fromkeys(c.method for c in m.call_info))
    return f"{m.calls} calls" + (f" ({', '.join(methods)})" if len(methods) > 1 else "")


def _spec(t: TensorSpec) -> str:
    return visible(f"{DTYPES.get(t.dtype, t.dtype)}[{','.join(map(str, t.shape))}]")


def _config_text(m: ModuleInfo, paths: set[str]) -> str:
    """The first few settings. Left out: values naming modules (its own graph node, the Rng), initialisers, metadata, None."""
    config = {
        k: v
        for k, v in m.config.items()
        if m.path not in v and v not in paths and v != "None" and not k.endswith(("_init", "metadata")) and k != "rng"
    }
    parts = []
    for k, v in list(config.items())[:MAX_CONFIG_ITEMS]:
        text = f"{k}={v}"
        parts.append(text if len(text) <= MAX_CONFIG_CHARS else text[: MAX_CONFIG_CHARS - 3] + "...")
    more = len(config) - MAX_CONFIG_ITEMS
    return ", ".join(parts) + (f", +{more}" if more > 0 else "")


def _log_bins(values: list[int], n: int) -> list[int]:
    """Upper edges of ``n`` bins evenly spaced in log10 between the smallest and largest value."""
    if not values:
        return []
    lo, hi = math.log10(min(values)), math.log10(max(values))
    if hi - lo < 1e-9:
        return [max(values)]
    return [math.ceil(10 ** (lo + (hi - lo) * (k + 1) / n)) for k in range(n)]


def _bin(value: int, bins: list[int]) -> int:
    if value <= 0 or not bins:
        return 0
    for k, hi in enumerate(bins):
        if value <= hi:
            return k + 1
    return len(bins)
