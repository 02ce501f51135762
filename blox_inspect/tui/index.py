"""What the app asks of a Report, answered fast: lookups, child order, folds, fuzzy search, largest module.

Built once in O(modules + params) so a 10,000-module report opens instantly;
everything here is plain Python, testable without a terminal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from blox._gc import gc_paused
from blox._paths import parse_path
from blox_inspect.analysis.folds import Fold, ModuleIndex, find_folds
from blox_inspect.report.model import CallInfo, ModuleInfo, ParamInfo, Report

SORTS = ("graph", "params", "flops")
SORT_LABELS = {"graph": "graph order", "params": "params ↓", "flops": "FLOPs ↓"}


class ReportIndex:
    def __init__(self, report: Report):
        # Only acyclic dicts and lists are built here, but a big report holds enough objects that the
        # cyclic GC's full passes (over JAX's objects too) cost 10× the work itself: pause it meanwhile.
        with gc_paused():
            self._build(report)

    def _build(self, report: Report) -> None:
        self.times: dict[str, float] = {}  # module path -> measured seconds per step, children included (tui --profile)
        self.report = report
        self.modules: dict[str, ModuleInfo] = {m.path: m for m in report.modules}
        self.params: dict[str, ParamInfo] = {p.path: p for p in report.params}
        if report.root not in self.modules:
            # The graph root holds no module, so analysis reports may leave it out: stand one in.
            root = _synthetic_root(report, [m.path for m in report.modules if m.parent not in self.modules])
            self.modules = {root.path: root, **self.modules}
        self.root = self.modules[report.root]
        # Every module but the root hangs under some module, the root if its own parent is unknown.
        self.parent_of = {
            m.path: (m.parent if m.parent in self.modules else self.root.path)
            for m in self.modules.values()
            if m.path != self.root.path
        }
        self._order = {path: i for i, path in enumerate(self.modules)}
        # Params a module owns, in report order (ModuleInfo.param_paths may be empty in hand-made reports).
        self.own_params: dict[str, list[ParamInfo]] = {}
        for p in report.params:
            self.own_params.setdefault(p.module, []).append(p)
        # Runs of identical numbered blocks, keyed by every member: the diagram's folds (analysis/folds.py).
        self.folds: dict[str, Fold] = {}
        for fold in {id(f): f for f in find_folds(report, _fold_index(report)).values()}.values():
            # A checkpoint lists h/10 before h/2 (its names sort as text): show the blocks by number.
            members = sorted(fold.members, key=lambda p: int(_TRAILING_NUMBER.search(p).group()))
            label = (
                f"{_below(members[0], self.parent_of[members[0]])}..{_below(members[-1], self.parent_of[members[-1]])}"
            )
            numbered = Fold(members, label if members != fold.members else fold.label)
            self.folds.update(dict.fromkeys(members, numbered))

    def children(self, path: str, sort: str = "graph") -> list[ModuleInfo]:
        kids = [self.modules[c] for c in self.modules[path].children if c in self.modules]
        if sort == "params":
            kids.sort(key=lambda m: (-m.params, self._order[m.path]))
        elif sort == "flops":
            kids.sort(key=lambda m: (-m.flops, self._order[m.path]))
        return kids

    def items(self, path: str, sort: str = "graph") -> list[ModuleInfo | Fold]:
        """The rows under ``path``: its children, each run of identical blocks as one :class:`Fold`.

        A fold stands where its first block stands in graph order; when sorting, it counts as the
        total of its blocks. Its members are :meth:`members`, always in graph order.
        """
        out: list[ModuleInfo | Fold] = []
        for m in self.children(path):
            fold = self.folds.get(m.path)
            if fold is None:
                out.append(m)
            elif fold.rep == m.path:
                out.append(fold)
        if sort in ("params", "flops"):
            out.sort(key=lambda item: (-self.total(item, sort), self._order[self.first(item).path]))
        return out

    def members(self, fold: Fold) -> list[ModuleInfo]:
        return [self.modules[p] for p in fold.members]

    def first(self, item: ModuleInfo | Fold) -> ModuleInfo:
        """The module a row stands for: itself, or a fold's first block."""
        return self.modules[item.rep] if isinstance(item, Fold) else item

    def seconds(self, item: ModuleInfo | Fold) -> float:
        """Measured time of a module, or of all of a fold's blocks (0 without a profile)."""
        if isinstance(item, Fold):
            return sum(self.times.get(p, 0.0) for p in item.members)
        return self.times.get(item.path, 0.0)

    def total(self, item: ModuleInfo | Fold, attr: str) -> int:
        """``attr`` (``params``, ``flops``, ...) of a module, or summed over a fold's blocks."""
        if isinstance(item, Fold):
            return sum(getattr(self.modules[p], attr) for p in item.members)
        return getattr(item, attr)

    def ancestors(self, path: str) -> list[str]:
        """Paths from the root down to ``path``'s parent."""
        out = []
        m = self.parent_of.get(path)
        while m is not None:
            out.append(m)
            m = self.parent_of.get(m)
        return out[::-1]

    def largest(self, by: str = "params") -> ModuleInfo:
        """The module with the most own params (or own FLOPs); ties go to the earliest."""
        attr = "flops_own" if by == "flops" else "params_own"
        return max(self.modules.values(), key=lambda m: (getattr(m, attr), -self._order[m.path]))

    def search(self, query: str, limit: int = 200) -> list[str]:
        """Module paths matching ``query`` fuzzily (its characters in order), best first."""
        scored = []
        for path in self.modules:
            s = fuzzy_score(query, path)
            if s is not None:
                scored.append((s, self._order[path], path))
        scored.sort()
        return [p for _, _, p in scored[:limit]]

    def with_ancestors(self, paths: Iterable[str]) -> set[str]:
        keep: set[str] = set()
        for p in paths:
            keep.add(p)
            keep.update(self.ancestors(p))
        return keep


