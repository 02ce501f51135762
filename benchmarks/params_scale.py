"""How Params, Param and Graph scale with the number of params and modules (`python -m benchmarks.params_scale`).

Cases, printed as markdown tables: CPU seconds of the process (wall seconds in parentheses). Model init runs
once per size; the sub-second rows are the best of 3, so a cyclic-GC pass does not decide them.

* ``Params.set``: N new params inserted one at a time, the way lazy init builds Params, then the first
  flatten, which pays the one sort of the paths.
* model init: a ``bx.Sequential`` of N tiny ``bx.Linear(1)`` children (2N params plus an Rng), built
  (graph and modules), then initialised abstractly (``jax.eval_shape``, plain and inside
  ``bx.shape_only()``) and eagerly.
* ``Graph.child``: N children added under one node.
* pytree: flatten and unflatten of a list of 10k ``Param`` and of ``Params`` holding 10k (``--only-pytree``
  runs just these: the per-call cost every jitted step pays on its way in and out).

The last column divides each time by the one for the previous size: linear scaling reads as the size ratio
(``10.0x / 10x N``); quadratic as its square.
``--sizes=1000,8000`` picks the sizes (default 1000,10000,100000); ``--no-eager`` skips eager init.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

import blox as bx

SIZES = (1_000, 10_000, 100_000)


class _Clock:
    """CPU seconds of this process (what the ratios use: they barely move with load on a shared machine) and wall seconds."""

    def __enter__(self):
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu, self.wall = time.process_time() - self.cpu, time.perf_counter() - self.wall


def _seconds(fn: Callable[[], object], repeat: int = 1) -> tuple[float, float]:
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        with _Clock() as c:
            jax.block_until_ready(fn())
        best = min(best, (c.cpu, c.wall))
    return best


def inserts(n: int, repeat: int = 3) -> tuple[tuple[float, float], tuple[float, float]]:
    """Times for N ``Params.set`` of new paths, then for the first flatten (which sorts the paths once); best of 3."""
    value = jnp.zeros(1)
    paths = [("net", f"l{i}", "kernel") for i in range(n)]
    best = None
    for _ in range(repeat):
        with _Clock() as build:
            params = bx.Params()
            for path in paths:
                params = params.set(path, bx.Param(value))
        with _Clock() as flat:
            jax.tree.leaves(params)
        times = ((build.cpu, build.wall), (flat.cpu, flat.wall))
        best = times if best is None else (min(best[0], times[0]), min(best[1], times[1]))
    return best


def build(n: int):
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    node = g / "seq"
    model = bx.Sequential(node, [bx.Linear(node / f"l{i}", 1, rng) for i in range(n)])
    return rng, model


def init(rng, model, how: str) -> tuple[float, float]:
    """``how``: ``"abstract"`` (``jax.eval_shape``), ``"shape_only"`` (that, inside ``bx.shape_only()``, as
    blox-inspect runs it) or ``"eager"``."""
    x = jnp.ones((1, 1))

    def go(x):
        return model(rng.seed(bx.Params(), 0), x)[1]

    if how == "abstract":
        return _seconds(lambda: jax.tree.leaves(jax.eval_shape(go, x)))
    if how == "shape_only":

        def shapes():
            with bx.shape_only():
                return jax.tree.leaves(jax.eval_shape(go, x))

        return _seconds(shapes)
    return _seconds(lambda: jax.tree.leaves(go(x)))


def children(n: int) -> tuple[float, float]:
    names = [f"c{i}" for i in range(n)]

    def run():
        g = bx.Graph("net")
        for name in names:
            g.child(name)
        return len(g.children)

    return _seconds(run, repeat=3)


def pytree_rows(rounds: int = 60) -> list[tuple[str, float]]:
    """CPU seconds of four pytree operations on 10k params: the best of ``rounds`` interleaved rounds, GC paused."""
    value = jnp.zeros(1)
    plist = [bx.Param(value, metadata={"sharding": (None,)}) for _ in range(10_000)]
    params = bx.Params({("net", f"l{i}", "w"): p for i, p in enumerate(plist)})
    list_leaves, list_def = jax.tree.flatten(plist)
    leaves, treedef = jax.tree.flatten(params)
    cases = {
        "`jax.tree.flatten` of a list of 10k `Param`": lambda: jax.tree.flatten(plist),
        "`jax.tree.unflatten` of it": lambda: jax.tree.unflatten(list_def, list_leaves),
        "`jax.tree.flatten` of `Params` holding 10k": lambda: jax.tree.flatten(params),
        "`jax.tree.unflatten` of it ": lambda: jax.tree.unflatten(treedef, leaves),
    }
    best = dict.fromkeys(cases, float("inf"))
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in cases.items():
                t0 = time.process_time()
                fn()
                best[name] = min(best[name], time.process_time() - t0)
    finally:
        gc.enable()
    return [(name.rstrip(), t) for name, t in best.items()]


def _row(name: str, times: dict[int, tuple[float, float]]) -> str:
    """One table row: CPU (wall) seconds per size, then each CPU time over the previous size's (``23.0x / 8x N``)."""
    cells = [f"{cpu:.3f} ({wall:.3f})" for cpu, wall in times.values()]
    pairs = list(times.items())
    ratios = [f"{t[0] / t0[0]:.1f}x / {n // n0}x N" for (n0, t0), (n, t) in zip(pairs, pairs[1:])]
    return f"| {name} | " + " | ".join(cells) + " | " + (", ".join(ratios) or "-") + " |"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--only-pytree" in argv:
        _print_pytree()
        return
    sizes = SIZES
    for a in argv:
        if a.startswith("--sizes="):
            sizes = tuple(int(s) for s in a.split("=", 1)[1].split(","))
    eager = "--no-eager" not in argv
    header = " | ".join(f"N={n:,}" for n in sizes)
    print(f"| case: CPU s (wall s) | {header} | CPU time ratio / size ratio |")
    print("|---|" + "---:|" * len(sizes) + "---|")
    timed = {n: inserts(n) for n in sizes}
    print(_row("`Params.set` x N (new paths)", {n: t[0] for n, t in timed.items()}), flush=True)
    print(_row("then the first `jax.tree.leaves` (sorts once)", {n: t[1] for n, t in timed.items()}), flush=True)
    print(_row("`Graph.child` x N under one node", {n: children(n) for n in sizes}), flush=True)
    # The same three with the cyclic GC paused: what is left is the work of blox itself. (A full GC pass
    # walks every live object, and init creates objects in proportion to N.)
    gc.collect()
    gc.disable()
    try:
        timed = {n: inserts(n) for n in sizes}
        kids = {n: children(n) for n in sizes}
    finally:
        gc.enable()
    print(_row("`Params.set` x N, GC paused", {n: t[0] for n, t in timed.items()}), flush=True)
    print(_row("first `jax.tree.leaves`, GC paused", {n: t[1] for n, t in timed.items()}), flush=True)
    print(_row("`Graph.child` x N, GC paused", kids), flush=True)
    built, abstract, shapes, concrete = {}, {}, {}, {}
    for n in sizes:
        with _Clock() as c:
            rng, model = build(n)
        built[n] = (c.cpu, c.wall)
        abstract[n] = init(rng, model, "abstract")
        shapes[n] = init(rng, model, "shape_only")
        if eager:
            concrete[n] = init(rng, model, "eager")
        print(f"  (N={n:,} done)", file=sys.stderr, flush=True)
    print(_row("build N Linear modules (graph + constructors)", built), flush=True)
    print(_row("init, abstract (`jax.eval_shape`)", abstract), flush=True)
    print(_row("init, abstract inside `bx.shape_only()` (what blox-inspect runs)", shapes), flush=True)
    if eager:
        print(_row("init, eager", concrete), flush=True)
    _print_pytree()


def _print_pytree() -> None:
    print("\n| pytree case (best of 60 rounds, GC paused) | CPU ms |\n|---|---:|")
    for name, cpu in pytree_rows():
        print(f"| {name} | {cpu * 1e3:.2f} |", flush=True)


if __name__ == "__main__":
    main()
