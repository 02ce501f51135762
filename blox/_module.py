"""Module: a pure function bound to one Graph node, with lazily created params."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

from ._errors import LockedParamsError, ParamError
from ._graph import Graph
from ._params import Param, Params
from ._paths import Path, path_str

MSG_LOCKED = (
    "{where} ({type}): param {name!r} does not exist and Params are locked, so it cannot be "
    "created. Locked Params hold a finished model: call params.unlocked() to initialise new "
    "params, or check that the model's graph names match the ones the params were built with."
)
MSG_MISSING = (
    "{where} ({type}): param {name!r} does not exist, and get_param was called without "
    "shape= and init=, so it cannot be created. Pass shape and init, or load Params that hold it."
)
MSG_SHAPE = (
    "{where} ({type}): {name} exists with shape {got} but this call needs {want}; inputs "
    "changed width? Rebuild params or rename the layer."
)
MSG_NO_RNG = (
    "{where} ({type}): the initializer of param {name!r} needs a PRNG key, but this module was "
    "built without an rng. Pass rng=<a seeded bx.Rng> when constructing it, or use a constant initializer."
)
MSG_DTYPE = (
    "{where} ({type}): {name} exists with dtype {got} but this call needs {want}. Cast the "
    "stored params (jax.tree.map) or pass the matching dtype to the layer."
)


@dataclass(frozen=True)
class ModuleCall:
    """One module call, as an observer of :func:`observe_calls` sees it.

    Attributes:
        module: the module being called.
        method: the method's name (``'__call__'`` for a plain call).
        caller: the module whose call is running around this one (None at top level).
        params, args, kwargs: the call's arguments.
    """

    module: Module
    method: str
    caller: Module | None
    params: Params
    args: tuple
    kwargs: dict


@dataclass(frozen=True)
class _CallState:
    observers: tuple = ()
    stack: tuple = ()  # modules whose calls are running in this context, outermost first


_NO_CALLS = _CallState()  # frozen, so one shared default is safe
_CALLS: ContextVar[_CallState] = ContextVar("blox_module_calls", default=_NO_CALLS)  # noqa: B039


@contextlib.contextmanager
def observe_calls(observer: Callable[[ModuleCall, Callable[..., Any]], Any]) -> Iterator[None]:
    """Watches every module call made in this context (thread or async task) while the block runs.

    ``observer(call, proceed)`` is called for each module call, with a :class:`ModuleCall` and a
    function ``proceed(params, *args, **kwargs)`` that runs the call (and any observers registered
    inside this one) and returns its result; the observer returns what the call should return. It
    may record the call, change its arguments or wrap its outputs. Observers stack: one registered
    inside another's block runs closer to the call. A module re-entering itself (``super().__call__``,
    or one of its own methods) is one call and is not observed again. The previous state is restored
    in ``finally``, even when the block raises; other threads and tasks never see the observer.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net')
        >>> rng = bx.Rng(g / 'rng')
        >>> model = bx.Sequential(g / 'mlp', [bx.Linear(g / 'a', 4, rng), jnp.tanh, bx.Linear(g / 'b', 2, rng)])
        >>> params, seen = rng.seed(bx.Params(), 0), []
        >>> def record(call, proceed):
        ...     seen.append(call.module.graph.path_str)
        ...     return proceed(call.params, *call.args, **call.kwargs)
        >>> with bx.observe_calls(record):
        ...     _ = model(params, jnp.ones((1, 3)))
        >>> seen
        ['net/mlp', 'net/a', 'net/rng', 'net/rng', 'net/b', 'net/rng', 'net/rng']
    """
    state = _CALLS.get()
    token = _CALLS.set(_CallState(state.observers + (observer,), state.stack))
    try:
        yield
    finally:
        _CALLS.reset(token)


def scope_for(path: Path, caller_path: Path | None) -> str:
    """The ``jax.named_scope`` a module at ``path`` opens when called inside ``caller_path``'s call.

    A module called inside its graph ancestor's call opens its path relative to the ancestor, so
    name stacks (and HLO ``op_name`` metadata) spell each module's path once:
    ``gpt2/transformer/h/0/attn``. Any other call (top level, or a module injected from another
    part of the graph) opens its full path.

    Example:
        >>> scope_for(('gpt2', 'h', '0'), ('gpt2',)), scope_for(('enc', 'emb'), ('dec',))
        ('h/0', 'enc/emb')
    """
    if caller_path is not None and len(caller_path) < len(path) and path[: len(caller_path)] == caller_path:
        return path_str(path[len(caller_path) :])
    return path_str(path)


# A JAX user context, not a plain ContextVar: JAX keys its trace caches (jit, make_jaxpr, scan bodies)
# on it, so a function traced inside shape_only() never hands its placeholders to a trace outside.
_SHAPE_ONLY_CONTEXT = jax.make_user_context(default_value=False)


def in_shape_only() -> bool:
    """Whether :func:`shape_only` is on here."""
    return _SHAPE_ONLY_CONTEXT.value


@contextlib.contextmanager
def shape_only() -> Iterator[None]:
    """Within this context an init traces only what it needs for the params' shapes and dtypes.

    For ``jax.eval_shape`` of an init (what blox-inspect runs), whose values are never computed: a new
    param is a placeholder of its initializer's output shape and dtype (each initializer is traced once
    per signature to learn them, so its errors still surface), and a draw from a seeded ``bx.Rng``
    returns the seed's shape and dtype without a ``fold_in`` or a counter update. A ``bx.Linear``'s
    arithmetic is one placeholder of its output's type, too (:func:`shape_only_result`). The Params come
    out with the same paths, shapes, dtypes and flags as a real init's, and the outputs with the same
    shapes and dtypes. A placeholder cannot be computed: lowering or evaluating one raises. JAX's trace
    caches see the mode, so a jitted function traced inside it is traced afresh outside.
    """
    with _SHAPE_ONLY_CONTEXT(True):
        yield


def _placeholder_abstract(*, aval: Any) -> Any:
    return aval


def _placeholder_impl(*, aval: Any) -> Any:
    raise ParamError(
        f"a bx.shape_only() placeholder ({aval.str_short()}) was computed. shape_only() is for "
        "jax.eval_shape of an init, whose values are never computed: run the init outside it."
    )


_placeholder_p = jcore.Primitive("blox_shape_only_param")
_placeholder_p.def_abstract_eval(_placeholder_abstract)
_placeholder_p.def_impl(_placeholder_impl)


@functools.lru_cache(maxsize=4096)
def _init_aval(init: Callable, key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    spec = None if key is None else _spec(key)
    out = jax.eval_shape(lambda k: init(k, shape, dtype), spec)
    return jax.core.ShapedArray(out.shape, out.dtype, weak_type=out.weak_type)


def _spec(aval: Any) -> jax.ShapeDtypeStruct:
    """A ShapeDtypeStruct of an aval's type, built on a cache miss only (it checks its arguments: slow)."""
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)


