"""The static structure of a model: a tree of named nodes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._errors import GraphError
from ._paths import Path, path_str

if TYPE_CHECKING:
    from ._module import Module


class Graph:
    """A node in a model's static structure tree.

    ``Graph('net')`` makes a root. ``node.child('mlp')`` (or ``node / 'mlp'``)
    makes a named child. A module binds itself to one node when constructed;
    the root never holds a module. Paths are tuples of names, so names may hold
    any character.

    Example:
        >>> g = Graph('net')
        >>> g.child('mlp').path
        ('net', 'mlp')
        >>> (g / 'head').parent is g
        True
    """

    __slots__ = ("_name", "_parent", "_children", "_module", "_order", "_counter", "_path", "_path_str")

    def __init__(self, name: str, *, _parent: Graph | None = None):
        if not isinstance(name, str):
            raise TypeError(f"Graph names must be str, got {type(name).__name__}: {name!r}")
        self._name = name
        self._parent = _parent
        self._children: dict[str, Graph] = {}
        self._module: Module | None = None
        # Creation order is global to the tree so walk() can replay it.
        self._counter = _parent._counter if _parent is not None else itertools.count()
        self._order = next(self._counter)
        # A node's name and parent never change, so its path is computed once (modules read it per call).
        self._path: Path = (_parent._path if _parent is not None else ()) + (name,)
        self._path_str = path_str(self._path)

    # --- navigation -------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def parent(self) -> Graph | None:
        return self._parent

    @property
    def root(self) -> Graph:
        node = self
        while node._parent is not None:
            node = node._parent
        return node

    @property
    def path(self) -> Path:
        return self._path

    @property
    def path_str(self) -> str:
        return self._path_str

    @property
    def module(self) -> Module | None:
        return self._module

    @property
    def children(self) -> dict[str, Graph]:
        return dict(self._children)

    @property
    def is_root(self) -> bool:
        return self._parent is None

    # --- building ---------------------------------------------------------
    def child(self, name: str) -> Graph:
        """Creates a child node; a name may be used once per parent."""
        if name in self._children:
            raise GraphError(
                f"{path_str(self.path)}: a child named {name!r} already exists. "
                "Each child name must be unique under its parent; pick another name "
                "(e.g. append an index) or reuse the existing node via node.children."
            )
        node = Graph(name, _parent=self)
        self._children[name] = node
        return node

    def __truediv__(self, name: str) -> Graph:
        return self.child(name)

    def _bind(self, module: Module) -> None:
        if self._parent is None:
            raise GraphError(
                f"{path_str(self.path)}: cannot bind {type(module).__name__} to the root node. "
                f"Modules live on child nodes: pass graph.child('name') instead of the root."
            )
        if self._module is not None:
            raise GraphError(
                f"{path_str(self.path)}: node already holds {type(self._module).__name__}; "
                f"cannot also bind {type(module).__name__}. Each node holds one module: "
                "create a new child node for this one."
            )
        self._module = module

    def _unbind(self) -> None:
        self._module = None

    # --- traversal --------------------------------------------------------
    def nodes(self) -> Iterator[Graph]:
        """Yields this node and every descendant in creation order."""
        found = [self]
        stack = list(self._children.values())
        while stack:
            node = stack.pop()
            found.append(node)
            stack.extend(node._children.values())
        found.sort(key=lambda n: n._order)
        yield from found

    def walk(self) -> Iterator[tuple[Path, Any]]:
        """Yields ``(path, module)`` for every bound descendant, in creation order.

        Example:
            >>> import blox as bx
            >>> g = bx.Graph('net'); node = g / 'mlp'
            >>> seq = bx.Sequential(node, [bx.LayerNorm(node / 'ln')])
            >>> [(bx.path_str(p), type(m).__name__) for p, m in g.walk()]
            [('net/mlp', 'Sequential'), ('net/mlp/ln', 'LayerNorm')]
        """
        for node in self.nodes():
            if node._module is not None:
                yield node.path, node._module

    def find(self, path: Path) -> Graph:
        """Returns the descendant at an absolute path (starting with this root's name)."""
        root = self.root
        if not path or path[0] != root._name:
            raise KeyError(f"path {path!r} does not start at root {root._name!r}")
        node = root
        for name in path[1:]:
            if name not in node._children:
                raise KeyError(f"no node {path_str(path)!r}: {path_str(node.path)!r} has no child {name!r}")
            node = node._children[name]
        return node

    def __repr__(self) -> str:
        bound = f" -> {type(self._module).__name__}" if self._module is not None else ""
        return f"Graph({path_str(self.path)!r}{bound})"
