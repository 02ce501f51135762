"""Analysis tier: the model traced once per run (:class:`Traces`), observing every module call.

A CLI run builds one :class:`Traces` and hands it to every analysis it runs (summary, cost,
checks, program text): the abstract init, the forward pass and the train step are each traced
once, however many analyses read them. While ``jax.jit(forward).trace`` traces the forward pass (giving both its jaxpr and
the program XLA compiles), an observer registered with blox's public hook
``bx.observe_calls`` (restored in ``finally``) records, per call, the module, method, caller and input/output shapes, and wraps each array
input and output in an identity *tag* primitive. The tags survive into the jaxpr
and make dataflow between modules visible even through plain-JAX code in
between (see :mod:`blox_inspect.analysis.edges`). Tags cost nothing: they lower to their
operand and the FLOP counter gives them zero.
"""

from __future__ import annotations

import itertools
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
from jax.extend import core as jcore
from jax.interpreters import ad, batching, mlir

import blox as bx
from blox_inspect.common.errors import InspectError
from blox_inspect.report.model import TensorSpec

TAG_NAME = "blox_tag"

MSG_MODEL_FAILED = (
    "{path} ({type}{method}) failed while tracing {what}.\n"
    "  inputs that flowed into it: {inputs}\n"
    "  error: {error}: {message}\n"
    "Check the shapes this module receives (the model's inputs, or the module before it). "
    "Run with --debug for the full traceback."
)
MSG_OUTSIDE_MODULES = (
    "{what} failed outside every module ({error}: {message}). Check the code between "
    "module calls and the model's inputs. Run with --debug for the full traceback."
)

# --- the tag primitive ---------------------------------------------------------

tag_p = jcore.Primitive(TAG_NAME)
tag_p.def_impl(lambda x, **_: x)
tag_p.def_abstract_eval(lambda x, **_: x)
mlir.register_lowering(tag_p, lambda ctx, x, **_: [x])


def _tag_batch(args, dims, **params):
    return tag_p.bind(args[0], **params), dims[0]


def _tag_jvp(primals, tangents, **params):
    # Tangents pass through untagged: only the primal dataflow is of interest.
    return tag_p.bind(primals[0], **params), tangents[0]


batching.primitive_batchers[tag_p] = _tag_batch
ad.primitive_jvps[tag_p] = _tag_jvp
ad.primitive_transposes[tag_p] = lambda ct, x, **_: [ct]


def tag(x: Any, site: int, kind: str, index: int, trace: int = 0) -> Any:
    """Marks ``x`` as input (``kind='in'``) or output (``'out'``) ``index`` of call ``site``.

    ``trace`` identifies the trace that made the tag: JAX may reuse an inner jaxpr traced
    earlier (its trace cache), and tags from another trace must not be read as ours.
    """
    return tag_p.bind(x, site=site, kind=kind, index=index, trace=trace)


# Per-dtype answers, worked out once: the observer asks them for every array of every module call.
_EXTENDED: dict[Any, bool] = {}
_DTYPE_NAMES: dict[Any, str] = {}


def _taggable(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    if dtype is None or not isinstance(x, jax.Array):
        return False
    extended = _EXTENDED.get(dtype)
    if extended is None:
        # Typed PRNG keys have extended dtypes; leave them alone.
        extended = _EXTENDED[dtype] = bool(jax.dtypes.issubdtype(dtype, jax.dtypes.extended))
    return not extended


def spec_of(x: Any) -> TensorSpec:
    dtype = x.dtype
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype)
    return TensorSpec(shape=[int(d) for d in np.shape(x)], dtype=name)


# --- recording -----------------------------------------------------------------


@dataclass
class Call:
    """One observed module call (a *site*: its tags carry ``site=index``)."""

    module: bx.Module
    method: str
    caller: bx.Module | None
    inputs: list[TensorSpec]
    outputs: list[TensorSpec] = field(default_factory=list)


@dataclass
class Trace:
    """What one traced forward pass saw.

    The traced function is ``(params, *inputs) -> (outputs, changed)``: ``changed`` holds the param
    values the model returned changed (RNG counters, batch statistics), keyed by path string, so the
    jaxpr shows every state update while unchanged params cost no output. ``lower()`` lowers the
    outputs alone, the program a user's jitted forward pass compiles to.
    """

    jaxpr: Any  # ClosedJaxpr with tags; flat args = param leaves, then input leaves
    traced: Any  # jax.stages.Traced of the same forward pass
    n_param_leaves: int
    calls: list[Call]
    id: int  # the trace id its tags carry
    out_specs: list[TensorSpec]  # the model's outputs (the first ``len(out_specs)`` jaxpr outputs)
    out_tree: Any
    returned: list[str] = field(default_factory=list)  # path strings of the Params the model returned
    changed: list[str] = field(
        default_factory=list
    )  # of those, the ones with a new value (jaxpr outputs after out_specs)

    def lower(self) -> Any:
        """The forward program without its state outputs, lowered for XLA."""
        if not self.changed:
            return self.traced.lower()
        n_out = len(self.out_specs)
        closed = self.jaxpr

        def forward(*leaves: Any) -> list:
            # Replays the recorded jaxpr (not the model's code): XLA drops the unused state updates.
            return jcore.jaxpr_as_fun(closed)(*leaves)[:n_out]

        avals = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for v in closed.jaxpr.invars]
        return jax.jit(forward).trace(*avals).lower()


