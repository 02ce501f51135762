"""Param (one array plus static facts about it) and Params (the flat, immutable store)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax

from ._errors import ParamError
from ._paths import Path, parse_path, path_str


class FrozenDict(Mapping):
    """A hashable, immutable mapping used for static ``Param.metadata``."""

    __slots__ = ("_d", "_h")

    def __init__(self, data: Mapping | None = None):
        self._d = {k: freeze(v) for k, v in (data or {}).items()}
        self._h: int | None = None

    def __getitem__(self, key):
        return self._d[key]

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)

    def __hash__(self):
        if self._h is None:
            self._h = hash(tuple(sorted(self._d.items(), key=lambda kv: repr(kv[0]))))
        return self._h

    def __eq__(self, other):
        return isinstance(other, Mapping) and dict(self._d) == dict(other)

    def __repr__(self):
        return repr(self._d)

    def to_dict(self) -> dict:
        return {k: thaw(v) for k, v in self._d.items()}


def freeze(value: Any) -> Any:
    """Turns lists into tuples and dicts into FrozenDicts, recursively."""
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return FrozenDict(value)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    if isinstance(value, FrozenDict):
        return value.to_dict()
    if isinstance(value, tuple):
        return tuple(thaw(v) for v in value)
    return value


MSG_PARAM_IMMUTABLE = (
    "cannot assign Param.{name}: a Param is immutable, like the Params that hold it (locked() and split() "
    "copies share their Param objects, so an in-place change would show in all of them). Make a new one "
    "with param.replace(value=..., trainable=..., metadata=...) and store it with params.set(path, new)."
)
MSG_BAD_PATH = (
    "Params keys are paths: tuples of str names (or one '/'-joined string), got {got!r} ({kind}). "
    "Use a tuple such as ('net', 'mlp', 'kernel') or the string 'net/mlp/kernel'."
)

_UNSET: Any = object()


class Param:
    """One parameter: an array plus static facts (trainable flag, metadata).

    The only pytree leaf is ``value``; ``trainable`` and ``metadata`` are
    static, so they survive every transform unchanged. A Param is immutable:
    :meth:`replace` makes a changed copy.

    Example:
        >>> import jax.numpy as jnp
        >>> p = Param(jnp.zeros((2, 3)), metadata={'sharding': (None, 'model')})
        >>> p.sharding, p.trainable
        ((None, 'model'), True)
        >>> p.replace(trainable=False).trainable, p.trainable
        (False, True)
    """

    __slots__ = ("value", "trainable", "metadata")

    def __init__(self, value: Any, trainable: bool = True, metadata: Mapping | None = None):
        # The slots are written through their descriptors because __setattr__ refuses every assignment.
        _set_value(self, value)
        _set_trainable(self, trainable if trainable.__class__ is bool else bool(trainable))
        # Unflattening calls __init__ with the already-frozen metadata: keep that path cheap.
        _set_metadata(self, metadata if metadata.__class__ is FrozenDict else freeze(metadata or {}))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(MSG_PARAM_IMMUTABLE.format(name=name))

    def __delattr__(self, name: str) -> None:
        raise AttributeError(MSG_PARAM_IMMUTABLE.format(name=name))

    def __reduce__(self):
        # copy, deepcopy and pickle rebuild through __init__ instead of assigning slots.
        return Param, (self.value, self.trainable, self.metadata)

    @property
    def sharding(self) -> tuple | None:
        """The ``'sharding'`` metadata entry (a PartitionSpec-like tuple), or None."""
        return self.metadata.get("sharding")

    def replace(self, value: Any = _UNSET, *, trainable: bool = _UNSET, metadata: Mapping | None = _UNSET) -> Param:
        """A copy with the given fields changed; the others are kept.

        ``p.replace(new_value)`` (positional) changes the value only.

        Example:
            >>> p = Param(1.0, metadata={'sharding': ('data',)})
            >>> q = p.replace(2.0, metadata={})
            >>> q.value, q.metadata, p.sharding
            (2.0, {}, ('data',))
        """
        out = object.__new__(Param)
        _set_value(out, self.value if value is _UNSET else value)
        if trainable is _UNSET:
            trainable = self.trainable
        _set_trainable(out, trainable if trainable.__class__ is bool else bool(trainable))
        _set_metadata(out, self.metadata if metadata is _UNSET else freeze(metadata or {}))
        return out

    def __repr__(self) -> str:
        v = self.value
        desc = f"{getattr(v, 'dtype', type(v).__name__)}{list(getattr(v, 'shape', ()))}"
        extra = "" if self.trainable else ", trainable=False"
        meta = f", metadata={self.metadata!r}" if self.metadata else ""
        return f"Param({desc}{extra}{meta})"

    def __treescope_repr__(self, path: Any, subtree_renderer: Any) -> Any:
        """Treescope (optional; used by notebooks): the value (treescope summarises arrays: shape, dtype,
        mean, spread, range) beside the trainable flag and any metadata."""
        from treescope import repr_lib

        attributes = {"value": self.value, "trainable": self.trainable}
        if self.metadata:
            attributes["metadata"] = dict(self.metadata)
        return repr_lib.render_object_constructor(
            object_type=type(self), attributes=attributes, path=path, subtree_renderer=subtree_renderer
        )


_set_value = Param.__dict__["value"].__set__
_set_trainable = Param.__dict__["trainable"].__set__
_set_metadata = Param.__dict__["metadata"].__set__

# Registered as a dataclass node so JAX flattens it in C++: a Param is visited on every
# jitted call (params, gradients, optimizer state), so its pytree cost is per-step overhead.
jax.tree_util.register_dataclass(Param, data_fields=["value"], meta_fields=["trainable", "metadata"])


def _as_path(key: Path | str) -> Path:
    return parse_path(key) if isinstance(key, str) else tuple(key)


def _checked_path(key: Path | str) -> Path:
    """``_as_path`` for keys being stored: they must sort against each other, so names must be str."""
    if isinstance(key, str):
        return parse_path(key)
    if not isinstance(key, (tuple, list)):
        raise TypeError(MSG_BAD_PATH.format(got=key, kind=type(key).__name__))
    path = tuple(key)
    for i, name in enumerate(path):
        if not isinstance(name, str):
            raise TypeError(MSG_BAD_PATH.format(got=key, kind=f"name {i} is {type(name).__name__}"))
    return path


# How set() stays cheap: a Params is a stack of dicts, newest first, where a newer dict shadows older
# ones. set() copies only the small top dict (at most _TOP entries) and, when that fills, folds it into
# the dicts below while a dict is less than _FANOUT times bigger than the one on top of it. Every entry
# is so copied a bounded number of times per level and there are about log_FANOUT(n) levels, so building
# n params costs O(n log n) dict work done in C (no per-insert copy of the whole mapping, no per-insert
# sort), and a lookup tries a few dicts at most. The first ordered read (iteration, flatten, repr)
# merges the stack into one sorted dict and keeps it in place of the stack.
_TOP = 16
_FANOUT = 8
_MISSING: Any = object()


@jax.tree_util.register_pytree_with_keys_class
class Params(Mapping):
    """A flat, immutable mapping from graph path to :class:`Param`.

    Its pytree leaves are exactly the arrays, in a canonical (sorted-path)
    order, so ``jax.jit``, ``jax.grad`` and ``optax`` work on it directly, and
    Params with the same paths have the same tree structure however they were
    built. Keys are path tuples; a ``/``-joined string is accepted for lookup.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> p = Params({('net', 'w'): Param(jnp.ones(3))})
        >>> [x.shape for x in jax.tree.leaves(p)]
        [(3,)]
        >>> p.locked().is_locked
        True
    """

    # _levels: the dict stack (newest first). _sorted: merging the stack oldest-first gives the canonical
    # order (stays true while set() only replaces). _keys: the canonical key tuple once known.
    __slots__ = ("_levels", "_sorted", "_keys", "_len", "_locked")

    def __init__(self, data: Mapping[Path, Param] | None = None, *, locked: bool = False):
        items = {}
        for key, param in (data or {}).items():
            if not isinstance(param, Param):
                param = Param(param)
            items[_checked_path(key)] = param
        self._levels = (items,)
        self._sorted = False
        self._keys = None
        self._len = len(items)
        self._locked = bool(locked)

    @classmethod
    def _make(cls, data: dict[Path, Param], locked: bool, *, sorted_keys: tuple | None = None) -> Params:
        """Params owning ``data`` (not copied; never mutate it after). ``sorted_keys``: ``tuple(data)``, if sorted."""
        out = object.__new__(cls)
        out._levels = (data,)
        out._sorted = sorted_keys is not None
        out._keys = sorted_keys
        out._len = len(data)
        out._locked = locked
        return out

    def _canonical(self) -> dict[Path, Param]:
        """All params in one dict in canonical (sorted) order; replaces the stack so later reads are direct."""
        levels = self._levels
        data = levels[-1]
        if len(levels) > 1:
            data = dict(data)
            for level in reversed(levels[:-1]):
                data.update(level)
        if not self._sorted:
            # Sorting the keys alone allocates no (path, param) pairs: less work for the cyclic GC.
            data = {k: data[k] for k in sorted(data)}
        if len(levels) > 1 or not self._sorted:
            self._levels = (data,)
            self._sorted = True
        if self._keys is None:
            self._keys = tuple(data)
        return data

    # --- mapping ------------------------------------------------------------
    def __getitem__(self, key: Path | str) -> Param:
        path = _as_path(key)
        for level in self._levels:
            found = level.get(path, _MISSING)
            if found is not _MISSING:
                return found
        raise KeyError(path)

    def get(self, key, default=None):
        path = _as_path(key)
        for level in self._levels:
            found = level.get(path, _MISSING)
            if found is not _MISSING:
                return found
        return default

    def __contains__(self, key: object) -> bool:
        try:
            path = _as_path(key)  # type: ignore[arg-type]
        except TypeError:
            return False
        return any(path in level for level in self._levels)

    def __iter__(self) -> Iterator[Path]:
        return iter(self._canonical())

    def __len__(self) -> int:
        return self._len

    def keys(self):
        return self._canonical().keys()

    def values(self):
        return self._canonical().values()

    def items(self):
        return self._canonical().items()

    def __eq__(self, other):
        return self is other

    __hash__ = object.__hash__

    # --- locking ------------------------------------------------------------
    def _with_lock(self, locked: bool) -> Params:
        out = object.__new__(Params)
        out._levels, out._sorted, out._keys, out._len = self._levels, self._sorted, self._keys, self._len
        out._locked = locked
        return out

    @property
    def is_locked(self) -> bool:
        return self._locked

    def locked(self) -> Params:
        """Returns a copy on which creating a new param raises an error."""
        return self._with_lock(True)

    def unlocked(self) -> Params:
        """Returns a copy on which new params may be created again."""
        return self._with_lock(False)

    # --- functional updates -----------------------------------------------
    def set(self, path: Path, param: Param) -> Params:
        """Returns new Params with ``param`` stored at ``path`` (new or replaced).

        A bare array is wrapped as a trainable ``Param`` with no metadata.
        Costs about the same for the first param as for the 100,000th.
        """
        path = _checked_path(path)
        if not isinstance(param, Param):
            param = Param(param)
        levels = self._levels
        new = not any(path in level for level in levels)
        top = levels[0]
        if len(top) < _TOP:
            top = dict(top)
            top[path] = param
            rest = levels[1:]
        else:
            top = {path: param}
            rest = levels
        if len(top) >= _TOP:
            while rest and len(rest[0]) < _FANOUT * len(top):
                top = {**rest[0], **top}
                rest = rest[1:]
        out = object.__new__(Params)
        out._levels = (top, *rest)
        # A replaced path keeps its position when the stack is merged, so order and key tuple carry over.
        out._sorted = self._sorted and not new
        out._keys = None if new else self._keys
        out._len = self._len + new
        out._locked = self._locked
        return out

    def split(self, pred: Callable[[Path, Param], bool] | None = None) -> tuple[Params, Params]:
        """Splits into (selected, rest). The default selects trainable params.

        ``pred`` takes ``(path, param)``. Both halves keep the lock state.

        Example:
            >>> p = Params({('a',): Param(1.0), ('b',): Param(2.0, trainable=False)})
            >>> trainable, rest = p.split()
            >>> list(trainable), list(rest), list(trainable.merge(rest))
            ([('a',)], [('b',)], [('a',), ('b',)])
        """
        if pred is None:
            pred = lambda _, p: p.trainable  # noqa: E731
        yes, no = {}, {}
        for path, param in self._canonical().items():
            (yes if pred(path, param) else no)[path] = param
        return (
            Params._make(yes, self._locked, sorted_keys=tuple(yes)),
            Params._make(no, self._locked, sorted_keys=tuple(no)),
        )

    def merge(self, *others: Params) -> Params:
        """Unites disjoint Params (the inverse of :meth:`split`)."""
        data = dict(self._canonical())
        for other in others:
            if not isinstance(other, Params):
                raise TypeError(f"Params.merge expects Params, got {type(other).__name__}")
            if other._locked != self._locked:
                raise ParamError(
                    f"cannot merge Params with different lock states (this one is_locked="
                    f"{self._locked}, the other is_locked={other._locked}). Call .locked() or "
                    ".unlocked() on one of them so both agree."
                )
            theirs = other._canonical()
            both = data.keys() & theirs.keys()
            if both:
                shown = ", ".join(sorted(path_str(p) for p in both)[:5])
                raise ParamError(
                    f"cannot merge Params that both hold {len(both)} path(s): {shown}. merge() "
                    "joins the disjoint halves of split(); to overwrite values use Params.set()."
                )
            data.update(theirs)
        # Sorted lazily: a merge inside a traced step is often only read by path.
        return Params._make(data, self._locked)

    def subtree(self, prefix: Path | str) -> Params:
        """The params whose path starts with ``prefix``."""
        prefix = _as_path(prefix)
        n = len(prefix)
        data = {k: v for k, v in self._canonical().items() if k[:n] == prefix}
        return Params._make(data, self._locked, sorted_keys=tuple(data))

    def map(self, fn: Callable[[Path, Param], Any]) -> Params:
        """Applies ``fn(path, param) -> new value`` to every param, keeping flags and metadata."""
        data = {k: p.replace(fn(k, p)) for k, p in self._canonical().items()}
        return Params._make(data, self._locked, sorted_keys=self._keys)

    # --- pytree -------------------------------------------------------------
    def tree_flatten_with_keys(self):
        data = self._canonical()
        children = [(jax.tree_util.DictKey(path_str(k)), v) for k, v in data.items()]
        return children, (self._keys, self._locked)

    def tree_flatten(self):
        # The key tuple is cached, so repeated flattens hand JAX the same aux object to compare.
        return list(self._canonical().values()), (self._keys, self._locked)

    @classmethod
    def tree_unflatten(cls, aux, children):
        keys, locked = aux
        return cls._make(dict(zip(keys, children)), locked, sorted_keys=keys)

    def __treescope_repr__(self, path: Any, subtree_renderer: Any) -> Any:
        """Treescope (optional; used by notebooks): the params as a tree of their path names, each leaf a
        :class:`Param` (shape, dtype, trainable flag, summary statistics of concrete values)."""
        from treescope import repr_lib

        tree: dict = {}
        for key, param in self._canonical().items():
            node = tree
            for name in key[:-1]:
                node = node.setdefault(name, {})
                if not isinstance(node, dict):  # a param and a subtree under one name: keep both visible
                    break
            else:
                node[key[-1] if key else ""] = param
                continue
            tree[path_str(key)] = param
        return repr_lib.render_dictionary_wrapper(
            object_type=type(self), wrapped_dict=tree, path=path, subtree_renderer=subtree_renderer
        )

    def __repr__(self) -> str:
        lock = ", locked" if self._locked else ""
        data = self._canonical()
        if not data:
            return f"Params({{}}{lock})"
        lines = [f"  {path_str(k)!r}: {v!r}," for k, v in data.items()]
        return "Params({\n" + "\n".join(lines) + f"\n}}{lock})"
