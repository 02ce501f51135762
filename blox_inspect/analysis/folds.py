"""Which blocks fold: runs of identical, consecutive, numbered sibling modules, drawn once and marked ×N.

Also the module-tree index (parents, children, ancestors, block signatures) the diagram planner uses.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from blox._gc import gc_paused
from blox._paths import parse_path
from blox_inspect.report.model import Report

_NUMBERED = re.compile(r"(\D*?)_?(\d+)")


@dataclass
class Fold:
    """A run of identical consecutive sibling blocks, drawn once as its first member."""

    members: list[str]
    label: str  # e.g. "h/0..h/47"

    @property
    def rep(self) -> str:
        return self.members[0]


class ModuleIndex:
    """Parent/children links of the Report's modules, tolerant of a missing root."""

    def __init__(self, report: Report):
        self.report = report
        self.by_path = {m.path: m for m in report.modules}
        self.parent = {m.path: (m.parent if m.parent in self.by_path else None) for m in report.modules}
        self.children: dict[str | None, list[str]] = {}
        for m in report.modules:
            # Most modules are leaves (a checkpoint: one per tensor); skip building a filter for them.
            self.children[m.path] = [c for c in m.children if c in self.by_path] if m.children else []
        self.children[None] = [m.path for m in report.modules if self.parent[m.path] is None]
        self._add_stragglers()
        self._ancestors: dict[str, list[str]] = {}
        self._interned: dict[tuple, int] = {}  # a distinct block signature -> its number
        self.param_shapes: dict[str, list[tuple[str, tuple[int, ...], str]]] = {}
        for p in report.params:
            self.param_shapes.setdefault(p.module, []).append((p.name, tuple(p.shape), p.dtype))

    def _add_stragglers(self) -> None:
        """Children a module lists must also point back at it; trust the listing order, then add stragglers.

        Membership by set, so a parent of 10,000 children does not make this quadratic; a set only for the
        parents someone names (a checkpoint's 300,000 leaves need none).
        """
        listed_sets: dict[str, set[str]] = {}
        for path, parent in self.parent.items():
            if parent is None:
                continue
            listed = listed_sets.get(parent)
            if listed is None:
                listed = listed_sets[parent] = set(self.children[parent])
            if path not in listed:
                self.children[parent].append(path)
                listed.add(path)

    @functools.cached_property
    def by_tuple(self) -> dict[tuple[str, ...], str]:
        """Module path by path tuple; made on first use (only edges and the diagram ask)."""
        return {tuple(m.path_tuple): m.path for m in self.report.modules}

    def ancestors(self, path: str) -> list[str]:
        """``path`` and its module ancestors, outermost first (do not modify the list)."""
        chain = self._ancestors.get(path)
        if chain is None:
            parent = self.parent.get(path)
            chain = [*(self.ancestors(parent) if parent is not None else []), path]
            self._ancestors[path] = chain
        return chain

    def known(self, path: str) -> str | None:
        """``path``, or its nearest ancestor that is a module of the report (endpoints may name inner scopes)."""
        if path in self.by_path:
            return path
        parts = parse_path(path)
        for n in range(len(parts) - 1, 0, -1):
            hit = self.by_tuple.get(parts[:n])
            if hit is not None:
                return hit
        return None

    def relative(self, path: str, base: str | None) -> tuple[str, ...]:
        full = tuple(self.by_path[path].path_tuple)
        if base is None:
            return full
        return full[len(self.by_path[base].path_tuple) :]

    def signature(self, path: str, memo: dict[str, object]) -> object:
        """Type, config, own parameter shapes, calls and children's signatures: equal signatures mean identical
        blocks. Each distinct signature is interned as a small int (``memo`` holds the table), so a parent's
        signature holds its children's ints: linear in the modules, and comparisons cost one int each."""
        found = memo.get(path)
        if found is not None:
            return found
        m = self.by_path[path]
        kids = self.children.get(path)
        base = len(m.path_tuple)
        shapes = self.param_shapes.get(path)
        key = (
            m.type,
            # A config value may name the module itself (its graph node); that differs between copies.
            tuple(sorted((k, v.replace(m.path, "<self>")) for k, v in m.config.items())) if m.config else (),
            tuple(sorted(shapes)) if shapes else (),
            # Called alike: blocks that see different shapes (or are shared) are not one block ×N.
            tuple((c.method, tuple(map(str, c.inputs)), tuple(map(str, c.outputs))) for c in m.call_info)
            if m.call_info
            else (),
            m.shared,
            tuple((tuple(self.by_path[c].path_tuple[base:]), self.signature(c, memo)) for c in kids) if kids else (),
        )
        found = memo[path] = self._interned.setdefault(key, len(self._interned) + 1)
        return found


