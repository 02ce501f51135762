"""Numerics hazards visible in the program: unguarded zeros, softmax without max-subtraction.

Both checks read the ops that produce a value, so they find hand-written code (a norm layer without eps,
a softmax written as ``exp(x) / sum(exp(x))``); library functions that guard themselves pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from blox_inspect.analysis.flat_program import LAYOUT, FlatProgram, Op, is_var, literal_value
from blox_inspect.checks._context import CheckContext
from blox_inspect.checks._registry import check
from blox_inspect.report.finding import Finding, code, finding

code("BX701", "warning", "numerics", "rsqrt/log/sqrt/division of a value that can be exactly zero")
code("BX702", "warning", "numerics", "softmax or logsumexp without max-subtraction")

_HAZARDS = {"rsqrt": 0, "log": 0, "sqrt": 0, "div": 1}
_MAXES = frozenset({"reduce_max", "max", "pmax", "cummax", "argmax"})


def _positive(x: Any) -> bool:
    val = literal_value(x)
    return val is not None and val.size > 0 and bool((val > 0).all())


def _square_like(prog: FlatProgram, x: Any) -> bool:
    root, _ = prog.origin(x)
    op = prog.producer.get(root) if is_var(root) else None
    if op is None:
        return False
    if op.prim == "integer_pow":
        return op.params.get("y", 1) % 2 == 0
    if op.prim in ("square", "abs"):
        return True
    return op.prim == "mul" and op.ins[0] is op.ins[1]


def can_be_zero(prog: FlatProgram, x: Any, depth: int = 0) -> bool:
    """True when ``x`` is a non-negative reduction (sum/mean of squares, a norm, a variance) with no eps added."""
    if depth > 12:
        return False
    root, _ = prog.origin(x)
    op = prog.producer.get(root) if is_var(root) else None
    if op is None:
        return False
    a = op.ins
    if op.prim == "div" and len(a) == 2:
        return can_be_zero(prog, a[0], depth + 1)  # 0 / anything is 0
    if op.prim == "mul" and len(a) == 2:
        return any(literal_value(y) is None and can_be_zero(prog, y, depth + 1) for y in a)
    if op.prim == "select_n":
        # jnp.var returns select(ddof < n, var, nan): any computed case that can be zero makes it zero.
        return any(literal_value(y) is None and can_be_zero(prog, y, depth + 1) for y in a[1:])
    if op.prim in ("sqrt", "reduce_sum"):
        if op.prim == "reduce_sum" and _square_like(prog, a[0]):
            return True
        return can_be_zero(prog, a[0], depth + 1)
    if op.prim == "max" and len(a) == 2:
        lit = [i for i in (0, 1) if literal_value(a[i]) is not None]
        if lit and not _positive(a[lit[0]]):
            return can_be_zero(prog, a[1 - lit[0]], depth + 1) or True
        return False
    if op.prim == "sub" and len(a) == 2:
        # E[x^2] - E[x]^2: a variance that can be zero (or negative by rounding).
        return can_be_zero(prog, a[0], depth + 1) and can_be_zero(prog, a[1], depth + 1)
    return False


def _forward(prog: FlatProgram, v: Any) -> list[tuple[Op, Any]]:
    """(consumer op, the value it consumed) for ``v`` and its layout-only copies."""
    found, todo, seen = [], [v], {v}
    while todo:
        x = todo.pop()
        for op, _ in prog.consumers.get(x, ()):
            if op.prim in LAYOUT:
                todo.extend(o for o in op.outs if o not in seen)
                seen.update(op.outs)
            else:
                found.append((op, x))
    return found


def _softmax_like(prog: FlatProgram, e: Any) -> bool:
    """True when ``e = exp(x)`` is summed and the sum normalises ``e`` (softmax) or is logged (logsumexp)."""
    copies = {x for _, x in _forward(prog, e)} | {e}
    for op, _ in _forward(prog, e):
        if op.prim not in ("reduce_sum", "psum"):
            continue
        for user, total in _forward(prog, op.outs[0]):
            if user.prim == "log" or (user.prim == "div" and user.ins[1] is total and user.ins[0] in copies):
                return True
    return False


def _is_max(prog: FlatProgram, x: Any, depth: int = 0) -> bool:
    """True when ``x`` is a max of something (through layout ops, stop_gradient and jax's -inf/finite guards)."""
    root, _ = prog.origin(x, LAYOUT | {"stop_gradient"})
    op = prog.producer.get(root) if is_var(root) else None
    if op is None or depth > 8:
        return False
    if op.prim == "max":
        computed = [y for y in op.ins if literal_value(y) is None]
        return len(computed) != 1 or _is_max(prog, computed[0], depth + 1)
    if op.prim == "select_n":
        return any(literal_value(y) is None and _is_max(prog, y, depth + 1) for y in op.ins[1:])
    return op.prim in _MAXES


def _max_shifted(prog: FlatProgram, x: Any) -> bool:
    """True when ``x`` is provably bounded above: shifted by a max, negated square, or a min."""
    root, _ = prog.origin(x)
    op = prog.producer.get(root) if is_var(root) else None
    if op is None:
        return not is_var(root)  # a literal is bounded; an input is not
    if op.prim == "sub":
        return _is_max(prog, op.ins[1])
    if op.prim == "neg":
        return _square_like(prog, op.ins[0])
    return op.prim in ("min", "log_sigmoid", "log")


def _numerics(prog: FlatProgram) -> Iterable[tuple[str, Op, str]]:
    for op in prog.ops:
        if op.in_backward:
            continue
        slot = _HAZARDS.get(op.prim)
        if slot is not None and len(op.ins) > slot and can_be_zero(prog, op.ins[slot]):
            what = "the denominator" if op.prim == "div" else "the argument"
            yield (
                "BX701",
                op,
                (
                    f"{op.prim} in {op.scope or 'the top level'}: {what} is a sum/mean of squares (a norm or variance) "
                    "with no epsilon, so an all-zero input gives inf/NaN values or gradients."
                ),
            )
        if op.prim == "exp" and op.outs and _softmax_like(prog, op.outs[0]) and not _max_shifted(prog, op.ins[0]):
            yield (
                "BX702",
                op,
                (
                    f"exp in {op.scope or 'the top level'} is summed without subtracting the max first (a hand-written "
                    "softmax/logsumexp), so it overflows to inf once inputs exceed ~88 in float32 (~11 in float16)."
                ),
            )


FIXES = {
    "BX701": "Add an epsilon before the rsqrt/log/division (e.g. rsqrt(var + 1e-6)), or use bx.LayerNorm/RMSNorm.",
    "BX702": "Use jax.nn.softmax / jax.nn.log_softmax / jax.nn.logsumexp, or subtract jax.lax.stop_gradient(x.max(axis, keepdims=True)) before exp.",
}


@check("numerics")
def check_numerics(ctx: CheckContext) -> Iterable[Finding]:
    seen = set()
    for trace in ctx.traces():
        for code_, op, message in _numerics(trace.program):
            if (code_, op.scope) in seen:
                continue
            seen.add((code_, op.scope))
            yield finding(code_, op.scope, message, FIXES[code_])
