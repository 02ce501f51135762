"""Dead structure: modules never called, params and inputs that affect nothing.

"Affects" means: some model output (forward), the loss (train step), or a changed state value (a param
the call updates) depends on it in the traced programs. Rng seed and counter are exempt: they are consumed
when params are initialised, which these programs do not contain.
"""

from __future__ import annotations

from collections.abc import Iterable

import jax

import blox as bx
from blox_inspect.checks._context import CheckContext
from blox_inspect.checks._registry import check
from blox_inspect.report.finding import Finding, code, finding

code("BX201", "warning", "dead", "module never called")
code("BX202", "warning", "dead", "param affects no output")
code("BX203", "warning", "dead", "model input affects no output")


def usage(ctx: CheckContext) -> tuple[set[str], set[int]]:
    """(param paths, input indices) that some output, the loss or a state update depends on."""
    if "usage" in ctx._cache:
        return ctx._cache["usage"]
    params: set[str] = set()
    inputs: set[int] = set()
    for trace in ctx.traces():
        targets = list(trace.outputs)
        targets += [v for p, v in trace.state_outs.items() if v is not trace.param_vars.get(p)]
        reached = trace.program.reach(targets)
        params |= {p for p, v in trace.param_vars.items() if v in reached}
        inputs |= {i for i, v in enumerate(trace.input_vars) if v in reached}
    ctx._cache["usage"] = (params, inputs)
    return params, inputs


def _desc(x) -> str:
    return f"{x.dtype}{list(x.shape)}"


@check("dead")
def check_dead(ctx: CheckContext) -> Iterable[Finding]:
    used_params, used_inputs = usage(ctx)
    owners_used = {ctx.owner(p) for p in used_params}
    reported: list[str] = []
    for scope, module in ctx.modules.items():
        if any(scope == r or scope.startswith(r + "/") for r in reported):
            continue
        below = scope + "/"
        if scope in ctx.called or any(c.startswith(below) for c in ctx.called):
            continue
        if scope in owners_used or any(o.startswith(below) for o in owners_used):
            continue
        reported.append(scope)
        yield finding(
            "BX201",
            scope,
            f"{type(module).__name__} at {scope} is in the graph but is never called, in the forward pass or in the "
            "train step.",
            "Call it where it belongs in the parent's __call__, or remove it from the graph.",
        )
    for path, param in ctx.params.items():
        key = bx.path_str(path)
        if key in used_params or ctx.is_rng_state(key):
            continue
        yield finding(
            "BX202",
            ctx.owner(key),
            f"Param {key} ({_desc(param.value)}) affects no model output, loss or state update.",
            "Remove the param, or wire it into the computation (check the module's __call__).",
        )
    for i, leaf in enumerate(jax.tree.leaves(ctx.loaded.abstract_inputs())):
        if i not in used_inputs:
            yield finding(
                "BX203",
                "",
                f"Model input {i} ({_desc(leaf)}) does not affect any output or the loss.",
                "Use the input in the model, or stop passing it from the factory.",
            )
