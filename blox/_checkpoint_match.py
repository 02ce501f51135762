"""How a checkpoint's params line up with a model's: every missing, unexpected and mismatched path at once.

Each problem carries the nearest name on the other side (by ``difflib`` similarity of the
path strings), because the usual cause is a rename: ``blocks/0/attn`` against
``blocks/0/attention``.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from ._errors import CheckpointError
from ._paths import Path, path_str

SHOWN_PER_KIND = 20  # lines per kind of problem in the error message; the counts are always complete
_CANDIDATES = 2000  # difflib is quadratic in the names compared; past this, only same-leaf names are tried

MSG_HEAD = "{where}: does not match the model: {counts} ({n_ckpt} params in the checkpoint, {n_model} in the model)."
MSG_ADVICE = (
    "Build the model with the same graph names and sizes as the one that saved the checkpoint, "
    "or rename/convert the checkpoint's params to match."
)
KINDS = ("missing", "unexpected", "shape", "dtype")
_LABEL = {
    "missing": "missing in the checkpoint",
    "unexpected": "in the checkpoint, not in the model",
    "shape": "with another shape",
    "dtype": "with another dtype",
}


@dataclass(frozen=True)
class Mismatch:
    """One problem. ``checkpoint``/``model`` are ``dtype[shape]`` on each side (None where absent);
    ``nearest`` is the closest path on the other side, with ``nearest_spec`` its ``dtype[shape]``."""

    kind: str  # one of KINDS
    path: Path
    checkpoint: str | None
    model: str | None
    nearest: Path | None = None
    nearest_spec: str | None = None

    def describe(self) -> str:
        name = path_str(self.path)
        if self.kind == "missing":
            text = f"{name}: the model needs {self.model}, the checkpoint has no such param"
            hint = "the checkpoint has"
        elif self.kind == "unexpected":
            text = f"{name}: the checkpoint has {self.checkpoint}, the model has no such param"
            hint = "the model has"
        else:
            text = f"{name}: checkpoint has {self.checkpoint}, model needs {self.model}"
            hint = "a checkpoint param with that spec is"
        if self.nearest is not None:
            text += f" (nearest: {hint} {path_str(self.nearest)} {self.nearest_spec})"
        return text


@dataclass(frozen=True)
class MatchReport:
    """Every difference between a checkpoint's params and a model's; empty (falsy) when they match."""

    problems: tuple[Mismatch, ...]
    checkpoint_count: int
    model_count: int

    def __bool__(self) -> bool:
        return bool(self.problems)

    def of(self, kind: str) -> list[Mismatch]:
        return [p for p in self.problems if p.kind == kind]

    def counts(self) -> str:
        parts = [f"{len(self.of(k))} {_LABEL[k]}" for k in KINDS if self.of(k)]
        return ", ".join(parts) or "no differences"

    def message(self, where: str = "checkpoint") -> str:
        lines = [
            MSG_HEAD.format(where=where, counts=self.counts(), n_ckpt=self.checkpoint_count, n_model=self.model_count)
        ]
        for kind in KINDS:
            found = self.of(kind)
            lines += [f"  {kind}: {p.describe()}" for p in found[:SHOWN_PER_KIND]]
            if len(found) > SHOWN_PER_KIND:
                lines.append(f"  ... and {len(found) - SHOWN_PER_KIND} more {kind}")
        lines.append(MSG_ADVICE)
        return "\n".join(lines)


@functools.cache
def _key_dtype_name(impl: str) -> str:
    """JAX's dtype name for keys of an implementation (``threefry2x32`` -> ``key<fry>``)."""
    return str(jax.eval_shape(lambda: jax.random.key(0, impl=impl)).dtype)


def _specs(side: Any) -> dict[Path, tuple[tuple[int, ...], str]]:
    """path -> (shape, dtype name) of Params, a Mapping of path -> Param, or a CheckpointHeader."""
    tensors = getattr(side, "tensors", None)
    if tensors is not None and not isinstance(side, Mapping):
        return {t.path: (tuple(t.shape), _key_dtype_name(t.key_impl) if t.key_impl else t.dtype) for t in tensors}
    out = {}
    for path, param in side.items():
        value = getattr(param, "value", param)
        shape = tuple(getattr(value, "shape", np.shape(value)))
        dtype = getattr(value, "dtype", None)
        out[tuple(path)] = (shape, str(dtype if dtype is not None else np.asarray(value).dtype))
    return out


