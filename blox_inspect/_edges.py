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
"""

from __future__ import annotations

from typing import Any

from jax.extend import core as jcore

from ._report import Edge, TensorSpec
from ._trace import TAG_NAME, Trace, spec_of


def _open(j: Any) -> Any:
    return j.jaxpr if isinstance(j, jcore.ClosedJaxpr) else j


def _sub_jaxprs(eqn: Any) -> list[Any]:
    found = []
    for value in eqn.params.values():
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, (jcore.Jaxpr, jcore.ClosedJaxpr)):
                found.append(_open(v))
    return found


class _Index:
    """Producer of every var and the outer vars of every inner jaxpr's inputs."""

    def __init__(self, jaxpr: Any):
        self.producer: dict[Any, tuple[Any, int]] = {}
        self.outer: dict[Any, list[Any]] = {}  # inner invar -> outer vars it stands for
        self.tags: list[Any] = []
        self._done: set[int] = set()
        self._index(_open(jaxpr))

    def _index(self, j: Any) -> None:
        # jax may reuse one inner jaxpr object for several equations: index it once.
        if id(j) in self._done:
            return
        self._done.add(id(j))
        for eqn in j.eqns:
            for k, v in enumerate(eqn.outvars):
                self.producer[v] = (eqn, k)
            if eqn.primitive.name == TAG_NAME:
                self.tags.append(eqn)
                continue
            for sub in _sub_jaxprs(eqn):
                ins = list(eqn.invars)
                # cond's first operand is the branch index, not a branch input.
                if eqn.primitive.name == "cond":
                    ins = ins[1:]
                if len(sub.invars) == len(ins):
                    for inner, outer in zip(sub.invars, ins):
                        self.outer.setdefault(inner, []).append(outer)
                else:
                    # Unknown layout: an inner input may stand for any outer one.
                    for inner in sub.invars:
                        self.outer.setdefault(inner, []).extend(ins)
                self._index(sub)

    def inner_outvars(self, eqn: Any, k: int) -> list[Any] | None:
        subs = [s for s in _sub_jaxprs(eqn) if len(s.outvars) == len(eqn.outvars)]
        if not subs:
            return None
        return [s.outvars[k] for s in subs]


def compute_edges(trace: Trace, paths: list[str]) -> list[Edge]:
    """Edges between call sites; ``paths[site]`` is the module path of each call."""
    index = _Index(trace.jaxpr)
    top = _open(trace.jaxpr)
    inputs = {v: i for i, v in enumerate(top.invars[trace.n_param_leaves :])}
    params = set(top.invars[: trace.n_param_leaves])
    edges: list[Edge] = []
    seen: set[tuple] = set()

    def sources(start: Any) -> list[tuple[str, str, int, Any]]:
        """Nearest (endpoint, port, index, var) behind ``start``."""
        found = []
        stack = [start]
        visited = set()
        while stack:
            v = stack.pop()
            if isinstance(v, jcore.Literal) or id(v) in visited:
                continue
            visited.add(id(v))
            if v in inputs:
                found.append((f"<input:{inputs[v]}>", "out", inputs[v], v))
                continue
            if v in params:
                continue
            if v in index.producer:
                eqn, k = index.producer[v]
                if eqn.primitive.name == TAG_NAME:
                    p = eqn.params
                    found.append((p["site"], p["kind"], p["index"], v))
                    continue
                inner = index.inner_outvars(eqn, k)
                if inner is not None:
                    stack.extend(inner)
                else:
                    stack.extend(eqn.invars)
                continue
            stack.extend(index.outer.get(v, ()))
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
    for j, v in enumerate(top.outvars):
        for site, kind, i, var in sources(v):
            add(name(site), kind, i, f"<output:{j}>", "in", j, var)
    return edges


def _spec(v: Any) -> TensorSpec:
    return spec_of(v.aval)
