"""Reading facts out of optimized HLO text: collectives with their sizes, and while loops with trip counts.

The text is what ``compiled.as_text()`` returns: one instruction per line,
``%name = SHAPE opcode(operands), attr=..., metadata={op_name="..."}``. Sizes are per device, since a
compiled SPMD program is the program one device runs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")

# bits per element of each HLO primitive type
_BITS = {
    "pred": 8,
    "s2": 2,
    "u2": 2,
    "s4": 4,
    "u4": 4,
    "s8": 8,
    "u8": 8,
    "s16": 16,
    "u16": 16,
    "s32": 32,
    "u32": 32,
    "s64": 64,
    "u64": 64,
    "f16": 16,
    "bf16": 16,
    "f32": 32,
    "f64": 64,
    "c64": 64,
    "c128": 128,
    "f8e4m3fn": 8,
    "f8e5m2": 8,
    "f8e4m3": 8,
    "f8e4m3fnuz": 8,
    "f8e5m2fnuz": 8,
    "f8e4m3b11fnuz": 8,
    "f8e3m4": 8,
    "f8e8m0fnu": 8,
    "f4e2m1fn": 4,
    "token": 0,
}
_ARRAY = re.compile(r"\b([a-z][a-z0-9]*)\[([0-9,]*)\]")
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*?)\s+([a-z][\w\-]*)\((.*)$")


def shape_bytes(shape: str) -> int:
    """Bytes of an HLO shape string; tuples sum their elements.

    Example:
        >>> shape_bytes('f32[4,32]{1,0}'), shape_bytes('(bf16[8], s32[])')
        (512, 20)
    """
    total = 0
    for dtype, dims in _ARRAY.findall(shape):
        if dtype not in _BITS:
            continue
        n = math.prod(int(d) for d in dims.split(",") if d) if dims else 1
        total += (n * _BITS[dtype] + 7) // 8
    return total


def _largest_element(shape: str) -> int:
    sizes = [shape_bytes(f"{t}[{d}]") for t, d in _ARRAY.findall(shape)]
    return max(sizes, default=0)


@dataclass
class Collective:
    """One collective instruction of the compiled program (per device)."""

    kind: str  # one of COLLECTIVES
    bytes: int  # size of its result on one device
    shape: str
    op_name: str  # the jax op name from metadata ('' if none), e.g. 'jit(step)/transpose(jvp(net/l1))/...'
    computation: str  # the HLO computation holding it
    repeats: int = 1  # runs per program execution: the trip counts of the loops around it


@dataclass
class Loop:
    """A while loop of the compiled program."""

    name: str
    trip_count: int | None  # XLA's known trip count, None if it did not derive one
    op_name: str
    body: str


def parse_instructions(text: str):
    """Yields ``(computation, name, shape, opcode, rest_of_line)`` for each HLO instruction."""
    computation = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith("{") and "=" not in stripped.split("(")[0]:
            head = stripped.split()
            computation = head[1] if head[0] == "ENTRY" else head[0]
            computation = computation.lstrip("%")
            continue
        m = _INSTR.match(line)
        if m:
            yield computation, m.group(1), m.group(2), m.group(3), m.group(4)


def _op_name(rest: str) -> str:
    m = re.search(r'op_name="([^"]*)"', rest)
    return m.group(1) if m else ""


def find_loops(text: str) -> list[Loop]:
    """Every ``while`` instruction with XLA's known trip count (from its backend_config) when present."""
    loops = []
    for _, name, _, opcode, rest in parse_instructions(text):
        if opcode != "while":
            continue
        trip = re.search(r'"known_trip_count":\{"n":"(\d+)"\}', rest)
        body = re.search(r"body=%?([\w.\-]+)", rest)
        loops.append(Loop(name, int(trip.group(1)) if trip else None, _op_name(rest), body.group(1) if body else ""))
    return loops


def computation_repeats(text: str) -> dict[str, int]:
    """How many times each computation runs per program execution: the product of the known trip counts of
    the while loops around it (a loop without a known trip count counts as 1)."""
    calls: dict[str, list[tuple[str, int]]] = {}
    entry = ""
    for line in text.splitlines():
        if line.startswith("ENTRY"):
            entry = line.split()[1].lstrip("%")
    for comp, _, _, opcode, rest in parse_instructions(text):
        edges = calls.setdefault(comp, [])
        trip = 1
        if opcode == "while":
            m = re.search(r'"known_trip_count":\{"n":"(\d+)"\}', rest)
            trip = int(m.group(1)) if m else 1
        for key, name in re.findall(r"\b(calls|to_apply|body|condition)=%?([\w.\-]+)", rest):
            edges.append((name, trip if key in ("body", "condition") else 1))
        for group in re.findall(r"(?:calls|branch_computations)=\{([^}]*)\}", rest):
            edges.extend((c.strip().lstrip("%"), 1) for c in group.split(","))
    repeats = {entry: 1}
    todo = [entry]
    while todo:
        comp = todo.pop()
        for callee, trip in calls.get(comp, ()):
            n = repeats[comp] * trip
            if n > repeats.get(callee, 0):
                repeats[callee] = n
                todo.append(callee)
    return repeats


def find_collectives(text: str) -> list[Collective]:
    """Collectives in optimized HLO; async ``*-start`` pairs count once (their ``*-done`` is skipped).

    For a ``-start`` op, whose shape is a tuple holding operand and result buffers, the size is the largest
    element (the gathered/reduced buffer).
    """
    repeats = computation_repeats(text)
    found = []
    for comp, _, shape, opcode, rest in parse_instructions(text):
        kind = opcode[: -len("-start")] if opcode.endswith("-start") else opcode
        if kind not in COLLECTIVES:
            continue
        size = _largest_element(shape) if opcode.endswith("-start") else shape_bytes(shape)
        found.append(Collective(kind, size, shape.strip(), _op_name(rest), comp, repeats.get(comp, 1)))
    return found
