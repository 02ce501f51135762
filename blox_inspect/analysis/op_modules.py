"""Which module each HLO op of a compiled program belongs to, read from the ops' ``op_name`` metadata.

blox runs every module call in a ``jax.named_scope``, so each op JAX emits carries its module's path in
``metadata={op_name="jit(step)/transpose(jvp(net))/mlp/l1/dot_general"}``, and XLA keeps that metadata
through fusion. Profiler events name the HLO op they ran (``hlo_op``), never the module; this file joins the
two. Rules (also in docs/inspect.md, "Profiling"):

- An op's module is the innermost module its ``op_name`` spells (see :func:`module_of_op_name`).
- A fusion takes the modules of the ops inside it. When they belong to several modules, the fusion's time is
  split between them in proportion to their ops' FLOPs (a matmul 2·M·N·K, an elementwise op one per
  element, data movement zero); a fusion of data movement only is split by op count.
- An op with no module in its metadata (loop counters, copies XLA adds) takes the module of the ops that use
  its result, when they all belong to one (the copies that set up a loop's state go to the loop's module),
  else the module of the op that runs its computation: the ops of a ``lax.scan``'s body go to the module
  that called the scan.
- Whatever is left is outside every module (``''``): in a train step, the loss and the optimizer update.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

from blox_inspect.analysis.hlo_parse import _ARRAY, computation_repeats, parse_instructions, shape_bytes
from blox_inspect.analysis.programs import op_path

# Ops that move or relabel data: no FLOPs, and never a fusion's reason to exist.
DATA_OPCODES = frozenset(
    {
        "parameter", "constant", "bitcast", "reshape", "transpose", "broadcast", "copy", "copy-start",
        "copy-done", "slice", "dynamic-slice", "dynamic-update-slice", "concatenate", "pad", "gather",
        "tuple", "get-tuple-element", "iota", "convert", "bitcast-convert", "reverse", "after-all",
        "partition-id", "replica-id", "opt-barrier", "domain",
    }
)  # fmt: skip
# Ops whose work is their called computations' ops: they read and write no bytes of their own.
CONTROL_OPCODES = frozenset(
    {"while", "conditional", "call", "tuple", "get-tuple-element", "parameter", "constant", "bitcast", "after-all"}
)
_OPERANDS = re.compile(r"%([\w.\-]+)")
_DIMS = re.compile(r"lhs_contracting_dims=\{([0-9,]*)\}")
_LABELS = re.compile(r"dim_labels=[^_]*_([^-]*)->")


@dataclass
class HloOp:
    """One instruction of an executable computation (entry, loop bodies, branches): what events name."""

    name: str
    opcode: str
    computation: str
    shares: dict[str, float]  # module path ('' outside) -> share of this op's time; sums to 1
    bytes: int  # operand + result bytes of one execution
    repeats: int  # executions per program run (the known trip counts of the loops around it)


@dataclass
class _Instr:
    computation: str
    name: str
    shape: str
    opcode: str
    rest: str

    @property
    def operands(self) -> list[str]:
        return _OPERANDS.findall(self.rest.split(")", 1)[0])

    @property
    def op_name(self) -> str:
        m = re.search(r'op_name="((?:[^"\\]|\\.)*)"', self.rest)
        return m.group(1) if m else ""


def module_of_op_name(op_name: str, modules: frozenset[str]) -> str:
    """The innermost module an HLO ``op_name`` names (``''`` when it names none).

    Scopes nest like name stacks (see :func:`blox_inspect.analysis.jaxpr.module_chain`): a scope extends the
    current module's path, or restarts from a full path. A scope may hold a ``/`` itself (``h/0``), so the
    longest run of path segments that names a module wins.

    Example:
        >>> mods = frozenset({'gpt2', 'gpt2/h/0', 'gpt2/h/0/attn'})
        >>> module_of_op_name('jit(step)/transpose(jvp(gpt2))/h/0/attn/dot_general', mods)
        'gpt2/h/0/attn'
        >>> module_of_op_name('jit(step)/adam/mul', mods)
        ''
    """
    segments = op_path(op_name).split("/")
    current, i, n = "", 0, len(segments)
    while i < n:
        for j in range(n, i, -1):
            part = "/".join(segments[i:j])
            nested = f"{current}/{part}" if current else part
            if nested in modules:
                current, i = nested, j
                break
            if part in modules:
                current, i = part, j
                break
        else:
            i += 1
    return current


def _elements(shape: str) -> int:
    return sum(math.prod(int(d) for d in dims.split(",") if d) for _, dims in _ARRAY.findall(shape))


def op_flops(op: _Instr, shapes: dict[tuple[str, str], str]) -> int:
    """FLOPs of one HLO instruction, by the same rules as our jaxpr count (2·M·N·K for a matmul)."""
    code = op.opcode
    if code in DATA_OPCODES or code in CONTROL_OPCODES:
        return 0
    out = _elements(op.shape)
    operands = op.operands
    if code == "dot" and operands:
        lhs = _ARRAY.findall(shapes.get((op.computation, operands[0]), ""))
        dims = _DIMS.search(op.rest)
        if lhs and dims:
            sizes = [int(d) for d in lhs[0][1].split(",") if d]
            k = math.prod(sizes[int(d)] for d in dims.group(1).split(",") if d)
            return 2 * out * k
    if code == "convolution" and len(operands) > 1:
        rhs = _ARRAY.findall(shapes.get((op.computation, operands[1]), ""))
        labels = _LABELS.search(op.rest)
        if rhs and labels and "o" in labels.group(1):
            sizes = [int(d) for d in rhs[0][1].split(",") if d]
            out_features = sizes[labels.group(1).index("o")]
            return 2 * out * math.prod(sizes) // max(out_features, 1)
    if code in ("reduce", "reduce-window") and operands:
        return _elements(shapes.get((op.computation, operands[0]), "")) or out
    return out


def hlo_module_name(text: str) -> str:
    """The ``HloModule`` name of compiled HLO text: what profiler events carry as ``hlo_module``."""
    m = re.match(r"\s*HloModule\s+([^\s,]+)", text)
    return m.group(1) if m else ""


def hlo_ops(text: str, modules: frozenset[str] | set[str]) -> dict[str, HloOp]:
    """Every op of the executable computations of compiled HLO ``text``, with its modules' shares.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> def f(x):
        ...     with jax.named_scope('net'):
        ...         return jnp.tanh(x @ x)
        >>> text = jax.jit(f).lower(jnp.ones((8, 8))).compile().as_text()
        >>> ops = hlo_ops(text, {'net'})
        >>> sorted({m for op in ops.values() if op.opcode != 'parameter' for m in op.shares})
        ['net']
    """
    modules = frozenset(modules)
    instrs: dict[str, list[_Instr]] = defaultdict(list)
    shapes: dict[tuple[str, str], str] = {}
    for comp, name, shape, opcode, rest in parse_instructions(text):
        ins = _Instr(comp, name, shape, opcode, rest)
        instrs[comp].append(ins)
        shapes[(comp, name)] = shape
    fused: set[str] = set()  # computations run inside one op (fusions, reducers): never their own events
    caller: dict[str, _Instr] = {}  # loop bodies, branches, called computations -> the op that runs them
    for comp_ops in instrs.values():
        for ins in comp_ops:
            for callee in re.findall(r"\b(?:calls|to_apply|body|condition)=%?([\w.\-]+)", ins.rest):
                if ins.opcode in ("while", "call", "conditional"):
                    caller.setdefault(callee, ins)
                else:
                    fused.add(callee)
            for group in re.findall(r"branch_computations=\{([^}]*)\}", ins.rest):
                for callee in group.split(","):
                    caller.setdefault(callee.strip().lstrip("%"), ins)
    repeats = computation_repeats(text)
    named: dict[str, str] = {}

    def module(ins: _Instr) -> str | None:
        op_name = ins.op_name
        if not op_name:
            return None
        if op_name not in named:
            named[op_name] = module_of_op_name(op_name, modules)
        return named[op_name] or None

    users: dict[tuple[str, str], list[_Instr]] = defaultdict(list)
    for comp, comp_ops in instrs.items():
        for ins in comp_ops:
            for operand in ins.operands:
                users[(comp, operand)].append(ins)

    def used_by(ins: _Instr, depth: int = 4) -> set[str]:
        """Modules of the ops that use ``ins``'s result, looking through ops without metadata (tuples, copies)."""
        found: set[str] = set()
        for user in users.get((ins.computation, ins.name), ()):
            m = module(user)
            if m is not None:
                found.add(m)
            elif depth:
                found |= used_by(user, depth - 1)
        return found

    inherited: dict[str, str] = {}

    def enclosing(comp: str) -> str:
        """The module of the op that runs computation ``comp`` ('' at the top)."""
        if comp not in inherited:
            inherited[comp] = ""  # guards against a cycle in malformed text
            up = caller.get(comp)
            inherited[comp] = "" if up is None else (module(up) or enclosing(up.computation))
        return inherited[comp]

    def inside(comp: str, seen: set[str]) -> list[_Instr]:
        """The ops of a fused computation, nested fusions opened (reducers' scalar ops left out)."""
        if comp in seen:
            return []
        seen.add(comp)
        found = []
        for ins in instrs.get(comp, ()):
            sub = re.search(r"\bcalls=%?([\w.\-]+)", ins.rest) if ins.opcode == "fusion" else None
            found.extend(inside(sub.group(1), seen) if sub else [ins])
        return found

    out: dict[str, HloOp] = {}
    for comp, comp_ops in instrs.items():
        if comp in fused:
            continue
        for ins in comp_ops:
            shares: dict[str, float] = {}
            sub = re.search(r"\bcalls=%?([\w.\-]+)", ins.rest) if ins.opcode == "fusion" else None
            if sub:
                parts = [(module(op), op) for op in inside(sub.group(1), set()) if op.opcode != "parameter"]
                parts = [(m, op) for m, op in parts if m is not None]
                weights: dict[str, float] = defaultdict(float)
                for m, op in parts:
                    weights[m] += op_flops(op, shapes)
                if not sum(weights.values()):  # data movement only: by op count
                    for m, _ in parts:
                        weights[m] += 1.0
                total = sum(weights.values())
                shares = {m: w / total for m, w in weights.items() if w} if total else {}
            if not shares:
                m = module(ins)
                if m is None:
                    near = used_by(ins)
                    m = near.pop() if len(near) == 1 else enclosing(comp)
                shares = {m: 1.0}
            nbytes = 0
            if ins.opcode not in CONTROL_OPCODES:
                nbytes = shape_bytes(ins.shape) + sum(shape_bytes(shapes.get((comp, o), "")) for o in ins.operands)
            out[ins.name] = HloOp(ins.name, ins.opcode, comp, shares, nbytes, repeats.get(comp, 1))
    return out
