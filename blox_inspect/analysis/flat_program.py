"""A flat, dependency-aware view of a closed jaxpr that every check shares.

Call-like equations (``jit``, ``remat``, ``custom_jvp_call``, ``shard_map``...) are inlined so a value keeps
one identity across call boundaries; ``scan``/``while``/``cond`` bodies are flattened too, with explicit
dataflow edges for their carries and outputs, and every op remembers the loops and cond branches around it.
Built once per jaxpr; the checks then only read it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from blox_inspect.analysis.jaxpr import call_jaxpr, inner_jaxprs, module_of, open_jaxpr
from blox_inspect.analysis.trace import TAG_NAME

# Ops that move or retype data without computing: followed when tracing a value back to its origin.
LAYOUT = frozenset(
    {
        "reshape",
        "transpose",
        "broadcast_in_dim",
        "squeeze",
        "expand_dims",
        "copy",
        "copy_p",
        "slice",
        "dynamic_slice",
        "rev",
        "convert_element_type",
        "sharding_constraint",
        "device_put",
        "pvary",
        "reshard",
        "mesh_cast",
        "optimization_barrier",
    }
)
# Ops with no derivative: dependency through them needs no gradient.
NON_DIFFERENTIABLE = frozenset(
    {
        "stop_gradient",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "and",
        "or",
        "not",
        "xor",
        "floor",
        "ceil",
        "round",
        "sign",
        "argmax",
        "argmin",
        "iota",
        "is_finite",
        "random_bits",
        "random_split",
        "random_fold_in",
        "random_seed",
        "random_wrap",
        "random_unwrap",
        "shift_left",
        "shift_right_logical",
        "shift_right_arithmetic",
        "population_count",
        "bitcast_convert_type",
    }
)
_STRUCTURED = frozenset({"scan", "while", "cond"})


def is_inexact(aval: Any) -> bool:
    dtype = getattr(aval, "dtype", None)
    try:
        # jnp, not np: bfloat16 and the float8 types are inexact only to JAX.
        return dtype is not None and bool(jnp.issubdtype(dtype, jnp.inexact))
    except TypeError:  # extended dtypes (PRNG keys)
        return False


def is_var(x: Any) -> bool:
    return isinstance(x, jcore.Var)


@dataclass(eq=False)
class Op:
    """One equation of the flattened program."""

    prim: str
    params: dict
    ins: list  # canonical Vars, or Literals
    outs: list  # canonical Vars
    stack: tuple  # full name stack (Scope and Transform items), outermost first
    scope: str  # innermost module scope ('' outside every module)
    ctx: tuple  # enclosing structures, outermost first: ('scan'|'while', id, length) or ('cond', id, branch)
    index: int = 0

    @property
    def in_backward(self) -> bool:
        """True for ops of the backward (transpose) pass, incl. rematerialised forward code."""
        return any(type(s).__name__ == "Transform" and getattr(s, "name", "") == "transpose" for s in self.stack)

    @property
    def loops(self) -> list[tuple]:
        return [c for c in self.ctx if c[0] in ("scan", "while")]


@dataclass(eq=False)
class FlatProgram:
    """The flattened program: ops in a valid execution order plus dataflow edges."""

    ops: list[Op] = field(default_factory=list)
    invars: list = field(default_factory=list)
    outvars: list = field(default_factory=list)  # canonical Var or Literal per jaxpr output
    consts: dict = field(default_factory=dict)  # const Var -> value (captured arrays)
    producer: dict = field(default_factory=dict)  # Var -> Op
    consumers: dict = field(default_factory=dict)  # Var -> [(Op, operand index)]
    # Var -> [(pred Var, differentiable)]: the values it is computed from.
    preds: dict = field(default_factory=dict)
    varying: dict = field(default_factory=dict)  # Var -> loop ids (fresh loop vars only)
    struct_ins: dict = field(default_factory=dict)  # outer result of scan/while/cond -> its operands
    scopes: frozenset = frozenset()

    # --- building -------------------------------------------------------
    @classmethod
    def build(cls, closed: Any, scopes: Iterable[str]) -> FlatProgram:
        prog = cls(scopes=frozenset(scopes))
        jaxpr = closed.jaxpr
        env: dict = {}
        for v, c in zip(jaxpr.constvars, closed.consts):
            prog.consts[v] = c
        prog.invars = list(jaxpr.invars)
        prog._flatten(jaxpr, env, (), ())
        prog.outvars = [prog._resolve(env, v) for v in jaxpr.outvars]
        for i, op in enumerate(prog.ops):
            op.index = i
        return prog

    def _resolve(self, env: dict, v: Any) -> Any:
        if isinstance(v, jcore.Literal):
            return v
        return env.get(v, v)

    def _edge(self, dst: Any, src: Any, diff: bool = True) -> None:
        if is_var(src) and is_var(dst) and src is not dst:
            self.preds.setdefault(dst, []).append((src, diff))

    def _sub(self, env: dict, closed: Any, ins: list) -> tuple:
        """Binds an inner (closed) jaxpr's invars to ``ins``; returns (jaxpr, inner env)."""
        inner = closed.jaxpr if isinstance(closed, jcore.ClosedJaxpr) else closed
        sub_env: dict = {}
        if isinstance(closed, jcore.ClosedJaxpr):
            for v, c in zip(inner.constvars, closed.consts):
                self.consts[v] = c
        for v, x in zip(inner.invars, ins):
            if x is not None:
                sub_env[v] = x
        return inner, sub_env

    def _flatten(self, jaxpr: Any, env: dict, prefix: tuple, ctx: tuple) -> None:
        for eqn in jaxpr.eqns:
            stack = prefix + tuple(eqn.source_info.name_stack.stack)
            ins = [self._resolve(env, v) for v in eqn.invars]
            outs = [v for v in eqn.outvars if not isinstance(v, jcore.DropVar)]
            name = eqn.primitive.name
            if name == TAG_NAME:  # blox's identity tag (see analysis.trace): the value passes through
                env[eqn.outvars[0]] = ins[0]
                continue
            if name in _STRUCTURED:
                self._structured(eqn, name, ins, env, stack, ctx)
                continue
            call = call_jaxpr(eqn)
            if call is not None:
                inner, sub_env = self._sub(env, call, ins)
                self._flatten(inner, sub_env, stack, ctx)
                for o, io in zip(eqn.outvars, inner.outvars):
                    if not isinstance(o, jcore.DropVar):
                        env[o] = self._resolve(sub_env, io)
                continue
            op = Op(name, dict(eqn.params), ins, outs, stack, module_of(stack, self.scopes), ctx)
            self._add(op)
            if inner_jaxprs(eqn):  # an unknown higher-order op: its inside still gets checked
                for sub in inner_jaxprs(eqn):
                    inner, sub_env = self._sub(env, sub, [None] * len(open_jaxpr(sub).invars))
                    self._flatten(inner, sub_env, stack, ctx)

    def _add(self, op: Op) -> None:
        self.ops.append(op)
        diff = op.prim not in NON_DIFFERENTIABLE
        for i, x in enumerate(op.ins):
            if is_var(x):
                self.consumers.setdefault(x, []).append((op, i))
        for o in op.outs:
            self.producer[o] = op
            out_diff = diff and is_inexact(o.aval)
            for i, x in enumerate(op.ins):
                # select_n's predicate and integer operands (indices) carry no gradient.
                d = out_diff and is_inexact(getattr(x, "aval", None)) and not (op.prim == "select_n" and i == 0)
                self._edge(o, x, d)

    def _structured(self, eqn: Any, name: str, ins: list, env: dict, stack: tuple, ctx: tuple) -> None:
        p = eqn.params
        outs = list(eqn.outvars)
        for o in outs:
            env[o] = o
            self.struct_ins[o] = [x for x in ins if is_var(x)]
        loop_id = id(eqn)
        if name == "scan":
            nc, ncarry = p["num_consts"], p["num_carry"]
            body = p["jaxpr"]
            inner = open_jaxpr(body)
            sub_ctx = ctx + (("scan", loop_id, int(p["length"])),)
            sub_env: dict = {}
            if isinstance(body, jcore.ClosedJaxpr):
                for v, c in zip(inner.constvars, body.consts):
                    self.consts[v] = c
            for i, v in enumerate(inner.invars):
                if i < nc:
                    sub_env[v] = ins[i]
                else:
                    self.varying[v] = {loop_id}
                    self._edge(v, ins[i])
            self._flatten(inner, sub_env, stack, sub_ctx)
            body_outs = [self._resolve(sub_env, v) for v in inner.outvars]
            for i, bo in enumerate(body_outs):
                if i < ncarry:
                    self._edge(inner.invars[nc + i], bo)
                self._edge(outs[i], bo)
            return
        if name == "while":
            cnc, bnc = p["cond_nconsts"], p["body_nconsts"]
            cond, body = p["cond_jaxpr"], p["body_jaxpr"]
            ci, bi = open_jaxpr(cond), open_jaxpr(body)
            sub_ctx = ctx + (("while", loop_id, None),)
            carry_in = ins[cnc + bnc :]
            body_env: dict = {}
            for v, x in zip(bi.invars[:bnc], ins[cnc : cnc + bnc]):
                body_env[v] = x
            for v, x in zip(bi.invars[bnc:], carry_in):
                self.varying[v] = {loop_id}
                self._edge(v, x)
            cond_env: dict = {}
            for v, x in zip(ci.invars[:cnc], ins[:cnc]):
                cond_env[v] = x
            for v, bv in zip(ci.invars[cnc:], bi.invars[bnc:]):
                cond_env[v] = bv
            for closed, inner in ((cond, ci), (body, bi)):
                if isinstance(closed, jcore.ClosedJaxpr):
                    for v, c in zip(inner.constvars, closed.consts):
                        self.consts[v] = c
            self._flatten(ci, cond_env, stack, sub_ctx)
            self._flatten(bi, body_env, stack, sub_ctx)
            pred = self._resolve(cond_env, ci.outvars[0])
            for i, bo in enumerate(self._resolve(body_env, v) for v in bi.outvars):
                self._edge(bi.invars[bnc + i], bo)
                self._edge(outs[i], bo)
                self._edge(outs[i], pred, False)
            return
        # cond: index, then operands shared by every branch.
        index, operands = ins[0], ins[1:]
        for b, branch in enumerate(p["branches"]):
            inner, sub_env = self._sub(env, branch, operands)
            self._flatten(inner, sub_env, stack, ctx + (("cond", loop_id, b),))
            for o, bo in zip(outs, inner.outvars):
                self._edge(o, self._resolve(sub_env, bo))
        for o in outs:
            self._edge(o, index, False)

    # --- queries ----------------------------------------------------------
    def reach(self, targets: Iterable[Any], differentiable: bool = False) -> set:
        """Every Var that ``targets`` depend on (themselves included).

        With ``differentiable=True`` only paths a gradient can travel count
        (no stop_gradient, comparison, integer or random op on the way).
        """
        seen = {t for t in targets if is_var(t)}
        todo = deque(seen)
        while todo:
            v = todo.popleft()
            for src, diff in self.preds.get(v, ()):
                if (diff or not differentiable) and src not in seen:
                    seen.add(src)
                    todo.append(src)
        return seen

    def descendants(self, sources: Iterable[Any]) -> set:
        """Every Var computed (transitively) from ``sources``."""
        succ = self._successors()
        seen = {s for s in sources if is_var(s)}
        todo = deque(seen)
        while todo:
            v = todo.popleft()
            for dst in succ.get(v, ()):
                if dst not in seen:
                    seen.add(dst)
                    todo.append(dst)
        return seen

    def _successors(self) -> dict:
        succ = getattr(self, "_succ", None)
        if succ is None:
            succ = {}
            for dst, srcs in self.preds.items():
                for src, _ in srcs:
                    succ.setdefault(src, []).append(dst)
            self._succ = succ
        return succ

    def origin(self, x: Any, through: frozenset = LAYOUT) -> tuple[Any, list[Op]]:
        """Follows ``x`` back through ``through`` ops; returns (origin value, the ops passed)."""
        passed = []
        while is_var(x):
            op = self.producer.get(x)
            if op is None or op.prim not in through or not op.ins:
                break
            passed.append(op)
            x = op.ins[0]
        return x, passed

    def loop_variance(self) -> dict:
        """Var -> ids of the loops in whose iterations it takes a new value."""
        memo: dict = {}

        def get(v: Any) -> frozenset:
            if not is_var(v):
                return frozenset()
            if v in memo:
                return memo[v]
            if v in self.varying:
                init = self.preds.get(v, [])
                r = frozenset(self.varying[v]) | (get(init[0][0]) if init else frozenset())
            elif v in self.struct_ins:
                r = frozenset().union(*(get(x) for x in self.struct_ins[v]))
            else:
                r = frozenset()
            memo[v] = r
            return r

        for op in self.ops:
            r = frozenset().union(*(get(x) for x in op.ins))
            for o in op.outs:
                memo[o] = r
        return memo

    def all_vars(self) -> Iterable[Any]:
        yield from self.invars
        yield from self.consts
        for op in self.ops:
            yield from op.outs


def literal_value(x: Any) -> Any:
    """The numpy value of a Literal or a captured const scalar, else None."""
    if isinstance(x, jcore.Literal):
        try:
            return np.asarray(x.val)
        except Exception:  # noqa: BLE001 - extended dtypes
            return None
    return None
