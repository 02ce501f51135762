"""Gradient flow in the train step: params that never learn, frozen weights in the loss, cut gradients.

Works on the loss-and-gradient program. A gradient is *structurally zero* when JAX's autodiff produced a
constant zero for it (a literal, or zeros broadcast / reshaped / multiplied through). Whether the loss
depends on a param at all, and through which ops, comes from the program's dependency edges.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from blox_inspect.analysis.flat_program import (
    LAYOUT,
    NON_DIFFERENTIABLE,
    FlatProgram,
    is_inexact,
    is_var,
    literal_value,
)
from blox_inspect.checks._context import CheckContext, Trace
from blox_inspect.checks._registry import check
from blox_inspect.checks.dead import usage
from blox_inspect.report.finding import Finding, code, finding

code("BX301", "error", "gradients", "trainable param gets no gradient")
code("BX302", "warning", "gradients", "non-trainable weight on a differentiable path to the loss")
code("BX303", "error", "gradients", "gradient of a trainable param cut off")

# Results that are zero when the listed operands are zero (None: any one operand; 'all': every operand).
_ZERO_IF_ANY = frozenset({"mul", "dot_general", "conv_general_dilated"})
_ZERO_IF_ALL = frozenset(
    {
        "add",
        "add_any",
        "sub",
        "neg",
        "select_n",
        "concatenate",
        "reduce_sum",
        "cumsum",
        "dynamic_update_slice",
        "scatter-add",
        "scatter_add",
        "pad",
        "psum",
        "transpose",
    }
)
_ZERO_IF_FIRST = frozenset({"gather", "dynamic_slice", "slice", "div"}) | LAYOUT


def zero_values(prog: FlatProgram) -> set:
    """Vars that are constant zero by construction."""
    zeros: set = set()

    def zero(x: Any) -> bool:
        if is_var(x):
            return x in zeros
        val = literal_value(x)
        return val is not None and val.size > 0 and not val.astype(np.float32).any()

    for op in prog.ops:
        ins = op.ins
        if op.prim == "select_n":
            ins = ins[1:]
        if not ins:
            continue
        if op.prim in _ZERO_IF_ANY:
            hit = any(zero(x) for x in ins)
        elif op.prim in _ZERO_IF_ALL:
            hit = all(zero(x) for x in ins)
        elif op.prim in _ZERO_IF_FIRST:
            hit = zero(ins[0])
        else:
            hit = False
        if hit:
            zeros.update(op.outs)
    return zeros


def _is_zero(x: Any, zeros: set) -> bool:
    if is_var(x):
        return x in zeros
    val = literal_value(x)
    return val is not None and val.size > 0 and not val.astype(np.float32).any()


def _cut_point(trace: Trace, pv: Any, reached: set) -> str:
    prog = trace.program
    below = prog.descendants([pv])
    for op in prog.ops:
        if op.prim in NON_DIFFERENTIABLE and any(x in below for x in op.ins) and any(o in reached for o in op.outs):
            return f"{op.prim} in {op.scope or '<top level>'}"
    return "a non-differentiable (integer or comparison) op"


def _weight_like(prog: FlatProgram, pv: Any) -> bool:
    """True when the value reaches a matmul or convolution operand through layout ops only."""
    todo, seen = [pv], {pv}
    while todo:
        v = todo.pop()
        for op, _ in prog.consumers.get(v, ()):
            if op.prim in ("dot_general", "conv_general_dilated"):
                return True
            if op.prim in LAYOUT:
                for o in op.outs:
                    if o not in seen:
                        seen.add(o)
                        todo.append(o)
    return False


@check("gradients")
def check_gradients(ctx: CheckContext) -> Iterable[Finding]:
    trace = ctx.train
    if trace is None:
        return
    prog = trace.program
    loss = trace.outputs[0]
    reached = prog.reach([loss])
    differentiable = prog.reach([loss], differentiable=True)
    zeros = zero_values(prog)
    used_params, _ = usage(ctx)
    for path, grad in trace.grads.items():
        pv = trace.param_vars[path]
        if not _is_zero(grad, zeros):
            continue
        if pv in reached:
            yield finding(
                "BX303",
                ctx.owner(path),
                f"The loss depends on trainable param {path}, but its gradient is cut off by "
                f"{_cut_point(trace, pv, reached)}, so it never learns.",
                "Remove the stop_gradient (or integer cast) on its path, or make the param trainable=False if it "
                "is frozen on purpose.",
            )
        elif path in used_params:
            yield finding(
                "BX301",
                ctx.owner(path),
                f"Trainable param {path} is used by the model but the train loss does not depend on it, so its "
                "gradient is always zero.",
                "Make sure the training-mode forward uses it (is_training branches, outputs the loss ignores), "
                "or mark it trainable=False.",
            )
    for path, pv in trace.param_vars.items():
        if path in trace.grads or not is_inexact(pv.aval) or pv not in differentiable:
            continue
        if _weight_like(prog, pv):
            yield finding(
                "BX302",
                ctx.owner(path),
                f"Non-trainable param {path} is a matmul/conv weight on a differentiable path to the loss, so it "
                "stays frozen while everything around it trains.",
                "Make it trainable=True, or wrap it in jax.lax.stop_gradient (or ignore BX302) if it is frozen on "
                "purpose.",
            )
