"""Dataflow edges between modules, read from the tags in a traced jaxpr.

Every module call tags its array inputs (``kind='in'``) and outputs (``'out'``).
Walking backwards from each tag's operand to the nearest tags (or to the
model's own inputs) tells which module produced what another module consumes,
even through plain-JAX code in between. Walks descend into and out of inner
jaxprs (``scan``, ``jit``, ``remat``, ``cond`` ...) positionally.

Edges come in two kinds of port, recorded on :class:`Edge`:

* ``src_port='out'``: the array is an output of ``src``; ``'in'``: it is an input
  of ``src`` passed on inside ``src`` (``src`` encloses ``dst``).
* ``dst_port='in'``: the array is an input of ``dst``; ``'out'``: it becomes an
  output of ``dst`` (``dst`` encloses ``src``).

So a renderer can draw leaf-level dataflow and nest it in clusters.

**Merges.** Where two module outputs meet in plain JAX (a residual ``x + attn(x)``, a
``concatenate``, a gating ``a * b``, attention's ``q @ k``), the walk stops at the equation that combines them and
records a merge endpoint ``<merge:SCOPE#N:OP>`` (the N-th merge, in program order, of the module
whose code ran it; ``OP`` the primitive). Edges then run from each input's source into the merge
and from the merge on, instead of from one input straight past it, which reads as wrong dataflow.
An equation whose operands come from the same sources (``x - mean(x)``, a bias add, a layer's
``x @ kernel``) is no merge.
"""

from __future__ import annotations

import sys
from typing import Any

from jax.extend import core as jcore

from blox_inspect.analysis.jaxpr import inner_jaxprs, module_of, open_jaxpr
from blox_inspect.analysis.trace import TAG_NAME, Trace, spec_of
from blox_inspect.report.model import Edge, MergeInfo, TensorSpec

# Primitives that combine values: where two modules' outputs meet in plain JAX code.
MERGE_PRIMITIVES = frozenset({"add", "add_any", "sub", "mul", "concatenate", "dot_general"})
MERGE_SYMBOLS = {"add": "+", "add_any": "+", "sub": "−", "mul": "×", "concatenate": "concat", "dot_general": "@"}


def _sub_jaxprs(eqn: Any) -> list[Any]:
    return [open_jaxpr(j) for j in inner_jaxprs(eqn)]


_NO_SUBS: list[Any] = []


def _call_inputs(eqn: Any) -> list[Any]:
    # cond's first operand is the branch index, not a branch input.
    return list(eqn.invars[1:] if eqn.primitive.name == "cond" else eqn.invars)


class _Index:
    """Producer of every var, and the position of every inner jaxpr's inputs."""

    def __init__(self, jaxpr: Any, trace_id: int):
        self.trace_id = trace_id
        self.producer: dict[Any, tuple[Any, int]] = {}
        self.position: dict[Any, int] = {}  # inner invar -> its position in its jaxpr's invars
        self.owners: dict[Any, list[Any]] = {}  # inner invar -> equations that run its jaxpr
        self.tags: list[Any] = []
        self.order: dict[int, int] = {}  # id(eqn) -> its position in program order (merge numbering)
        self._subs: dict[int, list[Any]] = {}  # id(eqn) -> its inner jaxprs, for eqns that have some
        self._done: set[int] = set()
        self._index(open_jaxpr(jaxpr))

    def subs(self, eqn: Any) -> list[Any]:
        """``_sub_jaxprs(eqn)`` of an indexed equation, worked out once."""
        return self._subs.get(id(eqn), _NO_SUBS)

    def _index(self, j: Any) -> None:
        for eqn in j.eqns:
            self.order[id(eqn)] = len(self.order)
            for k, v in enumerate(eqn.outvars):
                self.producer[v] = (eqn, k)
            if eqn.primitive.name == TAG_NAME:
                if eqn.params["trace"] == self.trace_id:
                    self.tags.append(eqn)
                continue
            subs = _sub_jaxprs(eqn)
            if subs:
                self._subs[id(eqn)] = subs
            for sub in subs:
                for i, v in enumerate(sub.invars):
                    self.position[v] = i
                    self.owners.setdefault(v, []).append(eqn)
                # jax reuses one inner jaxpr object for equal calls (its trace cache): index it once.
                if id(sub) not in self._done:
                    self._done.add(id(sub))
                    self._index(sub)


def compute_edges(trace: Trace, paths: list[str]) -> list[Edge]:
    """Edges between call sites; ``paths[site]`` is the module path of each call (see :func:`compute_flow`)."""
    return compute_flow(trace, paths)[0]


def compute_flow(trace: Trace, paths: list[str]) -> tuple[list[Edge], list[MergeInfo]]:
    """Edges between call sites, model inputs/outputs and merges; ``paths[site]`` is each call's module path."""
    # Merges recurse into their operands' walks: one level per merge along a chain (a residual stream).
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        return _compute_flow(trace, paths)
    finally:
        sys.setrecursionlimit(limit)


