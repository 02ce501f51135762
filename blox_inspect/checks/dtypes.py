"""Dtype surprises: float64, silent up-casts in matmuls, small integer counters, weak-typed params."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax.numpy as jnp
import numpy as np

import blox as bx
from blox_inspect.analysis.flat_program import FlatProgram, is_var
from blox_inspect.checks._context import CheckContext
from blox_inspect.checks._registry import check
from blox_inspect.report.finding import Finding, code, finding

code("BX401", "error", "dtypes", "float64 values in the program")
code("BX402", "warning", "dtypes", "float64 requested but silently truncated")
code("BX403", "warning", "dtypes", "low-precision param upcast in a matmul")
code("BX404", "warning", "dtypes", "low-precision activations upcast by a wider param")
code("BX405", "warning", "dtypes", "small integer counter can overflow")
code("BX406", "warning", "dtypes", "weak-typed param value")

WIDE = ("float64", "complex128")
MATMULS = ("dot_general", "conv_general_dilated")


def _dtype(x: Any) -> np.dtype | None:
    try:
        return np.dtype(x.aval.dtype)
    except (AttributeError, TypeError):
        return None


def _is_float(d: np.dtype | None) -> bool:
    return d is not None and bool(jnp.issubdtype(d, jnp.floating))


def _float64(ctx: CheckContext) -> Iterable[Finding]:
    by_scope: dict[str, list[str]] = {}
    for trace in ctx.traces():
        prog = trace.program
        names = {v: p for p, v in trace.param_vars.items()}
        for v in prog.invars:
            if str(_dtype(v)) in WIDE:
                by_scope.setdefault(ctx.owner(names[v]) if v in names else "", []).append(str(_dtype(v)))
        for op in prog.ops:
            if op.in_backward:
                continue
            for o in op.outs:
                if str(_dtype(o)) in WIDE:
                    by_scope.setdefault(op.scope, []).append(op.prim)
    for scope, what in by_scope.items():
        yield finding(
            "BX401",
            scope,
            f"{len(what)} value(s) in {scope or 'the top level'} are float64 (first: {what[0]}), which runs at a "
            "fraction of float32 speed on accelerators and doubles memory.",
            "Create params and inputs as float32 (or lower), or disable jax_enable_x64.",
        )
    seen = set()
    for message, scope in ctx.dtype_warnings:
        if scope in seen:
            continue
        seen.add(scope)
        yield finding(
            "BX402",
            scope,
            f"{scope or 'The model'} asks for float64 ({message.strip()}), but x64 is disabled so it silently "
            "gets float32.",
            "Ask for float32 explicitly, or enable jax_enable_x64 if float64 is really meant.",
        )


def _upcasts(prog: FlatProgram, names: dict) -> Iterable[tuple[str, Any]]:
    for op in prog.ops:
        if op.prim not in MATMULS or op.in_backward:
            continue
        sides = []
        for x in op.ins[:2]:
            root, passed = prog.origin(x)
            widened = [
                (_dtype(c.ins[0]), _dtype(c.outs[0]))
                for c in passed
                if c.prim == "convert_element_type"
                and _is_float(_dtype(c.ins[0]))
                and _is_float(_dtype(c.outs[0]))
                and _dtype(c.ins[0]).itemsize < _dtype(c.outs[0]).itemsize
            ]
            sides.append([names.get(root) if is_var(root) else None, widened[-1] if widened else None, _dtype(x)])
        # Mixed operand dtypes: the op computes in the wider one, so the narrower side is upcast implicitly.
        a, b = sides[0][2], sides[1][2]
        if _is_float(a) and _is_float(b) and a.itemsize != b.itemsize:
            low = 0 if a.itemsize < b.itemsize else 1
            sides[low][1] = sides[low][1] or (sides[low][2], sides[1 - low][2])
        for i, (param, cast, _) in enumerate(sides):
            other_param, other_cast, _ = sides[1 - i]
            if cast is None:
                continue
            low, high = cast
            if param is not None:
                yield (
                    "BX403",
                    (
                        op.scope,
                        f"Param {param} is stored as {low} but upcast to {high} for a {op.prim}, "
                        f"so the op runs at {high} speed and the low-precision storage buys no compute.",
                    ),
                )
            elif other_param is not None and other_cast is None:
                yield (
                    "BX404",
                    (
                        op.scope,
                        f"{low} activations are upcast to {high} for a {op.prim} because param "
                        f"{other_param} is {high}, so the op runs at {high} speed.",
                    ),
                )


def _matmul_dtypes(ctx: CheckContext) -> Iterable[Finding]:
    seen = set()
    fixes = {
        "BX403": "Store the param in the dtype you want to compute in, or cast the activations to the param dtype.",
        "BX404": "Create the params in the activation dtype (param_dtype=...), or cast the activations on purpose.",
    }
    for trace in ctx.traces():
        names = {v: p for p, v in trace.param_vars.items()}
        for code_, (scope, message) in _upcasts(trace.program, names):
            if (code_, scope) not in seen:
                seen.add((code_, scope))
                yield finding(code_, scope, message, fixes[code_])


def _counters(ctx: CheckContext) -> Iterable[Finding]:
    seen = set()
    for trace in ctx.traces():
        for path, new in trace.state_outs.items():
            pv = trace.param_vars.get(path)
            d = _dtype(pv) if pv is not None else None
            if d is None or d.kind not in "iu" or d.itemsize > 2 or not is_var(new) or new is pv or path in seen:
                continue
            if pv in trace.program.reach([new]):
                seen.add(path)
                limit = np.iinfo(d).max
                yield finding(
                    "BX405",
                    ctx.owner(path),
                    f"State {path} is a {d} updated from its own value (a counter), so it wraps around after "
                    f"{limit} updates.",
                    "Store counters as int32 or uint32.",
                )


def _weak(ctx: CheckContext) -> Iterable[Finding]:
    flagged = set()
    for path, param in ctx.params.items():
        if getattr(param.value, "weak_type", False):
            key = bx.path_str(path)
            flagged.add(key)
            yield finding(
                "BX406",
                ctx.owner(key),
                f"Param {key} is created weak-typed (from a Python scalar), so once it is saved, loaded or updated "
                "as a strongly typed array every jitted function recompiles.",
                "Create it with an explicit dtype, e.g. jnp.asarray(value, jnp.float32).",
            )
    for trace in ctx.traces():
        for path, new in trace.state_outs.items():
            pv = trace.param_vars.get(path)
            if pv is None or path in flagged or not hasattr(new, "aval"):
                continue
            if bool(getattr(new.aval, "weak_type", False)) != bool(getattr(pv.aval, "weak_type", False)):
                flagged.add(path)
                yield finding(
                    "BX406",
                    ctx.owner(path),
                    f"The update of {path} changes its weak_type, so feeding the updated Params back into a jitted "
                    "step recompiles it.",
                    "Cast the new value to the param's dtype (value.astype(old.dtype)) before set_param.",
                )


@check("dtypes")
def check_dtypes(ctx: CheckContext) -> Iterable[Finding]:
    yield from _float64(ctx)
    yield from _matmul_dtypes(ctx)
    yield from _counters(ctx)
    yield from _weak(ctx)