def _is_params(x: Any) -> bool:
    return isinstance(x, bx.Params)


def _tag_arrays(tree: Any, site: int, kind: str, trace: int) -> tuple[Any, list[TensorSpec]]:
    """Tags every taggable array leaf (Params are skipped); returns the new tree and every array's spec."""
    if isinstance(tree, jax.Array):  # the usual output: one array, no tree to flatten and rebuild
        spec = spec_of(tree)
        return (tag(tree, site, kind, 0, trace) if _taggable(tree) else tree), [spec]
    leaves, treedef = jax.tree.flatten(tree, is_leaf=_is_params)
    specs: list[TensorSpec] = []
    out = []
    for leaf in leaves:
        if _is_array(leaf):
            # Indices count every array (PRNG keys too) so they match the recorded specs.
            out.append(tag(leaf, site, kind, len(specs), trace) if _taggable(leaf) else leaf)
            specs.append(spec_of(leaf))
        else:
            out.append(leaf)
    return jax.tree.unflatten(treedef, out), specs


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") and not _is_params(x)


def _array_specs(tree: Any) -> list[TensorSpec]:
    leaves = jax.tree.leaves(tree, is_leaf=_is_params)
    return [spec_of(x) for x in leaves if _is_array(x)]


_TRACE_IDS = itertools.count(1)


class _Observer:
    """Records every module call and tags its array inputs and outputs (a ``bx.observe_calls`` observer).

    ``stack`` is the scope of each module running now, innermost last, so a warning raised while
    tracing is attributed to its module.
    """

    def __init__(self):
        self.id = next(_TRACE_IDS)
        self.calls: list[Call] = []
        self.stack: list[str] = []
        self.failure: tuple[Call, BaseException] | None = None

    def __call__(self, call: bx.ModuleCall, proceed):
        site = len(self.calls)
        self.stack.append(call.module.scope_name)
        try:
            return self._tagged(call, proceed, site)
        finally:
            self.stack.pop()

    @property
    def called(self) -> set[str]:
        """The scope of every module that ran (as :class:`_FailureWatch` records it)."""
        return {c.module.scope_name for c in self.calls}

    def _tagged(self, call: bx.ModuleCall, proceed, site: int):
        if len(call.args) == 1 and not call.kwargs:  # the usual input: one array (or one tree)
            arg, inputs = _tag_arrays(call.args[0], site, "in", self.id)
            args, kwargs = (arg,), {}
        else:
            (args, kwargs), inputs = _tag_arrays((call.args, call.kwargs), site, "in", self.id)
        record = Call(module=call.module, method=call.method, caller=call.caller, inputs=inputs)
        self.calls.append(record)
        try:
            out = proceed(call.params, *args, **kwargs)
        except BaseException as e:
            if self.failure is None:  # the innermost module sees the exception first
                self.failure = (record, e)
            raise
        if isinstance(out, tuple) and len(out) == 2 and _is_params(out[1]):
            value, record.outputs = _tag_arrays(out[0], site, "out", self.id)
            return value, out[1]
        out, record.outputs = _tag_arrays(out, site, "out", self.id)
        return out


def abstractify(tree: Any) -> Any:
    """Every array leaf -> ``jax.ShapeDtypeStruct`` without a sharding (Params keep their structure; weak
    types are kept). Leaves that already are one (what ``jax.eval_shape`` returns) are kept as they are."""
    return jax.tree.map(_abstract, tree)


def _abstract(x: Any) -> jax.ShapeDtypeStruct:
    if type(x) is jax.ShapeDtypeStruct and x.sharding is None:
        return x  # immutable: sharing it is safe, and building one per param is slow
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype, weak_type=bool(getattr(x, "weak_type", False)))


class _FailureWatch:
    """Remembers the innermost module call that raised (a ``bx.observe_calls`` observer that adds no tags).

    For traces only read for their shapes or FLOPs (the abstract init, the train step): the shapes of a
    call's inputs are worked out only when it fails, and nothing is added to the program. ``stack`` names
    the modules running now, for warnings.
    """

    def __init__(self):
        self.failure: tuple[Call, BaseException] | None = None
        self.called: set[str] = set()  # the scope of every module that ran (the dead-module check reads it)
        self.stack: list[str] = []

    def __call__(self, call: bx.ModuleCall, proceed):
        self.called.add(call.module.scope_name)
        self.stack.append(call.module.scope_name)
        try:
            return proceed(call.params, *call.args, **call.kwargs)
        except BaseException as e:
            if self.failure is None:  # the innermost module sees the exception first
                inputs = _array_specs((call.args, call.kwargs))
                self.failure = (Call(call.module, call.method, call.caller, inputs), e)
            raise
        finally:
            self.stack.pop()