_TRAILING_NUMBER = re.compile(r"\d+$")


def _below(path: str, parent: str) -> str:
    return path[len(parent) + 1 :] if parent and path.startswith(parent + "/") else path


def _fold_index(report: Report) -> ModuleIndex:
    # A checkpoint's root (path "", no name) has nothing to fold with, and find_folds cannot read a name
    # from an empty path: leave such roots out of the top level it scans.
    index = ModuleIndex(report)
    index.children[None] = [p for p in index.children[None] if index.by_path[p].path_tuple]
    return index


def _synthetic_root(report: Report, tops: list[str]) -> ModuleInfo:
    t = report.totals
    path = report.root
    names = parse_path(path) if path else ()
    return ModuleInfo(
        path=path,
        path_tuple=list(names),
        name=names[-1] if names else report.model,
        type="",
        config={},
        depth=0,
        parent=None,
        children=tops,
        calls=1 if report.inputs else 0,
        call_info=[CallInfo(inputs=report.inputs, outputs=report.outputs)] if report.inputs else [],
        shared=False,
        params=t.params,
        trainable_params=t.trainable_params,
        param_bytes=t.param_bytes,
        flops=t.flops,
        flops_train=t.flops_train or 0,
    )


def fuzzy_score(query: str, text: str) -> int | None:
    """Lower is better; None when ``query``'s characters do not all appear in order in ``text``.

    A substring match beats a scattered one, and matches near the end (the
    module's own name) beat matches in a long prefix.

    Example:
        >>> fuzzy_score('mlp', 'net/mlp') < fuzzy_score('mlp', 'net/m/l/p')
        True
        >>> fuzzy_score('xyz', 'net/mlp') is None
        True
    """
    q, t = query.lower(), text.lower()
    if not q:
        return 0
    at = t.rfind(q)
    if at >= 0:
        return len(t) - at - len(q)
    pos, gaps, start = -1, 0, None
    for ch in q:
        nxt = t.find(ch, pos + 1)
        if nxt < 0:
            return None
        if start is None:
            start = nxt
        elif nxt > pos + 1:
            gaps += nxt - pos - 1
        pos = nxt
    return 1000 + gaps * 10 + (len(t) - pos)


def match_positions(query: str, text: str) -> list[int]:
    """Where ``query`` matches ``text`` (for highlighting); same rule as :func:`fuzzy_score`.

    Example:
        >>> match_positions('ml', 'net/mlp')
        [4, 5]
    """
    q, t = query.lower(), text.lower()
    if not q:
        return []
    at = t.rfind(q)
    if at >= 0:
        return list(range(at, at + len(q)))
    out, pos = [], -1
    for ch in q:
        pos = t.find(ch, pos + 1)
        if pos < 0:
            return []
        out.append(pos)
    return out
