"""The one jaxpr layer: inner jaxprs, loop trip counts, and which module an equation belongs to.

Every analysis that reads a jaxpr (FLOPs, dataflow edges, program text, the checks' flat view, loop
lengths) walks inner jaxprs through :func:`inner_jaxprs` and resolves name stacks with
:func:`module_of`, so scan, while, cond, pjit, remat, custom_jvp/vjp and shard_map are handled
the same way everywhere.

Name stacks. blox opens one ``jax.named_scope`` per module call, spelled relative to the calling
module when the callee sits below it in the graph (``h/0`` inside ``gpt2/transformer``) and as the
full path otherwise (see ``bx.scope_for``). :func:`module_of` undoes that: it walks the stack's
scopes, extending the current module path by each scope, or restarting from a full path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from jax.extend import core as jcore


def open_jaxpr(j: Any) -> Any:
    """The ``Jaxpr`` of a ``ClosedJaxpr`` (a ``Jaxpr`` is returned as it is)."""
    return j.jaxpr if isinstance(j, jcore.ClosedJaxpr) else j


_JAXPRS = (jcore.Jaxpr, jcore.ClosedJaxpr)


def inner_jaxprs(eqn: Any) -> list[Any]:
    """Every jaxpr an equation holds in its params (scan/while bodies, cond branches, call bodies), as given."""
    found = []
    for value in eqn.params.values():  # every walk asks this of every equation: keep it lean
        if isinstance(value, _JAXPRS):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            found.extend(v for v in value if isinstance(v, _JAXPRS))
    return found


def trip_count(eqn: Any) -> int:
    """How many times an equation runs its inner jaxprs: a scan's length, a shard_map's manual devices, else 1.

    A ``while`` loop has no static trip count: it counts once (callers flag it as dynamic).
    """
    name = eqn.primitive.name
    if name == "scan":
        return int(eqn.params["length"])
    if name == "shard_map":
        mesh = eqn.params.get("mesh")
        manual = eqn.params.get("manual_axes") or getattr(mesh, "axis_names", ())
        shape = dict(getattr(mesh, "shape", {}) or {})
        return int(math.prod(shape.get(a, 1) for a in manual)) if shape else 1
    return 1


def call_jaxpr(eqn: Any) -> Any:
    """The inner jaxpr of a call-like equation whose operands and results map one to one, else None."""
    subs = inner_jaxprs(eqn)
    if len(subs) != 1 or eqn.primitive.name in ("scan", "while", "cond"):
        return None
    inner = open_jaxpr(subs[0])
    if len(inner.invars) == len(eqn.invars) and len(inner.outvars) == len(eqn.outvars):
        return subs[0]
    return None


def scope_names(stack: Iterable[Any]) -> list[str]:
    """The ``named_scope`` names in a name stack (transform markers such as ``jvp`` left out)."""
    return [item.name for item in stack if type(item).__name__ == "Scope"]


def module_of(stack: Iterable[Any], modules: frozenset[str] | set[str] | None) -> str:
    """The path string of the innermost module a name stack runs in (``''`` outside every module).

    ``modules`` holds every module's path string (``Module.scope_name``); with None, each scope counts
    as a module, spelled in full.

    Example:
        >>> from types import SimpleNamespace as S
        >>> Scope = type('Scope', (), {})
        >>> def scope(name):
        ...     s = Scope(); s.name = name; return s
        >>> mods = {'gpt2', 'gpt2/h/0', 'gpt2/h/0/attn', 'enc/emb'}
        >>> module_of([scope('gpt2'), scope('h/0'), scope('attn')], mods)
        'gpt2/h/0/attn'
        >>> module_of([scope('gpt2'), scope('my_block'), scope('enc/emb')], mods)
        'enc/emb'
    """
    chain = module_chain(stack, modules)
    return chain[-1] if chain else ""


def module_chain(stack: Iterable[Any], modules: frozenset[str] | set[str] | None) -> list[str]:
    """The path strings of every module a name stack runs in, outermost first (see :func:`module_of`)."""
    chain: list[str] = []
    for name in scope_names(stack):
        if modules is None:
            chain.append(name)
            continue
        current = chain[-1] if chain else ""
        nested = f"{current}/{name}" if current else name
        if nested in modules:
            chain.append(nested)
        elif name in modules:
            chain.append(name)
    return chain


def walk(jaxpr: Any, *, once: bool = False) -> Iterator[tuple[Any, tuple, int, int]]:
    """Every equation at every depth, outermost first: ``(eqn, name stack, multiplier, depth)``.

    Inner jaxprs carry name stacks relative to their enclosing equation; the stack given here is
    the full one. ``multiplier`` is the product of the enclosing trip counts (:func:`trip_count`).
    A cond's branches are all visited (callers that want the most expensive one use
    :func:`inner_jaxprs` themselves). With ``once=True`` an inner jaxpr that JAX shares between
    equations (its trace cache) is visited once.
    """
    seen: set[int] = set()

    def visit(j: Any, prefix: tuple, mult: int, depth: int) -> Iterator[tuple[Any, tuple, int, int]]:
        for eqn in open_jaxpr(j).eqns:
            stack = prefix + tuple(eqn.source_info.name_stack.stack)
            yield eqn, stack, mult, depth
            m = mult * trip_count(eqn)
            for sub in inner_jaxprs(eqn):
                inner = open_jaxpr(sub)
                if once:
                    if id(inner) in seen:
                        continue
                    seen.add(id(inner))
                yield from visit(inner, stack, m, depth + 1)

    yield from visit(jaxpr, (), 1, 0)


def count_eqns(jaxpr: Any) -> int:
    """Equations in a jaxpr and all its inner jaxprs (each shared inner jaxpr once)."""
    return sum(1 for _ in walk(jaxpr, once=True))


def scan_lengths(jaxpr: Any) -> list[int]:
    """Lengths of the ``scan`` loops at any depth (the loops our FLOPs multiply and XLA counts once)."""
    return [int(eqn.params["length"]) for eqn, *_ in walk(jaxpr) if eqn.primitive.name == "scan"]
