"""Compile time of N Transformer blocks: an unrolled Python loop vs bx.ScanBlocks (lax.scan).

Run: `python -m benchmarks.scan_compile` (also part of `make bench`). It times
tracing + lowering and XLA compilation of one training step (loss and
gradients) for depth 2, 8 and 32, with abstract params (nothing is allocated
before compilation), prints the table and writes it into docs/benchmarks.md
under "## Compile time: scan over layers".
"""

import os
import platform
import re
import time

import jax
import jax.numpy as jnp

import blox as bx
from blox._files import atomic_write

DEPTHS = (2, 8, 32)
WIDTH, HEADS, MLP, SEQ = 128, 4, 512, 64
HEADING = "## Compile time: scan over layers"
DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "benchmarks.md")


def make(depth: int, scan: bool):
    g = bx.Graph("net")
    rng = bx.Rng(g / "rng")
    node = g / "h"

    def block(n):
        return bx.TransformerBlock(n, HEADS, WIDTH // HEADS, MLP, rng)

    blocks = [bx.ScanBlocks(node, block, depth)] if scan else [block(node / str(i)) for i in range(depth)]

    def apply(params, x):
        for b in blocks:
            x, params = b(params, x, causal=True)
        return x, params

    return g, apply


def compile_seconds(depth: int, scan: bool) -> tuple[float, float]:
    graph, apply = make(depth, scan)
    x = jax.ShapeDtypeStruct((1, SEQ, WIDTH), jnp.float32)
    params = jax.eval_shape(lambda x: apply(bx.seed_all(graph, bx.Params()), x)[1], x)
    trainable, rest = params.split()

    def step(tr, rest, x):
        return jax.value_and_grad(lambda t: jnp.mean(apply(t.merge(rest), x)[0] ** 2))(tr)

    t0 = time.perf_counter()
    lowered = jax.jit(step).lower(trainable, rest, x)
    t1 = time.perf_counter()
    lowered.compile()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def table() -> str:
    rows = [
        "| depth | unrolled: trace+lower (s) | unrolled: compile (s) | scan: trace+lower (s) | scan: compile (s) | unrolled / scan total |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for depth in DEPTHS:
        ul, uc = compile_seconds(depth, scan=False)
        sl, sc = compile_seconds(depth, scan=True)
        rows.append(f"| {depth} | {ul:.2f} | {uc:.2f} | {sl:.2f} | {sc:.2f} | {(ul + uc) / (sl + sc):.1f}x |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


def write_section(body: str) -> None:
    with open(DOC) as f:
        text = f.read()
    section = (
        f"{HEADING}\n\n"
        f"One training step (loss + gradients) of N pre-norm Transformer blocks (width {WIDTH}, {HEADS} heads, "
        f"MLP {MLP}, sequence {SEQ}, batch 1), jitted with abstract params. Unrolled: a Python loop over N "
        "separate blocks. Scan: `bx.ScanBlocks` runs one block with `lax.scan` over params stacked on a layer "
        "axis, so the program stays the same size as N grows.\n\n"
        f"Command: `python -m benchmarks.scan_compile` (jax {jax.__version__}, {platform.machine()} CPU, "
        f"{os.cpu_count()} cores; 1-minute load average {os.getloadavg()[0]:.1f} when it finished; compare the "
        f"columns within a run, as absolute seconds grow with machine load).\n\n{body}\n"
    )
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    atomic_write(DOC, text.rstrip("\n").encode() + b"\n")


def main() -> None:
    print(f"{HEADING} (seconds)")
    body = table()
    write_section(body)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
