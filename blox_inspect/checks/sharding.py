"""Sharding metadata against a mesh (``--mesh data=8,model=4``): pure metadata, no devices needed."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

import blox as bx
from blox_inspect.checks._context import CheckContext, nbytes
from blox_inspect.checks._registry import check
from blox_inspect.report.finding import Finding, code, finding

code("BX601", "error", "sharding", "sharded dimension not divisible by the mesh axes")
code("BX602", "warning", "sharding", "large param left replicated")
code("BX603", "error", "sharding", "sharding names an axis the mesh lacks")
code("BX604", "error", "sharding", "malformed sharding spec")
code("BX605", "info", "sharding", "no param carries sharding metadata")

DEFAULT_REPLICATED_BYTES = 1 << 20  # override with BLOX_CHECK_REPLICATED_BYTES


def _axes(entry) -> tuple[str, ...]:
    if entry is None:
        return ()
    if isinstance(entry, str):
        return (entry,)
    return tuple(entry)


@check("sharding")
def check_sharding(ctx: CheckContext) -> Iterable[Finding]:
    mesh = ctx.mesh
    annotated = 0
    used_axes: set[str] = set()
    replicated = []
    for path, param in ctx.params.items():
        key = bx.path_str(path)
        where = ctx.owner(key)
        shape = tuple(param.value.shape)
        spec = param.sharding
        if not spec:
            replicated.append((key, param))
            continue
        annotated += 1
        spec = tuple(spec)
        if len(spec) > len(shape):
            yield finding(
                "BX604",
                where,
                f"Param {key} has rank {len(shape)} {list(shape)} but its sharding spec {spec} has {len(spec)} entries.",
                "Give one sharding entry (a mesh axis name or None) per dimension.",
            )
            continue
        names = [a for e in spec for a in _axes(e)]
        repeated = sorted({a for a in names if names.count(a) > 1})
        if repeated:
            yield finding(
                "BX604",
                where,
                f"Param {key} uses mesh axis {', '.join(repeated)} for more than one dimension in {spec}.",
                "Use each mesh axis at most once per sharding spec.",
            )
        used_axes.update(names)
        if mesh is None:
            continue
        missing = [a for a in names if a not in mesh]
        if missing:
            yield finding(
                "BX603",
                where,
                f"Param {key} is sharded over {', '.join(missing)}, which the mesh {mesh} does not have.",
                "Rename the axis in the param's sharding metadata, or add it to the mesh.",
            )
            continue
        for dim, entry in enumerate(spec):
            parts = math.prod(mesh[a] for a in _axes(entry))
            if parts > 1 and shape[dim] % parts:
                yield finding(
                    "BX601",
                    where,
                    f"Param {key} dimension {dim} has size {shape[dim]}, not divisible by the {parts} shards of "
                    f"{entry!r}.",
                    f"Pad that dimension to a multiple of {parts}, or shard it over fewer devices.",
                )
    if mesh is None or math.prod(mesh.values()) <= 1:
        return
    limit = int(ctx.settings.get("BLOX_CHECK_REPLICATED_BYTES", DEFAULT_REPLICATED_BYTES))
    if not annotated:
        total = sum(nbytes(p.value) for _, p in ctx.params.items())
        if total < limit:
            return
        yield finding(
            "BX605",
            "",
            f"No param carries sharding metadata, so all {total / 2**20:.1f} MiB of params are replicated on each of "
            f"the {math.prod(mesh.values())} devices.",
            "Add metadata={'sharding': (...)} to large params if they should be split across the mesh.",
        )
        return
    sharded = [a for a in used_axes if mesh.get(a, 1) > 1]
    if not sharded:
        return
    for key, param in replicated:
        size = nbytes(param.value)
        if size >= limit:
            yield finding(
                "BX602",
                ctx.owner(key),
                f"Param {key} ({size / 2**20:.1f} MiB, shape {list(np.shape(param.value))}) has no sharding metadata, "
                f"so it is replicated across mesh axes {', '.join(sorted(sharded))} that the model shards other "
                "params over.",
                "Give it a sharding spec like its neighbours, e.g. metadata={'sharding': (None, 'model')}.",
            )
