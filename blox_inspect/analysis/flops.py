"""Loop-aware FLOP counting over a jaxpr, attributed to modules by named scope.

Rules (also in docs/inspect.md):
- ``dot_general``: 2 x (output elements) x (contracted size), i.e. 2·M·N·K.
- ``conv_general_dilated``: 2 x (output elements) x (kernel spatial size) x (input features per group).
- Reductions (``reduce_sum``, ``reduce_max``, ``argmax``, ...): one per input element.
- Pure data movement and type changes (reshape, transpose, broadcast, slice, gather, convert, ...): zero.
- Every other primitive (elementwise arithmetic, comparisons, transcendental functions, RNG bits): one per
  output element.
- ``scan``: the body times its ``length``. A ``while_loop`` has no static trip count: its body is counted once
  and the loop is flagged in ``dynamic_loops``. ``cond``/``switch``: the most expensive branch.
- Calls (``jit``, ``remat``, ``custom_jvp_call``, ...): their inner jaxpr, once.
Each equation's FLOPs go to the innermost enclosing module (:func:`blox_inspect.analysis.jaxpr.module_of`);
equations outside every module go to ``''``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from blox_inspect.analysis.jaxpr import inner_jaxprs, module_of, open_jaxpr, trip_count

ZERO_COST = frozenset(
    {
        "reshape",
        "transpose",
        "broadcast_in_dim",
        "squeeze",
        "expand_dims",
        "slice",
        "dynamic_slice",
        "dynamic_update_slice",
        "concatenate",
        "pad",
        "gather",
        "convert_element_type",
        "bitcast_convert_type",
        "iota",
        "copy",
        "copy_p",
        "rev",
        "select_and_gather_add",
        "stop_gradient",
        "device_put",
        "sharding_constraint",
        "random_wrap",
        "random_unwrap",
        "random_seed",
        "split",
        "pvary",
        "mesh_cast",
        "reshard",
        "optimization_barrier",
        "name",
        "axis_index",
        "with_sharding_constraint",
        "empty",
        "zeros_like",
        "tie_in",
        "random_fold_in",
        "broadcast",
        "real",
        "imag",
        "blox_tag",  # blox_inspect's identity marker of module inputs/outputs (see _trace.py)
    }
)
REDUCTIONS = frozenset(
    {
        "reduce_sum",
        "reduce_max",
        "reduce_min",
        "reduce_prod",
        "reduce_and",
        "reduce_or",
        "reduce_xor",
        "argmax",
        "argmin",
        "reduce_precision",
        "psum",
        "pmax",
        "pmin",
    }
)


@dataclass
class FlopCount:
    """Result of :func:`count_flops`."""

    total: int = 0
    by_scope: dict[str, int] = field(default_factory=dict)
    by_primitive: dict[str, int] = field(default_factory=dict)
    dynamic_loops: list[str] = field(default_factory=list)  # scope strings of while loops (counted once)


def _size(aval: Any) -> int:
    shape = getattr(aval, "shape", ())
    return int(math.prod(shape)) if shape else 1


def eqn_flops(eqn: Any) -> int:
    """FLOPs of one equation that holds no inner jaxpr."""
    name = eqn.primitive.name
    if name == "dot_general":
        (lhs_contract, _), _ = eqn.params["dimension_numbers"]
        lhs = eqn.invars[0].aval
        k = math.prod(lhs.shape[d] for d in lhs_contract) if lhs_contract else 1
        return 2 * _size(eqn.outvars[0].aval) * int(k)
    if name == "conv_general_dilated":
        rhs = eqn.invars[1].aval
        dn = eqn.params["dimension_numbers"]
        rhs_spec = dn.rhs_spec  # (out feature dim, in feature dim, *spatial dims)
        spatial = math.prod(rhs.shape[d] for d in rhs_spec[2:])
        in_features = rhs.shape[rhs_spec[1]]
        return 2 * _size(eqn.outvars[0].aval) * int(spatial) * int(in_features)
    if name in ZERO_COST:
        return 0
    if name in REDUCTIONS or name.startswith("reduce_"):
        return sum(_size(v.aval) for v in eqn.invars if hasattr(v, "aval"))
    if name in ("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp", "sort"):
        return sum(_size(v.aval) for v in eqn.outvars)
    return sum(_size(v.aval) for v in eqn.outvars)


def count_flops(jaxpr: Any, scopes: Iterable[str] | None = None) -> FlopCount:
    """Counts FLOPs of a (closed) jaxpr, loop-aware, attributed to module scopes.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> j = jax.make_jaxpr(lambda a, b: a @ b)(jnp.ones((4, 3)), jnp.ones((3, 5)))
        >>> count_flops(j).total  # 2 * M * N * K
        120
    """
    known = None if scopes is None else frozenset(scopes)
    acc = FlopCount()
    _visit(jaxpr, 1, (), known, acc)
    acc.total = sum(acc.by_scope.values())
    return acc


def _add(acc: FlopCount, scope: str, prim: str, flops: int) -> None:
    acc.by_scope[scope] = acc.by_scope.get(scope, 0) + flops
    acc.by_primitive[prim] = acc.by_primitive.get(prim, 0) + flops


def _visit(j: Any, mult: int, prefix: tuple, known: frozenset[str] | None, acc: FlopCount) -> None:
    for eqn in open_jaxpr(j).eqns:
        # Inner jaxprs carry name stacks relative to their enclosing equation.
        stack = prefix + tuple(eqn.source_info.name_stack.stack)
        name = eqn.primitive.name
        if name == "cond":
            branches = []
            for branch in eqn.params["branches"]:
                sub = FlopCount()
                _visit(branch, mult, stack, known, sub)
                branches.append(sub)
            best = max(branches, key=lambda b: sum(b.by_scope.values()))
            for scope, f in best.by_scope.items():
                acc.by_scope[scope] = acc.by_scope.get(scope, 0) + f
            for prim, f in best.by_primitive.items():
                acc.by_primitive[prim] = acc.by_primitive.get(prim, 0) + f
            acc.dynamic_loops.extend(best.dynamic_loops)
            continue
        inner = inner_jaxprs(eqn)
        if inner:
            if name == "while":
                acc.dynamic_loops.append(module_of(stack, known))
            m = mult * trip_count(eqn)
            for sub in inner:
                _visit(sub, m, stack, known, acc)
            continue
        f = eqn_flops(eqn) * mult
        if f:
            _add(acc, module_of(stack, known), name, f)


def xla_loop_reason(ours: int, xla: int | None, scans: list[int]) -> str | None:
    """Why our FLOPs exceed XLA's when the program has loops, or None when loops do not explain it.

    XLA's ``cost_analysis`` counts a loop body once; ours multiplies it by the trip count.

    Example:
        >>> xla_loop_reason(1200, 100, [12])
        "XLA counts a loop body once; ours multiplies it by the trip count (1 loop of 12 steps), hence ours = 12.0x XLA's"
        >>> xla_loop_reason(100, 100, [12]) is None
        True
    """
    scans = [n for n in scans if n > 1]
    if not scans or xla is None or ours <= xla * 1.005:
        return None
    trips = Counter(scans)
    shown = ", ".join(f"{n} loops of {t} steps" if n > 1 else f"1 loop of {t} steps" for t, n in sorted(trips.items()))
    return f"XLA counts a loop body once; ours multiplies it by the trip count ({shown}), hence ours = {ours / max(xla, 1):.1f}x XLA's"
