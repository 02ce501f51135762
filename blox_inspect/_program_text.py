"""Per-module slices of a model's program text: jaxpr equations or optimized HLO lines.

Every blox module call runs inside ``jax.named_scope(path_str(path))``, so an
equation's name stack (and an HLO instruction's ``op_name``) names every
module it ran inside. That is enough to give each module its own lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import jax

MAX_LINE = 240
_OP_NAME = re.compile(r'op_name="([^"]*)"')


def _sub_jaxprs(eqn: Any) -> Iterator[Any]:
    for v in eqn.params.values():
        for item in v if isinstance(v, (tuple, list)) else (v,):
            inner = getattr(item, "jaxpr", item)  # ClosedJaxpr -> Jaxpr
            if hasattr(inner, "eqns"):
                yield inner


def _printer() -> Callable[[Any], str]:
    """Prints equations with one shared variable naming, so lines of a slice refer to each other.

    Uses JAX's own jaxpr printer (private); falls back to ``str(eqn)``, which names
    every equation's variables afresh.
    """
    try:
        from jax._src import core as jcore

        context, settings = jcore.JaxprPpContext(), jcore.JaxprPpSettings()
        return lambda eqn: jcore.pp_eqn(eqn, context, settings).format()
    except Exception:  # pragma: no cover - depends on JAX internals
        return str


def _eqn_line(eqn: Any, show: Callable[[Any], str]) -> str:
    try:
        text = show(eqn)
    except Exception:  # pragma: no cover - depends on JAX internals
        text = str(eqn)
    text = " ".join(text.split())
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…"


def jaxpr_lines_by_module(jaxpr: Any) -> dict[str, list[str]]:
    """Maps each module path to the jaxpr equations traced inside it (children included).

    Equations holding sub-jaxprs (jit, scan, custom_jvp) are expanded into their
    inner equations, whose name stacks continue the outer one.

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng'); lin = bx.Linear(g / 'out', 2, rng)
        >>> x = jnp.ones((1, 3))
        >>> params = lin(rng.seed(bx.Params(), 0), x)[1]
        >>> lines = jaxpr_lines_by_module(jax.make_jaxpr(lambda p, x: lin(p, x)[0])(params, x))
        >>> list(lines), lines['net/out'][0]
        (['net/out'], 'a:f32[1,2] = dot_general[ dimension_numbers=(([1], [0]), ([], [])) preferred_element_type=float32 ] b c')
    """
    out: dict[str, list[str]] = {}
    show = _printer()

    def visit(jx: Any, outer: tuple[str, ...]) -> None:
        for eqn in jx.eqns:
            scopes = outer + tuple(s.name for s in eqn.source_info.name_stack.stack if type(s).__name__ == "Scope")
            subs = list(_sub_jaxprs(eqn))
            if subs:
                for sub in subs:
                    visit(sub, scopes)
                continue
            line = _eqn_line(eqn, show)
            for scope in dict.fromkeys(scopes):
                out.setdefault(scope, []).append(line)

    visit(getattr(jaxpr, "jaxpr", jaxpr), ())
    return out


def model_jaxpr_lines(loaded: Any) -> dict[str, list[str]]:
    """Traces a LoadedModel abstractly (``jax.make_jaxpr``) and slices its jaxpr per module.

    Nothing is allocated: params and inputs are ``jax.ShapeDtypeStruct``.
    """
    params = loaded.abstract_params()
    jaxpr = jax.make_jaxpr(lambda p, *xs: loaded.apply(p, *xs)[0])(params, *loaded.abstract_inputs())
    return jaxpr_lines_by_module(jaxpr)


def hlo_lines_for(hlo_text: str, path: str) -> list[str]:
    """The HLO instruction lines whose ``op_name`` runs inside module ``path`` (children included).

    Example:
        >>> hlo = '''%a = f32[2] add(%x, %y), metadata={op_name="jit(f)/net/mlp/net/mlp/l1/add"}
        ... %b = f32[2] mul(%a, %a), metadata={op_name="jit(f)/net/head/mul"}'''
        >>> [line.split()[0] for line in hlo_lines_for(hlo, 'net/mlp')]
        ['%a']
    """
    needle = "/" + path + "/"
    out = []
    for line in hlo_text.splitlines():
        m = _OP_NAME.search(line)
        if m and needle in "/" + m.group(1) + "/":
            out.append(line.strip())
    return out
