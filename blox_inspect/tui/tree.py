"""The module tree: lazy rows, folded runs of identical blocks, search filtering, and an opening that fits.

A node's data is a module path (``str``) or a :class:`~blox_inspect.analysis.folds.Fold`: one ``×N``
row for a run of identical blocks, whose children are the N blocks.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from blox_inspect.analysis.folds import Fold
from blox_inspect.common.text import ellipsize, visible
from blox_inspect.common.units import human, human_seconds
from blox_inspect.report.model import ModuleInfo
from blox_inspect.tui.index import ReportIndex, match_positions
from blox_inspect.tui.keys import VimG, vim_bindings
from blox_inspect.tui.messages import ModuleChosen
from blox_inspect.tui.text import safe

# Expanding everything stops adding nodes past this many, so a huge model stays responsive.
EXPAND_ALL_LIMIT = 5000
# Tree rows cut longer names in the middle, so a 300-character name leaves room for the numbers.
NAME_WIDTH = 60

Item = str | Fold  # what a tree node stands for
Expansion = set[str | tuple[str, str]]  # expanded nodes: module paths, and ("fold", first block) for folds


def _name(shown: str, matched: set[int], style: str) -> Text:
    """A row's name, escaped character by character so search matches stay on the right characters."""
    if not shown.strip():
        return Text(repr(shown), style=style)  # a blank name still shows as something
    if len(shown) > NAME_WIDTH:
        return Text(ellipsize(visible(shown), NAME_WIDTH), style=style)  # the details show it whole
    if not matched:
        return safe(shown, style)
    name = Text(style=style)
    for i, ch in enumerate(shown):
        name.append(visible(ch), "reverse" if i in matched else "")
    return name


def _below(path: str, parent: str | None) -> str:
    """``path`` relative to ``parent`` (``h/0`` below ``transformer``), or its whole path under the root ``""``."""
    if parent and path.startswith(parent + "/"):
        return path[len(parent) + 1 :]
    return path if parent == "" else ""


def _numbers(text: Text, m: ModuleInfo, params: int, flops: int, marked: bool, seconds: float = 0.0) -> Text:
    if m.type:
        text.append(f"  {visible(m.type)}", style="cyan")
    if params:
        text.append(f"  {human(params)}", style="green")
    if flops:
        text.append(f"  {human(flops, 'FLOP')}", style="magenta")
    if seconds:  # measured by `blox-inspect profile` (tui --profile)
        text.append(f"  {human_seconds(seconds)}", style="yellow")
    if marked:
        text.append("  ✗", style="bold red")
    return text


def module_label(
    m: ModuleInfo, *, parent: str | None = None, marked: bool = False, query: str = "", seconds: float = 0.0
) -> Text:
    """One tree row: name, type, params and FLOPs (matches of the search query highlighted).

    The name is the path below ``parent``, so graph nodes that hold no module
    (``h`` in ``transformer/h/0``) still show: the row reads ``h/0``. Names and
    types are untrusted: control characters show as escapes (``\\x1b``).
    """
    shown = _below(m.path, parent) or m.name or m.path or "·"
    matched: set[int] = set()
    if query and m.path.endswith(shown):
        offset = len(m.path) - len(shown)
        matched = {i - offset for i in match_positions(query, m.path) if i >= offset}
    text = Text.assemble(_name(shown, matched, "bold" if m.children else ""))  # the style stays on the name
    return _numbers(text, m, m.params, m.flops, marked, seconds)


def fold_label(fold: Fold, index: ReportIndex, *, marked: bool = False) -> Text:
    """A folded run's row: ``h/0..h/11 ×12``, the blocks' type, and the params and FLOPs of all N blocks.

    The totals cover every block, as a folded row of the summary table does.
    """
    first = index.modules[fold.rep]
    text = Text.assemble(_name(fold.label, set(), "bold"), (f" ×{len(fold.members)}", "bold yellow"))
    return _numbers(text, first, index.total(fold, "params"), index.total(fold, "flops"), marked, index.seconds(fold))


