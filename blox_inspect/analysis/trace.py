"""Analysis tier: one abstract trace of a model's forward pass, observing every module call.

While ``jax.jit(forward).trace`` traces the forward pass (giving both its jaxpr and
the program XLA compiles), an observer registered with blox's public hook
``bx.observe_calls`` (restored in ``finally``) records, per call, the module, method, caller and input/output shapes, and wraps each array
input and output in an identity *tag* primitive. The tags survive into the jaxpr
and make dataflow between modules visible even through plain-JAX code in
between (see :mod:`blox_inspect.analysis.edges`). Tags cost nothing: they lower to their
operand and the FLOP counter gives them zero.
"""

from __future__ import annotations

import itertools
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
    """What one traced forward pass saw."""

    jaxpr: Any  # ClosedJaxpr with tags; flat args = param leaves, then input leaves
    traced: Any  # jax.stages.Traced of the same forward pass: .lower() for XLA's numbers
    n_param_leaves: int
    calls: list[Call]
    id: int  # the trace id its tags carry
    out_specs: list[TensorSpec]
    out_tree: Any


def _is_params(x: Any) -> bool:
    return isinstance(x, bx.Params)


def _tag_arrays(tree: Any, site: int, kind: str, trace: int) -> tuple[Any, list[TensorSpec]]:
    """Tags every taggable array leaf (Params are skipped); returns the new tree and every array's spec."""
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
    """Records every module call and tags its array inputs and outputs (a ``bx.observe_calls`` observer)."""

    def __init__(self):
        self.id = next(_TRACE_IDS)
        self.calls: list[Call] = []
        self.failure: tuple[Call, BaseException] | None = None

    def __call__(self, call: bx.ModuleCall, proceed):
        site = len(self.calls)
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
    """Every array leaf -> ``jax.ShapeDtypeStruct`` (Params keep their structure)."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), tree)


class _FailureWatch:
    """Remembers the innermost module call that raised (a ``bx.observe_calls`` observer that adds no tags).

    For traces only read for their shapes or FLOPs (the abstract init, the train step): the shapes of a
    call's inputs are worked out only when it fails, and nothing is added to the program.
    """

    def __init__(self):
        self.failure: tuple[Call, BaseException] | None = None

    def __call__(self, call: bx.ModuleCall, proceed):
        try:
            return proceed(call.params, *call.args, **call.kwargs)
        except BaseException as e:
            if self.failure is None:  # the innermost module sees the exception first
                inputs = _array_specs((call.args, call.kwargs))
                self.failure = (Call(call.module, call.method, call.caller, inputs), e)
            raise


def run_observed(fn, *args: Any, what: str = "the forward pass", record: bool = True) -> tuple[Any, Any]:
    """Runs ``fn(*args)`` with module calls observed; model failures become InspectErrors.

    ``record=True`` records every call and tags its arrays (what the forward pass's report needs);
    ``False`` only names the module that failed, at no cost per call. The hook is restored in
    ``finally``, so it never outlives this call, even when the user's code raises.
    """
    observer = _Observer() if record else _FailureWatch()
    try:
        with bx.observe_calls(observer):
            return fn(*args), observer
    except InspectError:
        raise
    except Exception as e:
        raise _model_error(observer.failure, e, what) from e


def trace_forward(model: bx.Module, params: bx.Params, inputs: tuple, kwargs: dict) -> Trace:
    """Traces ``model(params, *inputs, **kwargs)`` once (``jax.jit(...).trace``), observing module calls.

    ``params`` and ``inputs`` may be abstract (``jax.ShapeDtypeStruct`` leaves). A failure
    inside the model becomes an :class:`InspectError` naming the innermost module.
    """
    params = abstractify(params)
    inputs = abstractify(tuple(inputs))

    def forward(params, *inputs):
        out, _ = model(params, *inputs, **kwargs)
        return out

    # jit(...).trace gives the jaxpr and, from the same trace, the program XLA compiles.
    traced, observer = run_observed(jax.jit(forward).trace, params, *inputs)
    out_leaves, out_tree = jax.tree.flatten(traced.out_info)
    return Trace(
        jaxpr=traced.jaxpr,
        traced=traced,
        n_param_leaves=len(jax.tree.leaves(params)),
        calls=observer.calls,
        id=observer.id,
        out_specs=[spec_of(x) for x in out_leaves],
        out_tree=out_tree,
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