def _compute_flow(trace: Trace, paths: list[str]) -> tuple[list[Edge], list[MergeInfo]]:
    index = _Index(trace.jaxpr, trace.id)
    scopes = frozenset(paths)
    merges: dict[tuple, Any] = {}  # (id(eqn), *ctx ids) -> provisional merge name, or None: not a merge
    merge_inputs: dict[str, list[tuple[int, list]]] = {}  # provisional name -> [(operand, its sources)]
    merge_facts: dict[str, tuple] = {}  # provisional name -> (scope, program order, primitive, output var)
    top = open_jaxpr(trace.jaxpr)
    inputs = {v: i for i, v in enumerate(top.invars[trace.n_param_leaves :])}
    params = set(top.invars[: trace.n_param_leaves])
    edges: list[Edge] = []
    seen: set[tuple] = set()

    def outer_of(v: Any, eqn: Any) -> list[Any]:
        ins = _call_inputs(eqn)
        i = index.position[v]
        # Matching arity maps positionally; otherwise an inner input may stand for any outer one.
        subs = [s for s in index.subs(eqn) if v in s.invars]
        if subs and len(subs[0].invars) == len(ins):
            return [ins[i]]
        return ins

    def merge_at(eqn: Any, k: int, ctx: tuple) -> str | None:
        """The merge endpoint ``eqn`` is, or None when its operands come from fewer than two sources."""
        key = (id(eqn), *map(id, ctx))
        if key in merges:
            return merges[key]
        merges[key] = None  # while its operands are walked (a cycle through a loop never recurses forever)
        operands = [(i, x) for i, x in enumerate(eqn.invars) if not isinstance(x, jcore.Literal)]
        if len(operands) < 2:
            return None
        found = [(i, sources(x, ctx)) for i, x in operands]
        ends = [frozenset((f[0], f[1], f[2]) for f in srcs) for _, srcs in found]
        # A merge combines different data: operands reaching the same sources (x - max(x), a bias add) are none.
        if sum(1 for e in ends if e) < 2 or len(set(e for e in ends if e)) < 2:
            return None
        name = f"<merge:{len(merge_facts)}>"
        prefix = tuple(item for e in ctx for item in e.source_info.name_stack.stack)
        scope = module_of(prefix + tuple(eqn.source_info.name_stack.stack), scopes)
        merge_facts[name] = (scope, index.order.get(id(eqn), 0), eqn.primitive.name, eqn.outvars[k])
        merge_inputs[name] = found
        merges[key] = name
        return name

    def sources(start: Any, start_ctx: tuple = ()) -> list[tuple[Any, str, int, Any]]:
        """Nearest (site, merge or endpoint, port, index, var) behind ``start``.

        A walk carries the chain of equations it descended through, so leaving an inner
        jaxpr returns to the call it came from, not to every call sharing that jaxpr.
        """
        found = []
        stack: list[tuple[Any, tuple]] = [(start, start_ctx)]
        visited = set()
        while stack:
            v, ctx = stack.pop()
            if isinstance(v, jcore.Literal):
                continue
            key = (id(v), *map(id, ctx)) if ctx else id(v)  # most walks never leave the top jaxpr
            if key in visited:
                continue
            visited.add(key)
            if v in inputs:
                found.append((f"<input:{inputs[v]}>", "out", inputs[v], v))
                continue
            if v in params:
                continue
            if v in index.producer:
                eqn, k = index.producer[v]
                if eqn.primitive.name == TAG_NAME:
                    p = eqn.params
                    if p["trace"] == trace.id:
                        found.append((p["site"], p["kind"], p["index"], v))
                        continue
                    stack.append((eqn.invars[0], ctx))  # a stale tag from JAX's trace cache: see through it
                    continue
                subs = [s for s in index.subs(eqn) if len(s.outvars) == len(eqn.outvars)]
                if subs:
                    stack.extend((s.outvars[k], ctx + (eqn,)) for s in subs)
                    continue
                if eqn.primitive.name in MERGE_PRIMITIVES:
                    merge = merge_at(eqn, k, ctx)
                    if merge is not None:
                        found.append((merge, "out", 0, v))
                        continue
                stack.extend((x, ctx) for x in eqn.invars)
                continue
            if v in index.position:
                if ctx:
                    stack.extend((x, ctx[:-1]) for x in outer_of(v, ctx[-1]))
                else:  # the walk started inside this jaxpr: every call of it is a candidate
                    for eqn in index.owners[v]:
                        stack.extend((x, ()) for x in outer_of(v, eqn))
        return found

    def add(src, src_port, src_index, dst, dst_port, dst_index, var):
        key = (src, src_port, src_index, dst, dst_port, dst_index)
        if key in seen:
            return
        seen.add(key)
        edges.append(
            Edge(
                src=src,
                dst=dst,
                tensor=_spec(var),
                src_index=src_index,
                dst_index=dst_index,
                src_port=src_port,
                dst_port=dst_port,
            )
        )

    def name(site: Any) -> str:
        return site if isinstance(site, str) else paths[site]

    for eqn in index.tags:
        p = eqn.params
        for site, kind, i, var in sources(eqn.invars[0]):
            if site == p["site"]:
                continue  # a module's own input reaching its own output
            add(name(site), kind, i, paths[p["site"]], p["kind"], p["index"], var)
    for j, v in enumerate(top.outvars[: len(trace.out_specs)]):  # the model's outputs, not its state updates
        for site, kind, i, var in sources(v):
            add(name(site), kind, i, f"<output:{j}>", "in", j, var)
    for merge, found in list(merge_inputs.items()):
        for operand, srcs in found:
            for site, kind, i, var in srcs:
                add(name(site), kind, i, merge, "in", operand, var)
    # Final names: numbered per module in program order, so the same merge in identical blocks has the same
    # name relative to its block (diagrams fold those blocks into one).
    final: dict[str, str] = {}
    infos: list[MergeInfo] = []
    for merge, (scope, _order, prim, var) in sorted(merge_facts.items(), key=lambda kv: (kv[1][0], kv[1][1])):
        n = sum(1 for f in infos if f.scope == scope)
        final[merge] = f"<merge:{scope}#{n}:{prim}>"
        infos.append(MergeInfo(id=final[merge], op=prim, scope=scope, tensor=_spec(var)))
    for e in edges:
        e.src, e.dst = final.get(e.src, e.src), final.get(e.dst, e.dst)
    return edges, infos


def _spec(v: Any) -> TensorSpec:
    return spec_of(v.aval)