class ModuleTree(VimG, Tree[Item]):
    """The module tree. Children are added only when their parent is first expanded."""

    BINDINGS = [
        Binding("right", "expand_or_enter", "Expand", show=False),
        Binding("left", "collapse_or_parent", "Collapse", show=False),
        *vim_bindings("scroll_home", "scroll_end", tree=True),
    ]

    def __init__(self, index: ReportIndex, marked: set[str] | None = None, **kwargs: Any):
        root = index.root
        label = module_label(root, marked=root.path in (marked or ()), seconds=index.seconds(root))
        super().__init__(label, data=root.path, **kwargs)
        self.index = index
        self.marked = marked or set()
        self.sort = "graph"
        self.query = ""
        self.nodes: dict[str, TreeNode[Item]] = {}  # module path -> its node
        self.fold_nodes: dict[str, TreeNode[Item]] = {}  # a fold's first block -> the fold's node
        self._loaded: set[int] = set()  # ids of nodes whose children were added
        self._filtered = False  # the tree shows search results
        self._before_search: Expansion | None = None
        self._announced: Item | None = None
        self.guide_depth = 3

    def on_mount(self) -> None:
        self.rebuild(opening=True)

    # --- what the cursor is on ----------------------------------------------
    @property
    def cursor_item(self) -> Item:
        node = self.cursor_node
        return node.data if node is not None and node.data is not None else self.index.root.path

    @property
    def cursor_path(self) -> str:
        """The module under the cursor (a folded row's first block)."""
        item = self.cursor_item
        return item.rep if isinstance(item, Fold) else item

    def _announce(self, item: Item) -> None:
        if item != self._announced:
            self._announced = item
            path = item.rep if isinstance(item, Fold) else item
            self.post_message(ModuleChosen(path, fold=item if isinstance(item, Fold) else None))

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Item]) -> None:
        event.stop()
        if event.node.data is not None:
            self._announce(event.node.data)

    # --- building ---------------------------------------------------------
    def set_query(self, query: str) -> None:
        """Filters the tree by ``query``; clearing it brings back the expansion from before the search."""
        if query == self.query:
            return
        if query and not self.query and not self._filtered:
            self._before_search = self.expansion()
        self.query = query
        if query:
            self.rebuild()
        else:
            self.rebuild(expanded=self._before_search)
            self._before_search = None

    def rebuild(self, expanded: Expansion | None = None, opening: bool = False) -> None:
        """Rebuilds from the root with the current sort and query, keeping the cursor's module.

        Unfiltered, the nodes expanded before stay expanded (or those in ``expanded``).
        """
        keep = self.cursor_path if self.cursor_node is not None else None
        on_fold = self.cursor_item if isinstance(self.cursor_item, Fold) else None
        if expanded is None and not self._filtered and not opening:
            expanded = self.expansion()
        self.clear()
        self.nodes = {self.index.root.path: self.root}
        self.fold_nodes = {}
        self._loaded = set()
        self.root.data = self.index.root.path
        self._filtered = bool(self.query)
        if self.query:
            self._build_filtered()
            # While searching, the best match is selected; with no match the cursor stays at the root.
            keep = next(iter(self.index.search(self.query, 1)), self.index.root.path)
        else:
            self._restore(expanded or {self.index.root.path})
        if opening:
            self.move_cursor(self._open_to_fit())
        elif on_fold is not None and on_fold.rep in self.fold_nodes and not self._filtered:
            _ = self.last_line
            self.move_cursor(self.fold_nodes[on_fold.rep])  # stay on the ×N row, without opening it
        else:
            self.reveal(keep if keep in self.index.modules else self.index.root.path)
        item = self.cursor_item
        self._announced = None  # the details must show the cursor's module, even if the line did not move
        self._announce(item)

    def _add(self, parent: TreeNode[Item], item: ModuleInfo | Fold) -> TreeNode[Item]:
        if isinstance(item, Fold):
            marked = any(p in self.marked for p in item.members)
            node = parent.add(fold_label(item, self.index, marked=marked), data=item, allow_expand=True)
            self.fold_nodes[item.rep] = node
            return node
        node = parent.add(
            module_label(
                item,
                parent=self.index.parent_of.get(item.path),
                marked=item.path in self.marked,
                query=self.query,
                seconds=self.index.seconds(item),
            ),
            data=item.path,
            allow_expand=bool(item.children),
        )
        self.nodes[item.path] = node
        return node

    def _populate(self, node: TreeNode[Item]) -> None:
        if id(node) in self._loaded or self._filtered:
            return
        self._loaded.add(id(node))
        data = node.data
        if isinstance(data, Fold):
            kids: list[ModuleInfo | Fold] = list(self.index.members(data))
        else:
            kids = list(self.index.items(data, self.sort))
        for item in kids:
            self._add(node, item)

    def _build_filtered(self) -> None:
        # Search results are listed module by module (no folds), so a match inside block 7 shows as itself.
        matches = self.index.search(self.query)
        keep = self.index.with_ancestors(matches)

        def build(node: TreeNode[Item]) -> None:
            for child in self.index.children(node.data, self.sort):
                if child.path in keep:
                    build(self._add(node, child))
            node.expand()

        build(self.root)

    def _key(self, node: TreeNode[Item]) -> str | tuple[str, str]:
        return ("fold", node.data.rep) if isinstance(node.data, Fold) else node.data

    def expansion(self) -> Expansion:
        """The expanded nodes, to rebuild the tree as the user left it."""
        out: Expansion = set()
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.is_expanded:
                out.add(self._key(node))
                stack.extend(node.children)
        return out

    def _restore(self, expanded: Expansion) -> None:
        stack = [self.root]
        while stack:
            node = stack.pop()
            if self._key(node) in expanded:
                self._populate(node)
                node.expand()
                stack.extend(node.children)

    def _open_to_fit(self) -> TreeNode[Item]:
        """Expands level by level while the rows fit the window; returns the largest row.

        The root's children always show. Folded runs stay folded. From the root down, the child with
        the most params (a fold: its N blocks together) is followed while it is expanded.
        """
        height = max(self.app.size.height - 4, 1)  # header, footer and the tree's borders
        level, rows = [self.root], 1
        while level:
            count = sum(len(self.index.items(node.data)) for node in level)  # counted before any is added
            if rows > 1 and rows + count > height:
                break
            for node in level:
                self._populate(node)
                node.expand()
            rows += count
            level = [c for node in level for c in node.children if c.allow_expand and not isinstance(c.data, Fold)]
        node = self.root
        while node.is_expanded and node.children:
            node = max(node.children, key=lambda c: self.index.total(self._item(c), "params"))
        _ = self.last_line  # lay out the new lines, so moving the cursor there takes effect at once
        return node

    def _item(self, node: TreeNode[Item]) -> ModuleInfo | Fold:
        return node.data if isinstance(node.data, Fold) else self.index.modules[node.data]

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Item]) -> None:
        self._populate(event.node)

    # --- commands ---------------------------------------------------------
    def action_expand_or_enter(self) -> None:
        node = self.cursor_node
        if node is None or not node.allow_expand:
            return
        if node.is_expanded and node.children:
            self.move_cursor(node.children[0])
        else:
            node.expand()

    def action_collapse_or_parent(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded and node.children:
            node.collapse()
        elif node.parent is not None:
            self.move_cursor(node.parent)

    def _node_for(self, path: str) -> TreeNode[Item] | None:
        """The node of module ``path``, adding and expanding its ancestors (and its fold) as needed."""
        node: TreeNode[Item] | None = None
        for step in [*self.index.ancestors(path), path]:
            fold = self.index.folds.get(step)
            if node is not None:
                self._populate(node)
                node.expand()
                if fold is not None and fold.rep in self.fold_nodes and not self._filtered:
                    folded = self.fold_nodes[fold.rep]
                    self._populate(folded)
                    folded.expand()
            node = self.nodes.get(step)
            if node is None:
                return None
        return node

    def reveal(self, path: str) -> None:
        """Adds and expands the path's ancestors, then moves the cursor onto it."""
        if path not in self.index.modules:
            return
        node = self._node_for(path)
        if node is not None:
            # Reading last_line rebuilds the tree's line cache now, so the node's line is
            # known and the cursor moves synchronously (the next key sees the new cursor).
            _ = self.last_line
            self.move_cursor(node)
            self.call_after_refresh(self.scroll_to_node, node)

    def expand_everything(self) -> int:
        """Expands every module and fold (up to EXPAND_ALL_LIMIT nodes); returns how many modules show."""
        queue = [self.root]
        while queue and len(self.nodes) < EXPAND_ALL_LIMIT:
            node = queue.pop(0)
            self._populate(node)
            node.expand()
            queue.extend(node.children)
        return len(self.nodes)

    def collapse_everything(self) -> None:
        for child in self.root.children:
            child.collapse_all()
        self.move_cursor(self.root)