def _spec(s: tuple[tuple[int, ...], str]) -> str:
    return f"{s[1]}{list(s[0])}"


def _nearest(path: Path, pool: list[Path], strings: dict[Path, str]) -> Path | None:
    if not pool:
        return None
    if len(pool) > _CANDIDATES:
        same_leaf = [p for p in pool if p[-1:] == path[-1:]]
        pool = same_leaf[:_CANDIDATES] if same_leaf else pool[:_CANDIDATES]
    best = difflib.get_close_matches(strings[path], [strings[p] for p in pool], n=1, cutoff=0.5)
    if not best:
        return None
    return next(p for p in pool if strings[p] == best[0])


def match_report(checkpoint: Any, model: Any) -> MatchReport:
    """Compares a checkpoint (a :class:`CheckpointHeader` or Params) with a model's Params.

    The model's Params may be abstract (``jax.eval_shape`` of its init). Nearest names are
    worked out for the problems the message shows.

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx
        >>> ckpt = bx.Params({('net', 'dense', 'w'): bx.Param(jnp.ones((3, 4)))})
        >>> model = bx.Params({('net', 'linear', 'w'): bx.Param(jax.ShapeDtypeStruct((3, 4), jnp.float32))})
        >>> report = bx.match_report(ckpt, model)
        >>> [(p.kind, bx.path_str(p.path), bx.path_str(p.nearest)) for p in report.problems]
        [('missing', 'net/linear/w', 'net/dense/w'), ('unexpected', 'net/dense/w', 'net/linear/w')]
    """
    have, want = _specs(checkpoint), _specs(model)
    missing = [p for p in want if p not in have]
    unexpected = [p for p in have if p not in want]
    changed = [p for p in want if p in have and have[p] != want[p]]
    strings = {p: path_str(p) for p in (*missing, *unexpected, *changed)}
    for p in have:
        strings.setdefault(p, path_str(p))
    problems = []
    for p in missing[:SHOWN_PER_KIND]:
        near = _nearest(p, unexpected, strings)
        problems.append(Mismatch("missing", p, None, _spec(want[p]), near, near and _spec(have[near])))
    problems += [Mismatch("missing", p, None, _spec(want[p])) for p in missing[SHOWN_PER_KIND:]]
    for i, p in enumerate(unexpected):
        near = _nearest(p, missing, strings) if i < SHOWN_PER_KIND else None
        problems.append(Mismatch("unexpected", p, _spec(have[p]), None, near, near and _spec(want[near])))
    by_spec: dict[tuple, list[Path]] = {}
    if changed:
        for p, s in have.items():
            by_spec.setdefault(s, []).append(p)
    shown = {"shape": 0, "dtype": 0}
    for p in changed:
        kind = "shape" if have[p][0] != want[p][0] else "dtype"
        near = None
        if shown[kind] < SHOWN_PER_KIND:
            # Another checkpoint param that has exactly what the model needs here (a swapped name?).
            near = _nearest(p, [q for q in by_spec.get(want[p], []) if q != p], strings)
            shown[kind] += 1
        problems.append(Mismatch(kind, p, _spec(have[p]), _spec(want[p]), near, near and _spec(have[near])))
    order = {k: i for i, k in enumerate(KINDS)}
    problems.sort(key=lambda m: order[m.kind])
    return MatchReport(tuple(problems), len(have), len(want))


def check_matches(params: Any, like: Any, where: str = "checkpoint") -> None:
    """Raises one CheckpointError listing every difference unless ``params`` has exactly ``like``'s
    paths, shapes and dtypes. ``params`` may be Params or a :class:`CheckpointHeader`.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> p = bx.Params({('w',): bx.Param(jnp.ones(2))})
        >>> bx.check_matches(p, p)  # no error
    """
    report = match_report(params, like)
    if report:
        raise CheckpointError(report.message(where))