def _type_of(x: Any) -> Any:
    """A cache key for an array's type: its aval (hashable, cheap) or, for other arrays, a ShapeDtypeStruct."""
    aval = getattr(x, "aval", None)
    return aval if isinstance(aval, jax.core.ShapedArray) else jax.ShapeDtypeStruct(jnp.shape(x), x.dtype)


def _shape_only_value(init: Callable, key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """A placeholder shaped like ``init(key, shape, dtype)`` (see :func:`shape_only`)."""
    spec = None if key is None else _type_of(key)
    try:
        hash((init, dtype))
    except TypeError:  # a cache key must be hashable, as _initial_value's static arguments must
        aval = _init_aval.__wrapped__(init, spec, shape, dtype)
    else:
        aval = _init_aval(init, spec, shape, dtype)
    return _placeholder_p.bind(aval=aval)


def shape_only_result(fn: Callable, *args: Any) -> Any:
    """``fn(*args)``; under :func:`shape_only`, one placeholder per output of ``fn`` instead.

    For a layer's arithmetic, of which a shape-only init needs only the output's shape and dtype:
    ``fn`` is traced once per signature of its arguments (JAX arrays by shape, dtype and weak type;
    anything else, e.g. ``None`` or a precision, by value) to learn them, so its errors still surface,
    and then each call stages one operation however many ``fn`` would. ``fn`` must depend on nothing
    but its arguments (a module-level function, not a closure over changing state). Arguments this
    cannot key a cache by (unhashable ones, arrays with a sharding) run ``fn`` itself.
    """
    if not _SHAPE_ONLY_CONTEXT.value:
        return fn(*args)
    key = []
    for a in args:
        if isinstance(a, jax.Array):
            aval = a.aval
            if not aval.sharding.mesh.empty:
                return fn(*args)
            key.append(aval)
        else:
            try:
                hash(a)
            except TypeError:
                return fn(*args)
            key.append(_Static(type(a), a))
    avals, treedef = _result_avals(fn, tuple(key))
    return jax.tree.unflatten(treedef, [_placeholder_p.bind(aval=aval) for aval in avals])


@dataclass(frozen=True)
class _Static:
    """A non-array argument of :func:`shape_only_result`, in its cache key by type and value (1 is not True)."""

    kind: type
    value: Any


@functools.lru_cache(maxsize=4096)
def _result_avals(fn: Callable, key: tuple) -> tuple[list[Any], Any]:
    arrays = [_spec(k) for k in key if not isinstance(k, _Static)]

    def call(*traced):
        it = iter(traced)
        return fn(*(k.value if isinstance(k, _Static) else next(it) for k in key))

    leaves, treedef = jax.tree.flatten(jax.eval_shape(call, *arrays))
    return [jax.core.ShapedArray(x.shape, x.dtype, weak_type=x.weak_type) for x in leaves], treedef


def _bind_observer(observer, module, method_name, caller, proceed):
    def observed(params, *args, **kwargs):
        return observer(ModuleCall(module, method_name, caller, params, args, kwargs), proceed)

    return observed


def _scoped(method: Callable) -> Callable:
    """``method`` run inside its module's named scope, through the observers of this context.

    Every module call nests its frames in the one around it, so a deep model meets Python's recursion
    limit: the whole call is this one wrapper, and the first observer is called directly (its
    ``proceed`` runs the others), leaving one frame per observer and two for the call itself.
    """
    method_name = method.__name__

    @functools.wraps(method)
    def wrapper(self, params, *args, **kwargs):
        state = _CALLS.get()
        if any(m is self for m in state.stack):
            # A subclass calling super().__call__, or a module calling its own method: one call.
            return method(self, params, *args, **kwargs)
        caller = state.stack[-1] if state.stack else None
        scope = scope_for(self.path, None if caller is None else caller.path)

        def run(params, *args, **kwargs):
            token = _CALLS.set(_CallState(state.observers, state.stack + (self,)))
            try:
                with jax.named_scope(scope):
                    return method(self, params, *args, **kwargs)
            finally:
                _CALLS.reset(token)

        observers = state.observers
        if not observers:
            return run(params, *args, **kwargs)
        proceed = run
        for observer in reversed(observers[1:]):
            proceed = _bind_observer(observer, self, method_name, caller, proceed)
        return observers[0](ModuleCall(self, method_name, caller, params, args, kwargs), proceed)

    wrapper.__blox_scoped__ = True  # type: ignore[attr-defined]
    return wrapper


def _takes_params(fn: Callable) -> bool:
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False
    return len(names) >= 2 and names[1] == "params"


def _record_init(init: Callable) -> Callable:
    sig = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        if "_config" not in self.__dict__:
            try:
                bound = sig.bind(self, *args, **kwargs)
                config = dict(bound.arguments)
                config.pop(next(iter(sig.parameters)), None)  # self
                config.pop("graph", None)
                for pname, param in sig.parameters.items():
                    if param.kind is inspect.Parameter.VAR_KEYWORD and pname in config:
                        config.update(config.pop(pname))
            except TypeError:
                config = {}
            self.__dict__["_config"] = config
        try:
            init(self, *args, **kwargs)
        except BaseException:
            # A constructor that fails (e.g. a bad rate) must not leave its node occupied,
            # or the user's corrected retry would hit "node already holds ...".
            graph = self.__dict__.get("graph")
            if isinstance(graph, Graph) and graph.module is self:
                graph._unbind()
            raise

    return wrapper


class Module:
    """Base class of every blox module.

    A module is bound to one :class:`Graph` node and is a pure function of
    ``(params, inputs)`` returning ``(outputs, params)``. Its parameters live
    in :class:`Params` under ``graph.path + (name,)`` and are created lazily on
    the first call, with shapes inferred from the inputs.

    Every public method whose first argument is ``params`` (``__call__``
    included) runs inside ``jax.named_scope`` of the module's path, so
    jaxprs, HLO metadata and profiler traces name the module.

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx
        >>> class Scale(bx.Module):
        ...     def __call__(self, params, x):
        ...         s, params = self.get_param(params, 's', (), jax.nn.initializers.ones)
        ...         return x * s, params
        >>> g = bx.Graph('net')
        >>> m = Scale(g.child('scale'))
        >>> y, params = m(bx.Params(), jnp.arange(3.0))
        >>> list(params), m.config
        ([('net', 'scale', 's')], {})
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _record_init(cls.__dict__["__init__"])
        for name, attr in list(cls.__dict__.items()):
            if not callable(attr) or getattr(attr, "__blox_scoped__", False):
                continue
            if isinstance(attr, (staticmethod, classmethod, type)):
                continue
            if (name == "__call__" or not name.startswith("_")) and _takes_params(attr):
                setattr(cls, name, _scoped(attr))

    def __init__(self, graph: Graph):
        if not isinstance(graph, Graph):
            raise TypeError(
                f"{type(self).__name__}: the first argument must be a blox Graph node "
                f"(e.g. graph.child('name')), got {type(graph).__name__}"
            )
        graph._bind(self)
        self.__dict__["_config"] = self.__dict__.get("_config", {})
        self.graph = graph

    # --- identity -----------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.graph.path

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def scope_name(self) -> str:
        """This module's escaped, ``/``-joined path: what name stacks resolve to (see :func:`scope_for`)."""
        return self.graph.path_str

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments given explicitly (``graph`` excluded)."""
        return dict(self.__dict__.get("_config", {}))

    def param_path(self, name: str) -> Path:
        return self.graph.path + (name,)

    # --- params -------------------------------------------------------------
    def _where(self) -> dict[str, str]:
        return {"where": path_str(self.path), "type": type(self).__name__}

    def get_param(
        self,
        params: Params,
        name: str,
        shape: tuple[int, ...] | None = None,
        init: Callable | None = None,
        dtype: Any = jnp.float32,
        trainable: bool = True,
        metadata: Mapping | None = None,
        rng: Any = None,
    ) -> tuple[Any, Params]:
        """Returns ``(value, params)``, creating the param on first use.

        ``init(key, shape, dtype)`` follows ``jax.nn.initializers``; the key is
        drawn from ``rng`` (an :class:`Rng` module) when given, else it is None.
        An existing param must match ``shape`` and ``dtype`` when they are given.
        """
        if not isinstance(params, Params):
            raise TypeError(
                f"{path_str(self.path)} ({type(self).__name__}): expected blox Params as the first "
                f"argument, got {type(params).__name__}. Call modules as module(params, *inputs)."
            )
        path = self.param_path(name)
        found = params.get(path)
        if found is not None:
            value = found.value
            if shape is not None and tuple(value.shape) != tuple(shape):
                raise ParamError(
                    MSG_SHAPE.format(**self._where(), name=name, got=tuple(value.shape), want=tuple(shape))
                )
            if dtype is not None and jnp.dtype(value.dtype) != _dtype(dtype):
                raise ParamError(MSG_DTYPE.format(**self._where(), name=name, got=value.dtype, want=_dtype(dtype)))
            return value, params
        if params.is_locked:
            raise LockedParamsError(MSG_LOCKED.format(**self._where(), name=name))
        if shape is None or init is None:
            raise ParamError(MSG_MISSING.format(**self._where(), name=name))
        shape_only = _SHAPE_ONLY_CONTEXT.value
        if rng is not None:
            key, params = rng(params)
            value = (_shape_only_value if shape_only else _initial_value)(init, key, tuple(shape), dtype)
        else:
            # Constant initialisers (zeros, ones) need no key; random ones fail on None.
            try:
                if shape_only:
                    value = _shape_only_value(init, None, tuple(shape), dtype)
                else:
                    value = init(None, tuple(shape), dtype)
            except (TypeError, ValueError) as e:
                raise ParamError(MSG_NO_RNG.format(**self._where(), name=name)) from e
        if tuple(value.shape) != tuple(shape):
            raise ParamError(
                f"{path_str(self.path)} ({type(self).__name__}): init for {name!r} returned shape "
                f"{tuple(value.shape)}, expected {tuple(shape)}. Check the initializer."
            )
        return value, params.set(path, Param(value, trainable, metadata))

    def set_param(
        self,
        params: Params,
        name: str,
        value: Any,
        trainable: bool | None = None,
        metadata: Mapping | None = None,
    ) -> Params:
        """Returns Params with ``name`` set to ``value`` (state updates, e.g. running stats).

        An existing param keeps its flags unless new ones are given, and its
        shape and dtype must not change. A new param needs unlocked Params.
        """
        path = self.param_path(name)
        value = jnp.asarray(value)
        found = params.get(path)
        if found is None:
            if params.is_locked:
                raise LockedParamsError(MSG_LOCKED.format(**self._where(), name=name))
            return params.set(path, Param(value, True if trainable is None else trainable, metadata))
        old = found.value
        if tuple(jnp.shape(value)) != tuple(old.shape):
            raise ParamError(
                MSG_SHAPE.format(**self._where(), name=name, got=tuple(old.shape), want=tuple(jnp.shape(value)))
            )
        if jnp.dtype(value.dtype) != jnp.dtype(old.dtype):
            raise ParamError(MSG_DTYPE.format(**self._where(), name=name, got=old.dtype, want=value.dtype))
        return params.set(
            path,
            Param(
                value,
                found.trainable if trainable is None else trainable,
                found.metadata if metadata is None else metadata,
            ),
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.config.items())
        return f"{type(self).__name__}({args}) at {path_str(self.path)!r}"


def _initializer(init: Callable, key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    return init(key, shape, dtype)


# One jitted caller for every initializer, the initializer itself a static argument: JAX's trace cache
# (bounded, keyed weakly on this function) then holds one traced initializer per (init, shape, dtype).
_initializer_jit = jax.jit(_initializer, static_argnums=(0, 2, 3))


def _initial_value(init: Callable, key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """``init(key, shape, dtype)``; inside a trace, through a jitted call that JAX traces once per signature.

    Tracing ``lecun_normal`` stages about ten ops with a few hundred microseconds of Python each, for
    every param; a cached jitted call stages one op (8x cheaper), so an abstract init of 10,000 layers
    (what blox-inspect runs) no longer spends most of its time in the initializers. The program is the
    same once XLA inlines the call. A concrete key (eager init) calls the initializer directly: no compile.
    """
    if isinstance(key, jax.core.Tracer):
        try:
            hash((init, dtype))
        except TypeError:  # a static argument must be hashable
            return init(key, shape, dtype)
        return _initializer_jit(init, key, shape, dtype)
    return init(key, shape, dtype)


def lead(v: Any, ndim: int) -> Any:
    """Adds leading unit axes so ``v`` broadcasts explicitly against an ``ndim``-rank array.

    blox is rank-promotion clean: it runs under ``jax_numpy_rank_promotion='raise'``.
    """
    shape = tuple(jnp.shape(v))
    if isinstance(v, jax.Array):
        # What jnp.reshape ends in, without its argument checks: this runs for every bias add.
        return jax.lax.reshape(v, (1,) * (ndim - len(shape)) + shape)
    return jnp.reshape(v, (1,) * (ndim - len(shape)) + shape)


def matmul(x: Any, kernel: Any, precision: Any = None) -> Any:
    """``jnp.matmul(x, kernel)`` for a 2-D kernel over the last axis of ``x``.

    Float arrays of one dtype, neither weakly typed, go straight to ``lax.dot_general``, the one op
    ``jnp.matmul`` stages for them (same dimension numbers, precision and result dtype), without its
    jitted wrapper: a dense layer runs this in every trace of the model. Anything else is ``jnp.matmul``.
    """
    if isinstance(x, jax.Array) and isinstance(kernel, jax.Array):
        xa, ka = x.aval, kernel.aval
        if (
            ka.ndim == 2
            and xa.ndim >= 1
            and xa.dtype == ka.dtype
            and not (xa.weak_type or ka.weak_type)
            and jnp.issubdtype(xa.dtype, jnp.floating)
        ):
            dims = (((xa.ndim - 1,), (0,)), ((), ()))
            return jax.lax.dot_general(x, kernel, dims, precision=precision, preferred_element_type=xa.dtype)
    return jnp.matmul(x, kernel, precision=precision)


def add_lead(y: Any, b: Any) -> Any:
    """``y + lead(b, y.ndim)``: a bias added over the trailing axes.

    Arrays of one dtype and weak type go straight to ``lax.add``, the op ``+`` ends in (same program,
    without ``jnp``'s promotion checks and jitted wrapper: per layer, in every trace of the model).
    """
    b = lead(b, jnp.ndim(y))
    if isinstance(y, jax.Array) and isinstance(b, jax.Array):
        ya, ba = y.aval, b.aval
        if ya.dtype == ba.dtype and ya.weak_type == ba.weak_type:
            return jax.lax.add(y, b)
    return y + b


def _dtype(d):
    try:
        return jnp.dtype(d)
    except TypeError:
        return d


def _short(v: Any) -> str:
    if isinstance(v, Module):
        return f"<{type(v).__name__} {path_str(v.path)}>"
    if callable(v):
        return getattr(v, "__name__", type(v).__name__)
    return repr(v)
