"""RNG checks: one key value consumed twice, keys reused across loop iterations or vmap lanes.

Keys are followed through the program by value numbering: two values get the same number when they are
the same operation on the same inputs (``fold_in(seed, counter)`` read twice with the same counter is one
key). A *draw* (``random_bits``, ``random_split``) consumes a key; a key with two draws is reused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from blox_inspect.analysis.flat_program import FlatProgram, Op, is_var, literal_value
from blox_inspect.checks._context import CheckContext
from blox_inspect.checks._registry import check
from blox_inspect.report.finding import Finding, code, finding

code("BX101", "error", "rng", "PRNG key consumed by two random operations")
code("BX102", "error", "rng", "PRNG key reused in every loop iteration")
code("BX103", "warning", "rng", "random draw identical in every vmap lane")

DRAWS = frozenset({"random_bits", "random_split"})
FIX_REUSE = "Draw a fresh key for each random operation: call the Rng module once per use (keeping the Params it returns) or split the key."


def value_numbers(prog: FlatProgram, only: set | None = None) -> Any:
    """Returns ``number(x)``: equal numbers mean provably equal values (same op on the same inputs).

    With ``only``, ops whose results are not in that set are skipped (it must be closed under dependencies).
    """
    table: dict[tuple, int] = {}
    vn: dict[Any, int] = {}

    def intern(key: tuple) -> int:
        if key not in table:
            table[key] = len(table)
        return table[key]

    def number(x: Any) -> int:
        if is_var(x):
            n = vn.get(x)
            if n is None:
                n = vn[x] = intern(("src", id(x)))
            return n
        val = literal_value(x)
        if val is not None and val.ndim == 0:
            return intern(("lit", str(val.dtype), val.item()))
        return intern(("lit?", id(x)))

    for op in prog.ops:
        if only is not None and not any(o in only for o in op.outs):
            continue
        key = _params_key(op.params)
        ins = tuple(number(x) for x in op.ins)
        for i, o in enumerate(op.outs):
            vn[o] = intern(("op", op.prim, key, ins, i)) if key is not None else intern(("uniq", id(o)))
    return number


def _params_key(params: dict) -> tuple | None:
    try:
        key = tuple(sorted(params.items()))
        hash(key)
        return key
    except TypeError:
        return None


def exclusive(a: Op, b: Op) -> bool:
    """True when ``a`` and ``b`` sit in different branches of one ``cond`` (only one of them runs)."""
    branches = {c[1]: c[2] for c in a.ctx if c[0] == "cond"}
    return any(c[0] == "cond" and c[1] in branches and branches[c[1]] != c[2] for c in b.ctx)


def _draws(prog: FlatProgram) -> list[Op]:
    # Backward ops are left out: rematerialisation legitimately replays forward draws.
    return [op for op in prog.ops if op.prim in DRAWS and not op.in_backward and is_var(op.ins[0])]


def _where(ops: list[Op]) -> str:
    scopes = []
    for op in ops:
        s = op.scope or "<top level>"
        if s not in scopes:
            scopes.append(s)
    return ", ".join(scopes)


def reuse_findings(prog: FlatProgram) -> Iterable[Finding]:
    draws = _draws(prog)
    if not draws:
        return
    # Only the values keys are computed from matter: number just those.
    number = value_numbers(prog, only=prog.reach([op.ins[0] for op in draws]))
    groups: dict[int, list[Op]] = {}
    for op in draws:
        groups.setdefault(number(op.ins[0]), []).append(op)
    for ops in groups.values():
        clash = [b for i, b in enumerate(ops) if any(not exclusive(a, b) for a in ops[:i])]
        if not clash:
            continue
        first = ops[0]
        uses = " and ".join(sorted({o.prim for o in ops}))
        yield finding(
            "BX101",
            clash[0].scope or first.scope,
            f"One PRNG key is consumed by {len(ops)} random operations ({uses}, in {_where(ops)}), so they draw "
            "identical or correlated numbers.",
            FIX_REUSE,
        )
    if not any(op.loops for op in draws):
        return
    variance = prog.loop_variance()
    for op in draws:
        loops = op.loops
        if not loops:
            continue
        kind, loop_id, length = loops[-1]
        if length is not None and length <= 1:
            continue
        if loop_id not in variance.get(op.ins[0], frozenset()):
            yield finding(
                "BX102",
                op.scope,
                f"The key of a {op.prim} inside a {kind} loop is the same in every iteration, so every iteration "
                "draws the same random numbers.",
                "Thread the Rng state (its Params) through the loop carry, or fold the iteration index into the key.",
            )


def _lane_size(ctx: CheckContext) -> int:
    dims = set()
    for v in ctx.forward.program.all_vars():
        dims.update(int(d) for d in getattr(getattr(v, "aval", None), "shape", ()) if isinstance(d, int))
    for x in ctx.loaded.abstract_inputs():
        dims.update(x.shape)
    return next(n for n in range(7, 10_000) if n not in dims and all(n % d for d in range(2, n)))


def vmap_findings(ctx: CheckContext) -> Iterable[Finding]:
    setting = ctx.settings.get("BLOX_CHECK_VMAP")
    if not setting:
        return
    lanes = _lane_size(ctx)
    prog = ctx.trace_vmap(setting if isinstance(setting, str) else None, lanes)
    seen = set()
    for op in prog.ops:
        if op.prim != "random_bits" or op.in_backward:
            continue
        # Under vmap a per-lane key carries the lane axis; a key without it is shared by all lanes.
        if lanes in getattr(op.ins[0].aval, "shape", ()) or op.scope in seen:
            continue
        seen.add(op.scope)
        yield finding(
            "BX103",
            op.scope,
            f"Under jax.vmap with shared params this random draw gets the same key in every lane, so all {lanes} "
            "lanes see identical 'random' numbers.",
            "Fold the lane index into the key (jax.random.fold_in(key, jax.lax.axis_index(axis_name))) or vmap "
            "the Rng state too.",
        )


@check("rng")
def check_rng(ctx: CheckContext) -> Iterable[Finding]:
    for trace in ctx.traces():
        yield from reuse_findings(trace.program)
    yield from vmap_findings(ctx)
