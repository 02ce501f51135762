"""Differences between two checkpoints: added/removed paths, shape/dtype changes, value deltas.

Values are compared one tensor at a time (never both checkpoints in memory),
in float64 so the deltas do not depend on the stored precision.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from blox_inspect.load.checkpoints import CheckpointReader

STATUSES = ("added", "removed", "shape", "dtype", "changed", "unchanged")


@dataclass
class ParamDiff:
    """One path's difference. ``status`` is one of :data:`STATUSES`.

    ``max_abs`` is max |b - a| over positions where both are finite;
    ``rel_norm`` is ``||b - a|| / ||a||`` (inf when ``a`` is all zeros and ``b`` is not).
    Both are None when values cannot be compared (added, removed, shape changed).
    ``nan_changed`` counts positions where exactly one side is NaN/inf or they differ in kind.
    """

    path: str
    status: str
    shape_a: list[int] | None = None
    shape_b: list[int] | None = None
    dtype_a: str | None = None
    dtype_b: str | None = None
    max_abs: float | None = None
    rel_norm: float | None = None
    nan_changed: int = 0


@dataclass
class CheckpointDiff:
    a: str
    b: str
    params: list[ParamDiff] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for p in self.params:
            out[p.status] += 1
        return out


def compare_values(a: np.ndarray, b: np.ndarray) -> tuple[float, float, int]:
    """``(max_abs, rel_norm, nan_changed)`` for two same-shape arrays.

    Example:
        >>> import numpy as np
        >>> compare_values(np.array([3.0, 4.0]), np.array([3.0, 5.0]))
        (1.0, 0.2, 0)
    """
    x = np.asarray(a).astype(np.float64).ravel()
    y = np.asarray(b).astype(np.float64).ravel()
    fx, fy = np.isfinite(x), np.isfinite(y)
    both = fx & fy
    # Non-finite values match only when they are the same kind (nan vs nan, +inf vs +inf).
    same_special = (~fx & ~fy) & ((np.isnan(x) & np.isnan(y)) | (x == y))
    nan_changed = int(np.count_nonzero(~both & ~same_special))
    d = y[both] - x[both]
    max_abs = float(np.abs(d).max()) if d.size else 0.0
    dn = float(np.sqrt(np.dot(d, d)))
    an = float(np.sqrt(np.dot(x[both], x[both])))
    rel = dn / an if an > 0 else (0.0 if dn == 0 else float("inf"))
    return max_abs, rel, nan_changed


def diff_params(
    shapes_a: dict[str, tuple[list[int], str]],
    shapes_b: dict[str, tuple[list[int], str]],
    read_a: Callable[[str], np.ndarray],
    read_b: Callable[[str], np.ndarray],
) -> list[ParamDiff]:
    """Diffs two sets of params given as ``path -> (shape, dtype)`` plus lazy readers.

    Paths come out in ``a``'s order, then the paths only ``b`` has.

    Example:
        >>> import numpy as np
        >>> A = {'w': np.array([1.0, 2.0]), 'old': np.zeros(1)}
        >>> B = {'w': np.array([1.0, 2.5]), 'new': np.zeros(1)}
        >>> spec = lambda d: {k: (list(v.shape), str(v.dtype)) for k, v in d.items()}
        >>> [(p.path, p.status, p.max_abs) for p in diff_params(spec(A), spec(B), A.get, B.get)]
        [('w', 'changed', 0.5), ('old', 'removed', None), ('new', 'added', None)]
    """
    out = []
    for path, (sa, da) in shapes_a.items():
        if path not in shapes_b:
            out.append(ParamDiff(path, "removed", shape_a=list(sa), dtype_a=da))
            continue
        sb, db = shapes_b[path]
        pd = ParamDiff(path, "unchanged", list(sa), list(sb), da, db)
        if list(sa) != list(sb):
            pd.status = "shape"
        else:
            pd.max_abs, pd.rel_norm, pd.nan_changed = compare_values(read_a(path), read_b(path))
            if da != db:
                pd.status = "dtype"
            elif pd.max_abs > 0 or pd.nan_changed:
                pd.status = "changed"
        out.append(pd)
    for path, (sb, db) in shapes_b.items():
        if path not in shapes_a:
            out.append(ParamDiff(path, "added", shape_b=list(sb), dtype_b=db))
    return out


def diff_checkpoints(
    a: str | os.PathLike | CheckpointReader, b: str | os.PathLike | CheckpointReader
) -> CheckpointDiff:
    """Diffs two safetensors checkpoints path by path, reading one tensor pair at a time.

    Example:
        >>> import jax.numpy as jnp, blox as bx, tempfile, os
        >>> d = tempfile.mkdtemp(); fa, fb = os.path.join(d, 'a.safetensors'), os.path.join(d, 'b.safetensors')
        >>> bx.save(fa, bx.Params({('net', 'w'): bx.Param(jnp.ones(2))}))
        >>> bx.save(fb, bx.Params({('net', 'w'): bx.Param(jnp.array([1.0, 3.0]))}))
        >>> [(p.path, p.status, p.max_abs, p.rel_norm) for p in diff_checkpoints(fa, fb).params]
        [('net/w', 'changed', 2.0, 1.414...)]
    """
    ra = a if isinstance(a, CheckpointReader) else CheckpointReader(a)
    rb = b if isinstance(b, CheckpointReader) else CheckpointReader(b)
    spec = lambda r: {k: (list(t.shape), t.dtype) for k, t in r.tensors.items()}
    return CheckpointDiff(ra.file, rb.file, diff_params(spec(ra), spec(rb), ra.read, rb.read))


def within(p: ParamDiff, atol: float, rtol: float) -> bool:
    """Whether a value change is small enough to count as equal: no NaN/inf appeared and
    ``max_abs <= atol`` or ``rel_norm <= rtol``.

    Example:
        >>> within(ParamDiff('w', 'changed', max_abs=1e-7, rel_norm=1e-8), atol=1e-6, rtol=0.0)
        True
    """
    if p.nan_changed or p.max_abs is None:
        return False
    return p.max_abs <= atol or (p.rel_norm is not None and p.rel_norm <= rtol)
