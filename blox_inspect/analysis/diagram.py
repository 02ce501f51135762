"""What a diagram draws: a Report's modules after --focus, --depth and folding, and the edges between them.

This is pure data (no DOT). ``plan(report, ...)`` decides which module is a
cluster, which is a box, which runs of identical blocks fold into one, and
re-attaches every dataflow edge of the Report to the item that stands for its
endpoints, deduplicated. The Graphviz renderer and ``to_networkx(depth=...)``
both build on it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from blox_inspect.analysis.folds import Fold, ModuleIndex, find_folds
from blox_inspect.common.errors import InspectError
from blox_inspect.report.model import ModuleInfo, Report, TensorSpec

UNKNOWN_FOCUS = (
    "--focus {path!r}: no module with that path in the report of {model}. Expected a module path such as "
    "{example!r}.{hint} List the paths with `blox-inspect summary` or pass one of the nearest above."
)
IO_ENDPOINT = re.compile(r"<(input|output):(\d+)>")
# A merge (see analysis.edges): two modules' outputs combined in plain JAX inside module SCOPE.
MERGE_ENDPOINT = re.compile(r"<merge:(.*)#(\d+):(\w+)>")


@dataclass
class Item:
    """One drawn thing: a box (``cluster=False``) or a cluster of items, or an input/output/outside endpoint."""

    path: str
    kind: str  # 'module' | 'input' | 'output' | 'external' | 'merge'
    module: ModuleInfo | None = None
    cluster: bool = False
    children: list[str] = field(default_factory=list)  # item paths, in the model's order (clusters only)
    fold: Fold | None = None
    hidden: int = 0  # descendants collapsed into this box by --depth
    params: int = 0  # totals over a fold's members
    flops: int = 0
    tensor: TensorSpec | None = None  # inputs/outputs/merges
    op: str = ""  # merges: the primitive

    @property
    def times(self) -> int:
        return len(self.fold.members) if self.fold else 1


@dataclass
class DrawnEdge:
    src: str  # item paths
    dst: str
    tensors: list[TensorSpec] = field(default_factory=list)


@dataclass
class Plan:
    top: str
    items: dict[str, Item]  # every drawn item by path; clusters and boxes share one namespace with io endpoints
    edges: list[DrawnEdge]
    io: list[str]  # input/output/external item paths, in drawing order

    def boxes(self) -> list[Item]:
        return [i for i in self.items.values() if not i.cluster]

    def parent_cluster(self) -> dict[str, str]:
        return {c: p.path for p in self.items.values() if p.cluster for c in p.children}


def resolve_focus(report: Report, focus: str) -> str:
    """The module path ``focus`` names (also accepted without the root's prefix), or a helpful error."""
    paths = [m.path for m in report.modules]
    if focus in paths:
        return focus
    for root in {m.path for m in report.modules if m.parent is None} | {report.root}:
        if f"{root}/{focus}" in paths:
            return f"{root}/{focus}"
    near = difflib.get_close_matches(focus, paths, n=3, cutoff=0.5)
    hint = f" Nearest: {', '.join(near)}." if near else ""
    example = paths[min(1, len(paths) - 1)] if paths else report.root
    raise InspectError(UNKNOWN_FOCUS.format(path=focus, model=report.model, example=example, hint=hint))


def plan(
    report: Report,
    *,
    depth: int | None = None,
    expand: bool = False,
    focus: str | None = None,
) -> Plan:
    """Decides what to draw.

    Args:
        report: the Report to draw.
        depth: module levels below the top to open as clusters; deeper modules collapse into their
            ancestor's box. ``None`` opens everything.
        expand: draw every block of a run of identical blocks instead of one box marked ×N.
        focus: draw only this module's subtree, plus the endpoints of edges that cross its boundary.
    """
    if depth is not None and depth < 0:
        raise InspectError(f"--depth {depth}: expected 0 or more (0 draws the whole model as one box).")
    index = ModuleIndex(report)
    if focus is not None:
        top: str | None = resolve_focus(report, focus)
    elif report.root in index.by_path:
        top = report.root
    elif len(index.children[None]) == 1:
        top = index.children[None][0]
    else:
        top = None  # several roots: an invisible top holds them
    folds = {} if expand else find_folds(report, index)
    if top is not None and top in folds:
        # The focused block is drawn as itself, not as its run.
        folds = {k: v for k, v in folds.items() if v is not folds[top]}
    items: dict[str, Item] = {}

    def count(path: str) -> int:
        return sum(1 + count(c) for c in index.children.get(path, []))

    def visit(path: str, level: int) -> str:
        m = index.by_path[path]
        fold = folds.get(path)
        members = fold.members if fold else [path]
        item = Item(path=path, kind="module", module=m, fold=fold)
        item.params = sum(index.by_path[p].params for p in members)
        item.flops = sum(index.by_path[p].flops for p in members)
        kids = [c for c in index.children.get(path, []) if c not in folds or folds[c].rep == c]
        if kids and (depth is None or level < depth):
            item.cluster = True
            item.children = [visit(c, level + 1) for c in kids]
        else:
            item.hidden = count(path)
        items[path] = item
        return path

    if top is None:
        top_path = ""
        items[top_path] = Item(path="", kind="module", cluster=True)
        # Depth counts from the models themselves (the invisible top is not a level).
        items[top_path].children = [visit(r, 0) for r in index.children[None] if r not in folds or folds[r].rep == r]
    else:
        top_path = visit(top, 0)

    in_top = set(_subtree(index, top)) if top is not None else set(index.by_path)

    merge_specs = {m.id: m.tensor for m in report.merges}

    def resolve(endpoint: str) -> tuple[str | None, list[tuple[int, int]]]:
        """The item standing for ``endpoint`` and the (fold id, member number) pairs it passed through."""
        io = IO_ENDPOINT.fullmatch(endpoint)
        if io:
            return endpoint, []
        merge = MERGE_ENDPOINT.fullmatch(endpoint)
        if merge:
            return resolve_merge(endpoint, *merge.groups())
        known = index.known(endpoint)
        if known is None:
            return None, []
        if known not in in_top:
            return _external(index, top, known), []
        chain = index.ancestors(known)
        if top is not None:
            chain = chain[chain.index(top) :]
        passed = []
        cur = None
        rest = chain
        while rest:
            step = rest[0]
            fold = folds.get(step)
            if fold is not None:
                k = fold.members.index(step)
                passed.append((id(fold), k))
                if k:
                    # Same place inside the first member: blocks are identical, so the path exists there.
                    rel = tuple(index.by_path[known].path_tuple)[len(index.by_path[step].path_tuple) :]
                    known = index.by_tuple[tuple(index.by_path[fold.rep].path_tuple) + rel]
                    swapped = index.ancestors(known)
                    rest = swapped[swapped.index(fold.rep) :]
                    step = fold.rep
            cur = step
            if not items[step].cluster:
                break
            rest = rest[1:]
        return cur, passed

    def resolve_merge(raw: str, scope: str, n: str, op: str) -> tuple[str | None, list[tuple[int, int]]]:
        """A merge is drawn inside its module when that module is an open cluster; inside a closed box (or a
        folded copy's box) it is part of the box, and the edges end there."""
        if not scope or index.known(scope) is None:
            return (raw, []) if top is None or top == report.root else (None, [])
        cur, passed = resolve(scope)
        if cur is None or cur not in items or not items[cur].cluster:
            return cur, passed
        # Open: the merge of the drawn block (the first of a folded run stands for all of them).
        mid = f"<merge:{cur}#{n}:{op}>"
        if mid not in items:
            items[mid] = Item(path=mid, kind="merge", tensor=merge_specs.get(raw), op=op)
            items[cur].children.append(mid)
        return mid, passed

    resolved: dict[str, tuple[str | None, list[tuple[int, int]]]] = {}

    def endpoint(raw: str, port: str) -> tuple[object, tuple] | None:
        """The graph node for one end of a Report edge: a drawn box, or a port of a drawn cluster."""
        if raw not in resolved:
            resolved[raw] = resolve(raw)
        item, passed = resolved[raw]
        if item is None:
            return None
        if item in items and items[item].cluster:
            # Keyed by the module's own path, so ports of different blocks of a folded run stay apart.
            return ("port", index.known(raw), port, item), tuple(passed)
        return item, tuple(passed)

    flow: list[tuple] = []  # (src node, dst node, src runs, dst runs, tensor)
    for e in report.edges:
        s = endpoint(e.src, e.src_port)
        d = endpoint(e.dst, e.dst_port)
        if s is not None and d is not None and s[0] != d[0]:
            flow.append((s[0], d[0], s[1], d[1], e.tensor))
    flow = _through_clusters(flow)

    merged: dict[tuple[str, str], DrawnEdge] = {}
    io_used: list[str] = []
    for s, d, s_passed, d_passed, tensor in flow:
        if s == d:
            continue
        if focus is not None and _beyond(s) and _beyond(d):
            continue  # flows entirely outside the focused subtree
        if _crosses_copies(s_passed, d_passed):
            continue  # from one block of a folded run into another: the ×N mark says it
        for end in (s, d):
            if end.startswith("<") and end not in io_used:
                io_used.append(end)
        edge = merged.setdefault((s, d), DrawnEdge(s, d))
        if all(str(t) != str(tensor) for t in edge.tensors):
            edge.tensors.append(tensor)

    edges = _drop_containment(list(merged.values()), items, index)
    edges = _drop_covered(edges, items)
    io = _io_items(report, items, io_used, focus is None, index)
    return Plan(top=top_path, items=items, edges=edges, io=io)


def _beyond(end: str) -> bool:
    """An endpoint outside every drawn module (model input/output, an outside module; not a merge)."""
    return end.startswith(("<input:", "<output:", "<outside:", "<merge:#"))


def _through_clusters(flow: list[tuple]) -> list[tuple]:
    """Connects what flows into a drawn cluster's input (or output) port to what flows out of that port.

    Reports nest edges: ``block -> block`` between siblings, ``(block, in) -> child`` inside. Joining through
    the ports gives box-to-box dataflow that crosses cluster borders. A port with nothing on one side (a report
    without inner edges) stays, as an edge to the cluster itself. Edges are a set, so chains of ports (a
    residual stream through 80 blocks) join in time linear in the edges, not in the number of paths.
    """
    tensors: dict[str, TensorSpec] = {}
    live: set[tuple] = set()
    ins: dict[object, set[tuple]] = {}
    outs: dict[object, set[tuple]] = {}

    def add(u: object, v: object, up: tuple, vp: tuple, tensor: TensorSpec) -> None:
        if u == v:
            return
        if not isinstance(u, tuple) and not isinstance(v, tuple) and _crosses_copies(up, vp):
            return  # final and dropped anyway: from one copy of a folded block into another
        key = str(tensor)
        tensors.setdefault(key, tensor)
        edge = (u, v, up, vp, key)
        if edge not in live:
            live.add(edge)
            outs.setdefault(u, set()).add(edge)
            ins.setdefault(v, set()).add(edge)

    for u, v, up, vp, tensor in flow:
        add(u, v, up, vp, tensor)
    ports = [n for n in list(ins) + list(outs) if isinstance(n, tuple)]
    for port in dict.fromkeys(ports):
        before, after = ins.get(port, set()), outs.get(port, set())
        if not before or not after:
            continue
        ins.pop(port)
        outs.pop(port)
        for edge in before:
            live.discard(edge)
            outs[edge[0]].discard(edge)
        for edge in after:
            live.discard(edge)
            ins[edge[1]].discard(edge)
        for b in before:
            for a in after:
                add(b[0], a[1], b[2], a[3], tensors[a[4]])

    def node(n: object) -> object:
        return n[3] if isinstance(n, tuple) else n  # a dangling port: the cluster itself

    return [(node(u), node(v), up, vp, tensors[t]) for u, v, up, vp, t in sorted(live, key=_edge_order(flow))]


def _edge_order(flow: list[tuple]):
    """Keeps the Report's edge order (by first appearance of endpoints) so the DOT output is deterministic."""
    rank: dict[object, int] = {}
    for u, v, *_ in flow:
        rank.setdefault(u, len(rank))
        rank.setdefault(v, len(rank))
    return lambda e: (rank.get(e[0], len(rank)), rank.get(e[1], len(rank)), e[4])


def _crosses_copies(up: tuple, vp: tuple) -> bool:
    runs = dict(up)
    return any(f in runs and runs[f] != k for f, k in vp)


def _subtree(index: ModuleIndex, path: str) -> list[str]:
    out = [path]
    for c in index.children.get(path, []):
        out.extend(_subtree(index, c))
    return out


def _external(index: ModuleIndex, top: str, path: str) -> str:
    """For --focus: the outside module at the level where ``path`` branches off from the focused one."""
    outside = index.ancestors(path)
    inside = set(index.ancestors(top))
    for p in outside:
        if p not in inside:
            return f"<outside:{p}>"
    return f"<outside:{path}>"


def _io_items(report: Report, items: dict[str, Item], used: list[str], whole: bool, index: ModuleIndex) -> list[str]:
    order: list[str] = []
    wanted = list(used)
    if whole:
        wanted = [f"<input:{i}>" for i in range(len(report.inputs))] + wanted
        wanted += [f"<output:{i}>" for i in range(len(report.outputs))]
    for path in wanted:
        if path in items:
            continue
        io = IO_ENDPOINT.fullmatch(path)
        merge = MERGE_ENDPOINT.fullmatch(path)
        if io:
            kind, i = io.group(1), int(io.group(2))
            specs = report.inputs if kind == "input" else report.outputs
            items[path] = Item(path=path, kind=kind, tensor=specs[i] if i < len(specs) else None)
        elif merge:  # outside every module: drawn at the top level
            spec = next((m.tensor for m in report.merges if m.id == path), None)
            items[path] = Item(path=path, kind="merge", tensor=spec, op=merge.group(3))
        else:
            inner = path[len("<outside:") : -1]
            items[path] = Item(path=path, kind="external", module=index.by_path.get(inner))
        order.append(path)
    inputs = [p for p in order if p.startswith("<input")]
    outputs = [p for p in order if p.startswith("<output")]
    merges = [p for p in order if p.startswith("<merge")]
    return inputs + [p for p in order if p.startswith("<outside")] + merges + outputs


def _drop_containment(edges: list[DrawnEdge], items: dict[str, Item], index: ModuleIndex) -> list[DrawnEdge]:
    """An edge between a cluster and something inside it is containment, not flow; Graphviz cannot draw it."""
    inside = _cluster_members(items)
    return [e for e in edges if e.dst not in inside.get(e.src, ()) and e.src not in inside.get(e.dst, ())]


def _drop_covered(edges: list[DrawnEdge], items: dict[str, Item]) -> list[DrawnEdge]:
    """Drops an edge into (out of) a cluster when the same data is also drawn going to (from) something inside it."""
    inside = _cluster_members(items)
    keep = []
    for e in edges:
        if items.get(e.dst) is not None and items[e.dst].cluster:
            if any(o is not e and o.src == e.src and o.dst in inside[e.dst] for o in edges):
                continue
        if items.get(e.src) is not None and items[e.src].cluster:
            if any(o is not e and o.dst == e.dst and o.src in inside[e.src] for o in edges):
                continue
        keep.append(e)
    return keep


def _cluster_members(items: dict[str, Item]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}

    def collect(path: str) -> set[str]:
        if path not in out:
            acc: set[str] = set()
            for c in items[path].children:
                acc.add(c)
                if items[c].cluster:
                    acc |= collect(c)
            out[path] = acc
        return out[path]

    for path, item in items.items():
        if item.cluster:
            collect(path)
    return out
