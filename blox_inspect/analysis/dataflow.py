"""The dataflow of a Report as a networkx graph, with a few questions answered on it.

``to_networkx(report)`` returns a
``networkx.DiGraph``: one node per module path (attributes from its ModuleInfo)
plus ``<input:i>`` / ``<output:i>`` nodes, one edge per producer/consumer pair
(attributes: the tensors that flow). ``depth=N`` re-attaches deeper endpoints to
their ancestor N module levels below the root, like ``blox-inspect graph --depth``.

Example:
    >>> from blox_inspect.report.model import Edge, ModuleInfo, Report, TensorSpec, Totals
    >>> def leaf(name):
    ...     return ModuleInfo(f"net/{name}", ["net", name], name, "Linear", {}, 1, None, [], 1, [], False)
    >>> t = TensorSpec([2, 4], "float32")
    >>> flow = [("<input:0>", "net/a"), ("net/a", "net/b"), ("net/a", "net/c"), ("net/b", "net/c"), ("net/c", "<output:0>")]
    >>> edges = [Edge(src, dst, t) for src, dst in flow]
    >>> report = Report("demo", "net", [t], {}, Totals(), [leaf(n) for n in "abc"], [], edges, outputs=[t])
    >>> g = to_networkx(report)
    >>> topological_order(g)
    ['<input:0>', 'net/a', 'net/b', 'net/c', '<output:0>']
    >>> longest_path(g)
    ['<input:0>', 'net/a', 'net/b', 'net/c', '<output:0>']
    >>> fan_out(g)["net/a"], fan_in(g)["net/c"]
    (2, 2)
    >>> g.edges["net/a", "net/b"]["tensors"]
    ['float32[2,4]']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # networkx takes ~0.5 s to import: only functions that build or walk a graph import it
    import networkx as nx

    from blox_inspect.report.model import Report


def to_networkx(report: Report, depth: int | None = None) -> nx.DiGraph:
    """The dataflow DiGraph of ``report`` (see the module docstring).

    Nodes: the modules drawn as boxes by ``blox-inspect graph --depth depth --expand`` (all leaf modules when
    ``depth`` is None), plus the model's inputs and outputs. Edges between containers are joined through them,
    so an edge always links the modules that produce and consume the data.
    """
    import networkx as nx

    from blox_inspect.analysis.diagram import plan

    g = nx.DiGraph(model=report.model, root=report.root)
    # The diagram's edges, every block drawn: nested edges joined through their containers into box-to-box flow.
    drawn = plan(report, depth=depth, expand=True)
    pairs = [(e.src, e.dst, e.tensors) for e in drawn.edges]
    named = {end for e in drawn.edges for end in (e.src, e.dst)}
    keep = {p for p, item in drawn.items.items() if not item.cluster or p in named}
    for i, t in enumerate(report.inputs):
        g.add_node(f"<input:{i}>", kind="input", tensor=str(t))
    for m in report.modules:
        if m.path in keep:
            g.add_node(
                m.path, kind="module", type=m.type, config=dict(m.config), depth=m.depth, parent=m.parent,
                params=m.params, flops=m.flops, flops_own=m.flops_own, shared=m.shared, calls=m.calls,
            )  # fmt: skip
    for i, t in enumerate(report.outputs):
        g.add_node(f"<output:{i}>", kind="output", tensor=str(t))
    for src, dst, tensors in pairs:
        for end in (src, dst):
            if end not in g:
                g.add_node(end, kind=end[1:].split(":")[0] if end.startswith("<") else "module")
        if not g.has_edge(src, dst):
            g.add_edge(src, dst, tensors=[])
        for t in tensors:
            if str(t) not in g.edges[src, dst]["tensors"]:
                g.edges[src, dst]["tensors"].append(str(t))
    return g


def topological_order(g: nx.DiGraph) -> list[str]:
    """Nodes in an order where every producer comes before its consumers.

    A module called from two places (a tied embedding: ``wte -> ... -> ln_f -> wte``) closes a cycle; each cycle
    is kept together as one step, its members in the model's order. Ties also follow the model's order.
    """
    return [n for members in _steps(g) for n in members]


def longest_path(g: nx.DiGraph, weight: str | None = None) -> list[str]:
    """The longest chain of dataflow: by number of nodes, or by the sum of a node attribute (e.g. ``"flops"``).

    With ``weight="flops"`` this is the critical path of sequential compute. A cycle through a shared module
    counts as one step holding all its members.
    """
    steps = _steps(g)
    dag, where = _condensed(g)
    cost = [sum((g.nodes[n].get(weight, 0) or 0) if weight else 1 for n in members) for members in steps]
    best: list[tuple[float, int | None]] = []
    for k in range(len(steps)):
        preds = [(best[p][0], p) for p in dag.predecessors(k)]
        top = max(preds, key=lambda x: x[0], default=(0, None))
        best.append((top[0] + cost[k], top[1]))
    if not best:
        return []
    k: int | None = max(range(len(steps)), key=lambda i: (best[i][0], i))  # ties: the later end
    chain = []
    while k is not None:
        chain.append(k)
        k = best[k][1]
    return [n for k in reversed(chain) for n in steps[k]]


def fan_in(g: nx.DiGraph) -> dict[str, int]:
    """Number of distinct producers feeding each node, largest first."""
    return dict(sorted(((n, g.in_degree(n)) for n in g), key=lambda x: -x[1]))


def fan_out(g: nx.DiGraph) -> dict[str, int]:
    """Number of distinct consumers of each node's outputs, largest first."""
    return dict(sorted(((n, g.out_degree(n)) for n in g), key=lambda x: -x[1]))


def _condensed(g: nx.DiGraph) -> tuple[nx.DiGraph, dict[str, int]]:
    """Cycles collapsed into single steps, numbered in topological order (ties: the model's order)."""
    import networkx as nx

    rank = {n: i for i, n in enumerate(g)}
    c = nx.condensation(g)
    first = {k: min(rank[n] for n in c.nodes[k]["members"]) for k in c}
    order = list(nx.lexicographical_topological_sort(c, key=lambda k: first[k]))
    renumber = {k: i for i, k in enumerate(order)}
    dag = nx.relabel_nodes(c, renumber)
    where = {n: renumber[k] for n, k in c.graph["mapping"].items()}
    return dag, where


def _steps(g: nx.DiGraph) -> list[list[str]]:
    dag, _ = _condensed(g)
    rank = {n: i for i, n in enumerate(g)}
    return [sorted(dag.nodes[k]["members"], key=rank.__getitem__) for k in range(len(dag))]