# Float64 requested with x64 off: JAX warns and truncates. The warning names no module; the
# observer's stack does (the dtype check reports it).
_F64_WARNING = re.compile(r"requested dtype (float64|complex128)")


class Traces:
    """One model's abstract params and programs, each traced once and shared by every analysis of a run.

    Every trace runs under one :class:`_Observer`-style hook, so each also records which modules ran
    (``called``) and which module asked for float64 while x64 is off (``dtype_warnings``).

    Args:
        loaded: the model (see :func:`blox_inspect.load_model`).
        params: Params to trace with (e.g. a checkpoint's, abstract); default: the model's own
            abstract init with ``seed``.
    """

    def __init__(self, loaded: Any, params: bx.Params | None = None, seed: int = 0):
        self.loaded = loaded
        self.seed = seed
        self.called: set[str] = set()
        self.dtype_warnings: list[tuple[str, str]] = []  # (message, module scope)
        self._params = None if params is None else abstractify(params)
        self._cache: dict[str, Any] = {}

    def run(self, fn, *args: Any, what: str = "the forward pass", record: bool = True) -> tuple[Any, Any]:
        """Runs ``fn(*args)`` with module calls observed; model failures become InspectErrors.

        ``record=True`` records every call and tags its arrays (what the forward pass's report needs);
        ``False`` only names the module that failed, at no cost per call. The hook is restored in
        ``finally``, so it never outlives this call, even when the user's code raises.
        """
        observer = _Observer() if record else _FailureWatch()
        shown = warnings.showwarning

        def hook(message, category, filename, lineno, file=None, line=None):
            if _F64_WARNING.search(str(message)):
                self.dtype_warnings.append((str(message).split(".")[0], observer.stack[-1] if observer.stack else ""))
            else:
                shown(message, category, filename, lineno, file, line)

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.showwarning = hook
                with bx.observe_calls(observer):
                    return fn(*args), observer
        except InspectError:
            raise
        except Exception as e:
            raise _model_error(observer.failure, e, what) from e
        finally:
            self.called.update(observer.called)

    @property
    def params(self) -> bx.Params:
        """Abstract Params (``jax.ShapeDtypeStruct`` values)."""
        if self._params is None:
            # Init runs the model too: its failures get the same module-level message.
            params, _ = self.run(
                self.loaded.abstract_params, self.seed, what="the model's init (abstract)", record=False
            )
            self._params = abstractify(params)
        return self._params

    @property
    def forward(self) -> Trace:
        """The observed forward pass (see :class:`Trace`)."""
        if "forward" not in self._cache:
            self._cache["forward"] = self._trace_forward()
        return self._cache["forward"]

    def train_step(self) -> Any:
        """The whole train step (forward, backward, Adam), traced once: a ``jax.stages.Traced``."""
        if "train_step" not in self._cache:
            from blox_inspect.analysis.train import make_train_step

            ts = make_train_step(self.loaded)
            args = ts.abstract_args(self.loaded, self.params)
            self._cache["train_step"], _ = self.run(ts.jitted().trace, *args, what="the train step", record=False)
        return self._cache["train_step"]

    def _trace_forward(self) -> Trace:
        model, kwargs, params = self.loaded.model, self.loaded.kwargs, self.params
        inputs = abstractify(tuple(self.loaded.inputs))
        returned: list[str] = []
        changed: list[str] = []

        def forward(params, *inputs):
            out, new = model(params, *inputs, **kwargs)
            returned[:] = [bx.path_str(p) for p in new]
            state = {}
            for path, p in new.items():
                old = params.get(path)
                if old is None or p.value is not old.value:  # a tracer identical to the input is no update
                    state[bx.path_str(path)] = p.value
            changed[:] = sorted(state)  # the order jax flattens a dict in
            return out, state

        # jit(...).trace gives the jaxpr and, from the same trace, the program XLA compiles.
        traced, observer = self.run(jax.jit(forward).trace, params, *inputs)
        out_leaves, out_tree = jax.tree.flatten(traced.out_info[0])
        return Trace(
            jaxpr=traced.jaxpr,
            traced=traced,
            n_param_leaves=len(jax.tree.leaves(params)),
            calls=observer.calls,
            id=observer.id,
            out_specs=[spec_of(x) for x in out_leaves],
            out_tree=out_tree,
            returned=returned,
            changed=changed,
        )


def _model_error(failure: tuple[Call, BaseException] | None, e: BaseException, what: str) -> InspectError:
    message = str(e).strip()
    if len(message) > 800:
        message = message[:800] + " ..."
    if failure is None:
        return InspectError(MSG_OUTSIDE_MODULES.format(what=what, error=type(e).__name__, message=message))
    call, _ = failure
    method = "" if call.method == "__call__" else f".{call.method}"
    return InspectError(
        MSG_MODEL_FAILED.format(
            path=call.module.scope_name,
            type=type(call.module).__name__,
            method=method,
            inputs=", ".join(map(str, call.inputs)) or "(no arrays)",
            error=type(e).__name__,
            message=message,
            what=what,
        )
    )
