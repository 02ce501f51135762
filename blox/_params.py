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


class Param:
    """One parameter: an array plus static facts (trainable flag, metadata).

    The only pytree leaf is ``value``; ``trainable`` and ``metadata`` are
    static, so they survive every transform unchanged.

    Example:
        >>> import jax.numpy as jnp
        >>> p = Param(jnp.zeros((2, 3)), metadata={'sharding': (None, 'model')})
        >>> p.sharding, p.trainable
        ((None, 'model'), True)
    """

    __slots__ = ("value", "trainable", "metadata")

    def __init__(self, value: Any, trainable: bool = True, metadata: Mapping | None = None):
        self.value = value
        self.trainable = trainable if trainable.__class__ is bool else bool(trainable)
        # Unflattening calls __init__ with the already-frozen metadata: keep that path cheap.
        self.metadata = metadata if metadata.__class__ is FrozenDict else freeze(metadata or {})

    @property
    def sharding(self) -> tuple | None:
        """The ``'sharding'`` metadata entry (a PartitionSpec-like tuple), or None."""
        return self.metadata.get("sharding")

    def replace(self, value: Any) -> Param:
        out = object.__new__(Param)
        out.value, out.trainable, out.metadata = value, self.trainable, self.metadata
        return out

    def __repr__(self) -> str:
        v = self.value
        desc = f"{getattr(v, 'dtype', type(v).__name__)}{list(getattr(v, 'shape', ()))}"
        extra = "" if self.trainable else ", trainable=False"
        meta = f", metadata={self.metadata!r}" if self.metadata else ""
        return f"Param({desc}{extra}{meta})"


# Registered as a dataclass node so JAX flattens it in C++: a Param is visited on every
# jitted call (params, gradients, optimizer state), so its pytree cost is per-step overhead.
jax.tree_util.register_dataclass(Param, data_fields=["value"], meta_fields=["trainable", "metadata"])


def _as_path(key: Path | str) -> Path:
    return parse_path(key) if isinstance(key, str) else tuple(key)


@jax.tree_util.register_pytree_with_keys_class
class Params(Mapping):
    """A flat, immutable mapping from graph path to :class:`Param`.

    Its pytree leaves are exactly the arrays, in a canonical (sorted-path)
    order, so ``jax.jit``, ``jax.grad`` and ``optax`` work on it directly.
    Keys are path tuples; a ``/``-joined string is accepted for lookup.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> p = Params({('net', 'w'): Param(jnp.ones(3))})
        >>> [x.shape for x in jax.tree.leaves(p)]
        [(3,)]
        >>> p.locked().is_locked
        True
    """

    __slots__ = ("_data", "_locked")

    def __init__(self, data: Mapping[Path, Param] | None = None, *, locked: bool = False):
        items = {}
        for key, param in (data or {}).items():
            if not isinstance(param, Param):
                param = Param(param)
            items[_as_path(key)] = param
        self._data = dict(sorted(items.items()))
        self._locked = bool(locked)

    @classmethod
    def _make(cls, data: dict[Path, Param], locked: bool) -> Params:
        out = object.__new__(cls)
        out._data = data
        out._locked = locked
        return out

    # --- mapping ------------------------------------------------------------
    def __getitem__(self, key: Path | str) -> Param:
        return self._data[_as_path(key)]

    def __contains__(self, key: object) -> bool:
        try:
            return _as_path(key) in self._data  # type: ignore[arg-type]
        except TypeError:
            return False

    def __iter__(self) -> Iterator[Path]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key, default=None):
        return self._data.get(_as_path(key), default)

    def __eq__(self, other):
        return self is other

    __hash__ = object.__hash__

    # --- locking ------------------------------------------------------------
    @property
    def is_locked(self) -> bool:
        return self._locked

    def locked(self) -> Params:
        """Returns a copy on which creating a new param raises an error."""
        return Params._make(self._data, True)

    def unlocked(self) -> Params:
        """Returns a copy on which new params may be created again."""
        return Params._make(self._data, False)

    # --- functional updates -----------------------------------------------
    def set(self, path: Path, param: Param) -> Params:
        """Returns new Params with ``param`` stored at ``path`` (new or replaced).

        A bare array is wrapped as a trainable ``Param`` with no metadata.
        """
        path = _as_path(path)
        if not isinstance(param, Param):
            param = Param(param)
        data = dict(self._data)
        new = path not in data
        data[path] = param
        if new:
            data = dict(sorted(data.items()))
        return Params._make(data, self._locked)

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
        for path, param in self._data.items():
            (yes if pred(path, param) else no)[path] = param
        return Params._make(yes, self._locked), Params._make(no, self._locked)

    def merge(self, *others: Params) -> Params:
        """Unites disjoint Params (the inverse of :meth:`split`)."""
        data = dict(self._data)
        for other in others:
            if not isinstance(other, Params):
                raise TypeError(f"Params.merge expects Params, got {type(other).__name__}")
            if other._locked != self._locked:
                raise ParamError(
                    f"cannot merge Params with different lock states (this one is_locked="
                    f"{self._locked}, the other is_locked={other._locked}). Call .locked() or "
                    ".unlocked() on one of them so both agree."
                )
            both = data.keys() & other._data.keys()
            if both:
                shown = ", ".join(sorted(path_str(p) for p in both)[:5])
                raise ParamError(
                    f"cannot merge Params that both hold {len(both)} path(s): {shown}. merge() "
                    "joins the disjoint halves of split(); to overwrite values use Params.set()."
                )
            data.update(other._data)
        return Params._make(dict(sorted(data.items())), self._locked)

    def subtree(self, prefix: Path | str) -> Params:
        """The params whose path starts with ``prefix``."""
        prefix = _as_path(prefix)
        n = len(prefix)
        return Params._make({k: v for k, v in self._data.items() if k[:n] == prefix}, self._locked)

    def map(self, fn: Callable[[Path, Param], Any]) -> Params:
        """Applies ``fn(path, param) -> new value`` to every param, keeping flags and metadata."""
        return Params._make({k: p.replace(fn(k, p)) for k, p in self._data.items()}, self._locked)

    # --- pytree -------------------------------------------------------------
    def tree_flatten_with_keys(self):
        children = [(jax.tree_util.DictKey(path_str(k)), v) for k, v in self._data.items()]
        return children, (tuple(self._data), self._locked)

    def tree_flatten(self):
        return list(self._data.values()), (tuple(self._data), self._locked)

    @classmethod
    def tree_unflatten(cls, aux, children):
        keys, locked = aux
        return cls._make(dict(zip(keys, children)), locked)

    def __repr__(self) -> str:
        lock = ", locked" if self._locked else ""
        if not self._data:
            return f"Params({{}}{lock})"
        lines = [f"  {path_str(k)!r}: {v!r}," for k, v in self._data.items()]
        return "Params({\n" + "\n".join(lines) + f"\n}}{lock})"
