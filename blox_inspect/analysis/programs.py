"""The programs tools compile: the forward pass or the whole train step, always from abstract inputs.

``build_program`` returns a :class:`Program` (a function plus abstract arguments); ``program_text`` renders
it at one of four stages, optionally narrowed to one module's ops; ``export_program`` writes a jax.export
artifact. Nothing here allocates a parameter: every array is a ``jax.ShapeDtypeStruct``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax

from blox_inspect.analysis.jaxpr import inner_jaxprs, module_chain, walk
from blox_inspect.analysis.train import make_train_step
from blox_inspect.common.errors import InspectError
from blox_inspect.load.model_file import LoadedModel

STAGES = ("jaxpr", "stablehlo", "hlo", "optimized")

MSG_STAGE = "unknown --stage {got!r}; expected one of: {known}."
MSG_MODULE = (
    "no module at path {got!r} in this model. Module paths are '/'-joined graph paths, e.g. {example!r}; "
    "known: {known}."
)
MSG_MODULE_EMPTY = (
    "module {scope!r} has no ops in the {stage} program. It may hold no computation of its own (a container "
    "whose children are called elsewhere), or it is not called by this {program}."
)


@dataclass
class Program:
    """A function to jit plus the abstract arguments it is lowered with."""

    name: str  # "forward" or "train step"
    fn: Callable  # the plain (un-jitted) function
    args: tuple
    donate_argnums: tuple[int, ...] = ()
    modules: frozenset[str] | None = None  # every module's path string, to resolve name stacks
    # The run's shared trace of this program (see analysis.trace.Traces): anything with ``.jaxpr``
    # and ``.lower()``. Its jaxpr carries blox's identity tags, which count zero FLOPs and lower to nothing.
    traced: Any = None

    def jitted(self, **kwargs: Any) -> Callable:
        return jax.jit(self.fn, donate_argnums=self.donate_argnums, **kwargs)

    def lower(self) -> Any:
        return self.traced.lower() if self.traced is not None else self.jitted().lower(*self.args)

    def jaxpr(self) -> Any:
        """The program's ClosedJaxpr: the shared trace's when there is one (the model's code runs once)."""
        return self.traced.jaxpr if self.traced is not None else jax.make_jaxpr(self.fn)(*self.args)


def _abstract(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)


def build_program(loaded: LoadedModel, train: bool = False, params: Any = None, traces: Any = None) -> Program:
    """The forward pass ``(params, *inputs) -> outputs`` or the train step (params and optimizer state donated).

    With ``traces`` (the run's :class:`~blox_inspect.analysis.trace.Traces`) the program reuses its
    trace and params instead of tracing the model again.

    Example:
        >>> from blox_inspect.load.model_file import load_model
        >>> loaded = load_model('tests/blox_inspect/models/mlp.py')
        >>> build_program(loaded, train=True).donate_argnums
        (0, 1, 2)
    """
    if traces is not None and params is None:
        params = traces.params
    params = _abstract(loaded.abstract_params() if params is None else params)
    modules = frozenset(module_scopes(loaded))
    if train:
        ts = make_train_step(loaded)
        return Program(
            "train step",
            ts.step,
            ts.abstract_args(loaded, params),
            donate_argnums=(0, 1, 2),
            modules=modules,
            traced=traces.train_step() if traces is not None else None,
        )

    def forward(params: Any, *inputs: Any) -> Any:
        return loaded.apply(params, *inputs)[0]

    traced = traces.forward if traces is not None else None
    return Program("forward", forward, (params, *loaded.abstract_inputs()), modules=modules, traced=traced)


def module_scopes(loaded: LoadedModel) -> dict[str, str]:
    """scope string -> module type name, for every module in the model's graph."""
    return {m.scope_name: type(m).__name__ for _, m in loaded.graph.walk()}


def check_module(loaded: LoadedModel, scope: str) -> str:
    scopes = module_scopes(loaded)
    if scope not in scopes:
        known = sorted(scopes)
        shown = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
        message = MSG_MODULE.format(got=scope, example=known[-1] if known else "net/layer", known=shown)
        # Paths that end like the one given (the root left out) first, then spelling neighbours.
        near = [k for k in known if k.endswith("/" + scope.strip("/"))] or difflib.get_close_matches(scope, known, 3)
        if near:
            message += " Did you mean " + " or ".join(repr(n) for n in near[:3]) + "?"
        raise InspectError(message)
    return scope


def scope_pattern(scope: str) -> re.Pattern:
    """Matches ``scope`` as a whole path inside an op name (``net/l1`` does not match ``net/l10``).

    Search :func:`op_path` of the op name: transforms wrap the first scope after them
    (``transpose(jvp(net))/mlp/l1``), which would hide the path ``net/mlp/l1``.
    """
    return re.compile(r"(?:^|[/(\"])" + re.escape(scope) + r"(?=$|[/)\";])")


_TRANSFORM = re.compile(r"\b[a-z_]+\(")


def op_path(op_name: str) -> str:
    """An op name with JAX's transform wrappers removed: ``jit(step)/transpose(jvp(net))/mlp/l1/dot_general``
    -> ``step/net/mlp/l1/dot_general``.

    Example:
        >>> op_path('jit(step)/transpose(jvp(net))/mlp/l1/dot_general')
        'step/net/mlp/l1/dot_general'
    """
    return _TRANSFORM.sub("", op_name).replace(")", "")


# --- text at each stage ------------------------------------------------------------------------------------


def program_text(program: Program, stage: str, scope: str | None = None) -> str:
    """The program as text at ``stage``; with ``scope``, only the ops whose metadata names that module."""
    if stage not in STAGES:
        raise InspectError(MSG_STAGE.format(got=stage, known=", ".join(STAGES)))
    if stage == "jaxpr":
        closed = jax.make_jaxpr(program.fn)(*program.args)
        text = str(closed) if scope is None else filter_jaxpr(closed, scope, program.modules)
    else:
        lowered = program.lower()
        if stage == "stablehlo":
            text = lowered.as_text() if scope is None else filter_mlir(lowered.as_text(debug_info=True), scope)
        elif stage == "hlo":
            text = hlo_text(lowered.compiler_ir("hlo"))
            text = text if scope is None else filter_hlo(text, scope)
        else:
            text = lowered.compile().as_text()
            text = text if scope is None else filter_hlo(text, scope)
    if scope is not None and not text.strip():
        raise InspectError(MSG_MODULE_EMPTY.format(scope=scope, stage=stage, program=program.name))
    return text


def hlo_text(computation: Any) -> str:
    """Unoptimised HLO text with op metadata (``op_name``), which ``as_hlo_text`` leaves out."""
    from jax._src.lib import _jax  # noqa: F401  (loads the HLO bindings)
    from jaxlib import _hlo

    options = _hlo.HloPrintOptions()
    options.print_metadata = True
    return computation.as_hlo_module().to_string(options)


def filter_jaxpr(closed: Any, scope: str, modules: frozenset[str] | None = None) -> str:
    """The equations (at any depth) run inside module ``scope`` or a module below it, one per block.

    ``modules`` resolves name stacks (see :func:`blox_inspect.analysis.jaxpr.module_chain`).
    """
    lines: list[str] = []
    prefix = scope + "/"
    show = _eqn_printer()
    for eqn, stack, _, _ in walk(closed):
        if inner_jaxprs(eqn):
            continue  # its equations come on their own
        inside = [n for n in module_chain(stack, modules) if n == scope or n.startswith(prefix)]
        if inside:
            lines.append(f"{show(eqn)}    # {inside[-1]}")
    return "\n".join(lines)


def _eqn_printer() -> Callable[[Any], str]:
    """Prints equations with one naming context, so a variable keeps its name across the filtered lines."""
    try:
        from jax._src import core

        context, settings = core.JaxprPpContext(), core.JaxprPpSettings()
        return lambda eqn: core.pp_eqn(eqn, context, settings).format()
    except (ImportError, AttributeError, TypeError):  # private API moved: fall back to per-equation names
        return str


_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?[\w.\-]+\s.*\{\s*$")


def filter_hlo(text: str, scope: str) -> str:
    """HLO instructions whose ``op_name`` metadata names ``scope``, under their computation's header."""
    pattern = scope_pattern(scope)
    out: list[str] = []
    header = None
    for line in text.splitlines():
        if _COMPUTATION.match(line):
            header = line
            continue
        m = re.search(r'op_name="([^"]*)"', line)
        if m and pattern.search(op_path(m.group(1))):
            if header is not None:
                out.append(header.rstrip(" {"))
                header = None
            out.append(line)
    return "\n".join(out)


_LOC_DEF = re.compile(r"^(#loc\d*) = loc\((.*)\)\s*$")
_LOC_REF = re.compile(r"loc\((#loc\d*)\)")


def filter_mlir(text: str, scope: str) -> str:
    """StableHLO ops whose location (resolved through ``#locN`` aliases) carries ``scope`` in a name."""
    pattern = scope_pattern(scope)
    defs = {}
    for line in text.splitlines():
        m = _LOC_DEF.match(line)
        if m:
            defs[m.group(1)] = m.group(2)

    def names(ref: str, seen: set) -> list[str]:
        if ref in seen or ref not in defs:
            return []
        seen.add(ref)
        body = defs[ref]
        # Name locations look like "jit(f)/net/l1/dot_general"(#child); file locations are "file.py":12:3.
        found = [s for s in re.findall(r'"([^"]*)"(?!:\d)', body)]
        for child in re.findall(r"#loc\d*", body):
            found += names(child, seen)
        return found

    out = []
    for line in text.splitlines():
        if line.startswith("#loc") or "loc(" not in line:
            continue
        refs = _LOC_REF.findall(line)
        op_names = [n for r in refs for n in names(r, set())] + re.findall(r'loc\("([^"]*)"', line)
        if any(pattern.search(op_path(n)) for n in op_names) and "=" in line.split("loc(")[0]:
            out.append(_LOC_REF.sub("", line).rstrip())
    return "\n".join(out)


# --- export -------------------------------------------------------------------------------------------------


EXPORT_SUFFIXES = (".mlir", ".mlirbc")
MSG_EXPORT_SUFFIX = (
    "--export {path}: expected a file name ending in .mlir (StableHLO as MLIR text, which Netron opens) or "
    ".mlirbc (the portable StableHLO bytecode artifact of jax.export)."
)


SIDECAR_FORMAT = "blox-inspect-export/1"


def export_program(program: Program, path: str) -> bytes:
    """A jax.export StableHLO artifact: MLIR text for ``*.mlir`` (Netron opens it), portable bytecode for ``*.mlirbc``.

    The function is exported over its flattened array arguments (argument ``i`` is pytree leaf ``i`` of
    ``program.args``), so the artifact needs no knowledge of blox's pytree types. Which argument is
    which is in :func:`export_sidecar`.
    """
    return export_with_sidecar(program, path)[0]


def export_with_sidecar(program: Program, path: str) -> tuple[bytes, str]:
    """The artifact and its sidecar JSON (see :func:`export_sidecar`)."""
    from jax import export

    if not path.endswith(EXPORT_SUFFIXES):
        raise InspectError(MSG_EXPORT_SUFFIX.format(path=path))

    leaves, treedef = jax.tree.flatten(program.args)

    def flat(*xs: Any) -> Any:
        return jax.tree.leaves(program.fn(*jax.tree.unflatten(treedef, xs)))

    donate = _flat_donated(program)
    exported = export.export(jax.jit(flat, donate_argnums=donate))(*leaves)
    data = exported.mlir_module().encode("utf-8") if path.endswith(".mlir") else bytes(exported.mlir_module_serialized)
    return data, export_sidecar(program, exported)


def export_sidecar(program: Program, exported: Any) -> str:
    """JSON naming every argument of an exported program, so a reader can feed it from a checkpoint.

    ``arguments`` lists each flattened leaf of the program's arguments in order: ``name`` (a param's
    path, as in a blox checkpoint, e.g. ``params/net/mlp/l1/kernel``; ``inputs/0`` for a model input;
    ``opt_state/...`` for optimizer state), ``shape``, ``dtype``, ``donated``, and ``module_arg``: its
    position among the exported module's arguments, or null when jax.export dropped it because the
    program never reads it (an RNG seed the forward pass does not use). ``results`` are the outputs in order.
    """
    import json

    kept = {int(i): k for k, i in enumerate(exported.module_kept_var_idx)}
    donated = set(_flat_donated(program))
    names = _argument_names(program)
    arguments = []
    for i, (name, aval) in enumerate(zip(names, exported.in_avals)):
        arguments.append(
            {
                "index": i,
                "name": name,
                "shape": [int(d) for d in aval.shape],
                "dtype": str(aval.dtype),
                "donated": i in donated,
                "module_arg": kept.get(i),
            }
        )
    results = [
        {"index": j, "shape": [int(d) for d in a.shape], "dtype": str(a.dtype)}
        for j, a in enumerate(exported.out_avals)
    ]
    return json.dumps(
        {"format": SIDECAR_FORMAT, "program": program.name, "arguments": arguments, "results": results}, indent=2
    )


def _argument_names(program: Program) -> list[str]:
    """A readable name per flattened leaf of ``program.args``: param paths, input indices, optimizer state paths."""
    heads = ["params", *(f"inputs/{i}" for i in range(len(program.args) - 1))]
    if program.name == "train step":
        n_inputs = len(program.args) - 3
        heads = ["trainable", "rest", "opt_state", *(f"inputs/{i}" for i in range(n_inputs))]
    out = []
    for head, arg in zip(heads, program.args):
        for keypath, _ in jax.tree_util.tree_flatten_with_path(arg)[0]:
            parts = [head]
            for k in keypath:
                key = getattr(k, "key", getattr(k, "idx", getattr(k, "name", None)))
                if key is not None and key != "value":  # a Param's one leaf is its value: the path says enough
                    parts.append(str(key))
            out.append("/".join(parts))
    return out


def _flat_donated(program: Program) -> tuple[int, ...]:
    out, start = [], 0
    for i, arg in enumerate(program.args):
        n = len(jax.tree.leaves(arg))
        if i in program.donate_argnums:
            out.extend(range(start, start + n))
        start += n
    return tuple(out)