def find_folds(report: Report, index: ModuleIndex | None = None) -> dict[str, Fold]:
    """See :func:`_find_folds`; the cyclic GC is paused meanwhile (a tuple per module, none in a cycle)."""
    with gc_paused():
        return _find_folds(report, index)


def _find_folds(report: Report, index: ModuleIndex | None = None) -> dict[str, Fold]:
    """Runs of identical consecutive siblings numbered like a list, keyed by every member's path.

    Numbered like a list: ``h/0, h/1, ...`` or ``block1, block2, ...`` (one prefix, then a number). Identical:
    same type, config, parameter shapes and, recursively, the same children. Look-alikes with names (``q``,
    ``k``, ``v``, or ``v`` feeding ``o``) play different roles and never fold.
    """
    index = index or ModuleIndex(report)
    memo: dict[str, object] = {}
    folds: dict[str, Fold] = {}
    feeds: set[tuple[str, str]] | None = None
    prefix_of: dict[str, str | None] = {}  # by name: a checkpoint repeats sub0..sub9 under 30,000 blocks
    for parent, kids in index.children.items():
        prefixes = [_numbered(index, kid, prefix_of) for kid in kids]
        i = 0
        while i < len(kids):
            prefix = prefixes[i]
            j = i + 1
            while (
                prefix is not None
                and j < len(kids)
                and prefixes[j] == prefix
                and index.signature(kids[j], memo) == index.signature(kids[i], memo)
            ):
                j += 1
            # The identical run is kids[i:j]; named with a prefix (block1, block2; but also bn1, bn2 around a
            # conv) it folds only where each block feeds the next, so split it at the pairs that do not. The
            # run is scanned once (a rejected run is not rescanned from each of its members: linear time).
            segments = [(i, j)]
            if j - i > 1 and prefix:
                feeds = _sibling_flow(report, index) if feeds is None else feeds
                segments, start = [], i
                for k in range(i + 1, j):
                    if (kids[k - 1], kids[k]) not in feeds:
                        segments.append((start, k))
                        start = k
                segments.append((start, j))
            for a, b in segments:
                if b - a > 1:
                    fold = Fold(kids[a:b], _fold_label(index, parent, kids[a:b]))
                    for member in fold.members:
                        folds[member] = fold
            i = j
    return folds


def _sibling_flow(report: Report, index: ModuleIndex) -> set[tuple[str, str]]:
    """(a, b) for sibling modules a, b where data flows from a (or inside it) into b (or inside it)."""
    pairs = set()
    for e in report.edges:
        s, d = index.known(e.src), index.known(e.dst)
        if s is None or d is None:
            continue
        up, down = index.ancestors(s), index.ancestors(d)
        n = 0
        while n < min(len(up), len(down)) and up[n] == down[n]:
            n += 1
        if n < len(up) and n < len(down):
            pairs.add((up[n], down[n]))
    return pairs


def _numbered(index: ModuleIndex, path: str, known: dict[str, str | None]) -> str | None:
    """The name's prefix before a trailing number (``'block'`` for ``block3``, ``''`` for ``3``), or None.

    ``known`` remembers the answer per name: the regex is the dearest step, and names repeat.
    """
    names = index.by_path[path].path_tuple
    if not names:  # a checkpoint's unnamed root
        return None
    name = names[-1]
    if name not in known:
        found = _NUMBERED.fullmatch(name)
        known[name] = found.group(1) if found else None
    return known[name]


def _fold_label(index: ModuleIndex, parent: str | None, run: list[str]) -> str:
    first, last = ("/".join(index.relative(p, parent)) for p in (run[0], run[-1]))
    return f"{first}..{last}"
