"""Captured constants: arrays closed over by the model and baked into the compiled program."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from blox_inspect.checks._context import CheckContext, nbytes
from blox_inspect.checks._registry import check
from blox_inspect.report.finding import Finding, code, finding

code("BX501", "warning", "constants", "large array baked into the program")

DEFAULT_CONST_BYTES = 1 << 20  # override per model with BLOX_CHECK_CONST_BYTES


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


@check("constants")
def check_constants(ctx: CheckContext) -> Iterable[Finding]:
    limit = int(ctx.settings.get("BLOX_CHECK_CONST_BYTES", DEFAULT_CONST_BYTES))
    seen = set()
    for trace in ctx.traces():
        prog = trace.program
        for var, value in prog.consts.items():
            size = nbytes(var.aval)
            if size < limit:
                continue
            users = [op for op, _ in prog.consumers.get(var, ())]
            scopes = [op.scope for op in users if op.scope] or [""]
            key = (tuple(np.shape(value)), str(var.aval.dtype), scopes[0])
            if key in seen:
                continue
            seen.add(key)
            yield finding(
                "BX501",
                scopes[0],
                f"A {var.aval.dtype}{list(np.shape(value))} array ({_mib(size)}) is captured as a constant in "
                f"{scopes[0] or 'the top level'} and baked into every compiled program.",
                "Store it as a non-trainable param (get_param(..., trainable=False)) or compute it inside the "
                "traced function with jnp.",
            )
