"""CheckContext: the run's shared traces (forward, train step) seen as flat programs, shared by every check.

Everything is abstract: Params come from ``jax.eval_shape`` and the programs are jaxprs. The traces
are the run's :class:`~blox_inspect.analysis.trace.Traces`, so a command that also summarises or
costs the model traces it once; their observer records which modules ran and attributes
dtype-truncation warnings to the module that raised them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax

import blox as bx
from blox._rng import Rng
from blox_inspect.analysis.flat_program import FlatProgram, is_inexact
from blox_inspect.analysis.trace import Traces
from blox_inspect.analysis.train import make_train_step
from blox_inspect.common.errors import InspectError
from blox_inspect.common.units import array_bytes
from blox_inspect.load.model_file import LoadedModel

MSG_VMAP_FAILED = (
    "{source}: BLOX_CHECK_VMAP is set, but tracing the model under jax.vmap (a new leading axis on every input, "
    "params shared) raised {kind}: {error}. Make the model vmappable that way, or remove BLOX_CHECK_VMAP."
)


@dataclass
class Trace:
    """One traced program and how its inputs and outputs map to the model."""

    program: FlatProgram
    param_vars: dict[str, Any]  # param path string -> invar
    input_vars: list  # model input invars (leaves)
    outputs: list  # forward: model output leaves; train: [loss]
    state_outs: dict[str, Any]  # param path string -> new value (canonical Var or Literal)
    grads: dict[str, Any] = field(default_factory=dict)  # train: trainable param path -> gradient


def parse_mesh(text: str | None) -> dict[str, int] | None:
    """``'data=8,model=4'`` -> ``{'data': 8, 'model': 4}``; no text -> None.

    Sharding checks read metadata only, so any mesh size is allowed (no simulation limit).

    Example:
        >>> parse_mesh('data=8,model=4')
        {'data': 8, 'model': 4}
    """
    from blox_inspect.analysis.shard_plan import parse_mesh as parse_mesh_text

    return parse_mesh_text(text, max_devices=None) if text else None


class CheckContext:
    """The inputs of every check. Traces are built on first use and then shared.

    Attributes:
        loaded: the model file's LoadedModel.
        mesh: mesh axis sizes from ``--mesh`` (None: no mesh given).
        settings: the model file's ``BLOX_*`` globals.
    """

    def __init__(self, loaded: LoadedModel, mesh: dict[str, int] | None = None, traces: Traces | None = None):
        self.loaded = loaded
        self.mesh = mesh
        self.settings = dict(loaded.file_settings)
        self.shared = traces if traces is not None else Traces(loaded)
        self.train_error: str | None = None
        self._cache: dict[str, Any] = {}

    @property
    def called(self) -> set[str]:
        """Scopes of every module that ran in any trace so far."""
        return self.shared.called

    @property
    def dtype_warnings(self) -> list[tuple[str, str]]:
        """(message, module scope) of each float64 request truncated while tracing."""
        return self.shared.dtype_warnings

    # --- model structure ---------------------------------------------------
    @property
    def graph(self) -> bx.Graph:
        return self.loaded.graph

    @property
    def modules(self) -> dict[str, bx.Module]:
        """Module scope string -> module, for every module bound in the graph."""
        if "modules" not in self._cache:
            self._cache["modules"] = {m.scope_name: m for _, m in self.graph.walk()}
        return self._cache["modules"]

    def owner(self, param_path: str) -> str:
        """The module path that owns a param (the param path minus its last name)."""
        return bx.path_str(bx.parse_path(param_path)[:-1])

    def is_rng_state(self, param_path: str) -> bool:
        module = self.modules.get(self.owner(param_path))
        return isinstance(module, Rng)

    @property
    def params(self) -> bx.Params:
        """Abstract Params (ShapeDtypeStruct values, weak types kept)."""
        return self.shared.params

    # --- traces -------------------------------------------------------------
    @property
    def forward(self) -> Trace:
        if "forward" not in self._cache:
            self._cache["forward"] = self._trace_forward()
        return self._cache["forward"]

    @property
    def train(self) -> Trace | None:
        """The loss-and-gradient program of the train step (None if it cannot be traced)."""
        if "train" not in self._cache:
            try:
                self._cache["train"] = self._trace_train()
            except Exception as e:  # reported as BX001 by the runner; the other checks still run
                self.train_error = f"{type(e).__name__}: {e}".split("\n")[0]
                self._cache["train"] = None
        return self._cache["train"]

    def traces(self) -> list[Trace]:
        return [t for t in (self.forward, self.train) if t is not None]

    def _scopes(self) -> set[str]:
        return set(self.modules)

    def _trace_forward(self) -> Trace:
        params = self.params
        shared = self.shared.forward  # a failure names the module it happened in
        prog = FlatProgram.build(shared.jaxpr, self._scopes())
        keys = [bx.path_str(p) for p in params]
        n_in = len(jax.tree.leaves(self.loaded.abstract_inputs()))
        param_vars = dict(zip(keys, prog.invars[: len(keys)]))
        n_out = len(shared.out_specs)
        # Unchanged params come back as themselves; changed ones are the outputs after the model's.
        state = {k: param_vars[k] for k in shared.returned if k in param_vars}
        state.update(zip(shared.changed, prog.outvars[n_out:]))
        return Trace(prog, param_vars, prog.invars[len(keys) : len(keys) + n_in], prog.outvars[:n_out], state)

    def _trace_train(self) -> Trace:
        params = self.params
        trainable, rest = params.split(lambda _, p: p.trainable and is_inexact(p.value))
        ts = make_train_step(self.loaded)
        inputs = self.loaded.abstract_inputs()
        fn = lambda t, r, *xs: jax.value_and_grad(ts.loss, has_aux=True)(t, r, *xs)
        traced = jax.make_jaxpr(fn, return_shape=True)
        (closed, shape), _ = self.shared.run(traced, trainable, rest, *inputs, what="the train step's gradients")
        prog = FlatProgram.build(closed, self._scopes())
        t_keys = [bx.path_str(p) for p in trainable]
        r_keys = [bx.path_str(p) for p in rest]
        n_in = len(jax.tree.leaves(inputs))
        invars = prog.invars
        param_vars = dict(zip(t_keys, invars[: len(t_keys)]))
        param_vars.update(zip(r_keys, invars[len(t_keys) : len(t_keys) + len(r_keys)]))
        input_vars = invars[len(t_keys) + len(r_keys) : len(t_keys) + len(r_keys) + n_in]
        (_, new_rest), grads = shape
        outs = prog.outvars
        nr_keys = [bx.path_str(p) for p in new_rest]
        state = dict(zip(nr_keys, outs[1 : 1 + len(nr_keys)]))
        g_keys = [bx.path_str(p) for p in grads]
        grad_outs = dict(zip(g_keys, outs[1 + len(nr_keys) :]))
        return Trace(prog, param_vars, input_vars, outs[:1], state, grad_outs)

    def trace_vmap(self, axis_name: str | None, lanes: int) -> FlatProgram:
        """The train-mode forward under ``jax.vmap`` over a new leading axis of every input, params shared."""
        ts = make_train_step(self.loaded)
        params = self.params
        inputs = [
            jax.ShapeDtypeStruct((lanes, *x.shape), x.dtype) for x in jax.tree.leaves(self.loaded.abstract_inputs())
        ]
        treedef = jax.tree.structure(self.loaded.abstract_inputs())

        def fn(params, *xs):
            def one(*xs):
                out, new = self.loaded.model(params, *jax.tree.unflatten(treedef, xs), **ts.train_kwargs)
                return out

            return jax.vmap(one, axis_name=axis_name)(*xs)

        try:
            closed, _ = self.shared.run(jax.make_jaxpr(fn), params, *inputs, what="the forward pass under jax.vmap")
        except Exception as e:
            raise InspectError(
                MSG_VMAP_FAILED.format(source=self.loaded.source, kind=type(e).__name__, error=str(e).split("\n")[0])
            ) from e
        return FlatProgram.build(closed, self._scopes())


def nbytes(aval: Any) -> int:
    """Bytes of an abstract value (jaxpr var aval, ShapeDtypeStruct or array)."""
    return array_bytes(getattr(aval, "shape", ()), aval.dtype)
