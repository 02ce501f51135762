"""Per-module slices of a model's program text for the terminal browser: jaxpr equations or HLO lines.

Every blox module call runs inside ``jax.named_scope(path_str(path))``, so an
equation's name stack (and an HLO instruction's ``op_name``) names every module
it ran inside. One pass over the jaxpr gives every module its lines at once.
Building the program, printing equations and filtering HLO are shared with
``blox-inspect hlo`` (``blox_inspect.analysis.programs``).
"""

from __future__ import annotations

import jax

from blox_inspect.analysis.jaxpr import inner_jaxprs, module_chain, walk
from blox_inspect.analysis.programs import _eqn_printer, build_program, filter_hlo

MAX_LINE = 240


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…"


def jaxpr_lines_by_module(jaxpr, modules: frozenset[str] | None = None) -> dict[str, list[str]]:
    """Maps each module path to the jaxpr equations traced inside it (children included).

    Equations holding sub-jaxprs (jit, scan, custom_jvp) are expanded into their
    inner equations, whose name stacks continue the outer one. All lines share one
    variable naming, so a module's lines refer to each other.

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng'); lin = bx.Linear(g / 'out', 2, rng)
        >>> x = jnp.ones((1, 3))
        >>> params = lin(rng.seed(bx.Params(), 0), x)[1]
        >>> lines = jaxpr_lines_by_module(jax.make_jaxpr(lambda p, x: lin(p, x)[0])(params, x))
        >>> list(lines), lines['net/out'][-1]
        (['net/out'], 'f:f32[1,2] = add a d')
    """
    out: dict[str, list[str]] = {}
    show = _eqn_printer()
    for eqn, stack, _, _ in walk(jaxpr):
        if inner_jaxprs(eqn):
            continue  # jit, scan, custom_jvp: their inner equations come on their own
        line = _short(show(eqn))
        for scope in dict.fromkeys(module_chain(stack, modules)):
            out.setdefault(scope, []).append(line)
    return out


def model_jaxpr_lines(loaded) -> dict[str, list[str]]:
    """Traces a LoadedModel's forward pass abstractly (``jax.make_jaxpr``) and slices it per module.

    Nothing is allocated: params and inputs are ``jax.ShapeDtypeStruct``.
    """
    program = build_program(loaded)
    return jaxpr_lines_by_module(jax.make_jaxpr(program.fn)(*program.args), program.modules)


def hlo_lines_for(hlo_text: str, path: str) -> list[str]:
    """The HLO instructions whose ``op_name`` runs inside module ``path``, under their computations' headers.

    Example:
        >>> hlo = '''ENTRY %main (x: f32[2]) -> f32[2] {
        ...   %a = f32[2] add(%x, %x), metadata={op_name="jit(f)/net/mlp/net/mlp/l1/add"}
        ...   ROOT %b = f32[2] multiply(%a, %a), metadata={op_name="jit(f)/net/head/mul"}
        ... }'''
        >>> [line.split()[0] for line in hlo_lines_for(hlo, 'net/mlp')]
        ['ENTRY', '%a']
    """
    return [line.rstrip() for line in filter_hlo(hlo_text, path).splitlines()]
