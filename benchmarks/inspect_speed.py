"""How fast `blox-inspect summary` is, end to end, on big models (run: python -m benchmarks.inspect_speed).

(a) A 70B Llama-style model (80 layers, seq 512) summarised in a fresh process, FLOPs included:
    wall time and peak RSS (targets: < 10 s, < 1 GB). By default the CLI skips XLA's compile for a
    program this large; the ``--xla`` row forces it.
(b) GPT-2 small: the end-to-end summary vs the cheapest possible look at the model (interpreter
    start-up + one jax.make_jaxpr of its forward pass, params created inside the trace), target <= 2x;
    and vs flax.nnx.tabulate(model, x, compute_flops=True) on the same GPT-2 written in Flax NNX
    (built under nnx.eval_shape so neither side allocates weights).

Every timing is a fresh subprocess (start-up and imports included), the best of ``REPEATS``.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent
REPEATS = int(os.environ.get("BENCH_REPEATS", 3))


def _model(example: str, fallback: str) -> str:
    """The reference example when it exists, else our fixture model file."""
    path, _, factory = example.partition(":")
    return example if (ROOT / path).exists() else fallback


LLAMA_70B = _model("examples/llama.py:build_70b", "tests/blox_inspect/models/llama_like.py:build_70b")
GPT2 = _model("examples/gpt2.py", "tests/blox_inspect/models/gpt2_small.py")

BASELINE = """
import jax, blox as bx
from blox._rng import seed_all
from blox_inspect import load_model
loaded = load_model({spec!r})
jax.make_jaxpr(lambda *x: loaded.model(seed_all(loaded.graph, bx.Params(), 0), *x, **loaded.kwargs)[0])(
    *loaded.abstract_inputs())
"""

NNX = """
import time
import jax, jax.numpy as jnp
from flax import nnx


class Attention(nnx.Module):
    def __init__(self, dim, heads, rngs):
        self.heads = heads
        self.qkv = nnx.Linear(dim, 3 * dim, rngs=rngs)
        self.proj = nnx.Linear(dim, dim, rngs=rngs)

    def __call__(self, x):
        b, s, d = x.shape
        q, k, v = jnp.split(self.qkv(x).reshape(b, s, 3, self.heads, d // self.heads), 3, axis=2)
        q, k, v = q[:, :, 0], k[:, :, 0], v[:, :, 0]
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.float32(d // self.heads))
        mask = jnp.tril(jnp.ones((s, s), bool))[None, None]
        att = jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1)
        return self.proj(jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, s, d))


class Block(nnx.Module):
    def __init__(self, dim, heads, rngs):
        self.ln1 = nnx.LayerNorm(dim, rngs=rngs)
        self.attn = Attention(dim, heads, rngs)
        self.ln2 = nnx.LayerNorm(dim, rngs=rngs)
        self.fc = nnx.Linear(dim, 4 * dim, rngs=rngs)
        self.out = nnx.Linear(4 * dim, dim, rngs=rngs)

    def __call__(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.out(jax.nn.gelu(self.fc(self.ln2(x))))


class GPT2(nnx.Module):
    def __init__(self, rngs, vocab=50257, ctx=1024, dim=768, layers=12, heads=12):
        self.wte = nnx.Embed(vocab, dim, rngs=rngs)
        self.wpe = nnx.Embed(ctx, dim, rngs=rngs)
        self.blocks = nnx.List([Block(dim, heads, rngs) for _ in range(layers)])
        self.ln_f = nnx.LayerNorm(dim, rngs=rngs)

    def __call__(self, ids):
        x = self.wte(ids) + self.wpe(jnp.arange(ids.shape[-1]))[None]
        for block in self.blocks:
            x = block(x)
        return self.wte.attend(self.ln_f(x))


# nnx.tabulate needs a concrete model and input (it lowers each submodule with real values).
model = GPT2(nnx.Rngs(0))
start = time.process_time()
table = nnx.tabulate(model, jnp.ones((1, 1024), jnp.int32), compute_flops=True)
print(f"inner={time.process_time() - start}")
assert "124,439,808" in table.replace(",", "").replace("124439808", "124,439,808"), "must match GPT-2 small"
"""

OURS_INNER = """
import time
from blox_inspect import load_model, summarize_loaded
loaded = load_model({spec!r})
start = time.process_time()
summarize_loaded(loaded, xla={xla})
print(f"inner={{time.process_time() - start}}")
"""


@dataclass
class Result:
    wall: float  # seconds, best run
    cpu: float  # user + system CPU seconds of the best run: on a shared machine wall time includes waiting
    rss: float  # peak resident memory, MiB (worst run)
    inner: float | None  # the ``inner=`` time the command printed (in-process timing), best run


def run(argv: list[str]) -> Result:
    """Runs a fresh process and measures it."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        text, error = out.read().decode(), err.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed:\n{error}")
    inner = [float(line[6:]) for line in text.splitlines() if line.startswith("inner=")]
    # Linux reports ru_maxrss in KiB, and carries a parent's peak across fork+exec into the child's:
    # this driver imports nothing heavy and runs every case in a child, so the number is the child's.
    return Result(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, inner[0] if inner else None)


def best(argv: list[str], repeats: int = REPEATS) -> Result:
    runs = [run(argv) for _ in range(repeats)]
    inner = [r.inner for r in runs if r.inner is not None]
    return Result(
        min(r.wall for r in runs), min(r.cpu for r in runs), max(r.rss for r in runs), min(inner) if inner else None
    )


def summary_cmd(spec: str, out: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "blox_inspect", "summary", spec, "--format", "json", "-o", out, *extra]


def main() -> None:
    out = os.path.join(tempfile.mkdtemp(), "report.json")
    rows: list[tuple[str, Result, str]] = []
    r = best(summary_cmd(LLAMA_70B, out))
    rows.append(
        (f"70B Llama ({LLAMA_70B}): blox-inspect (default)", r, "target < 10 s, < 1024 MiB; XLA skipped (auto)")
    )
    r = best(summary_cmd(LLAMA_70B, out, "--xla"), repeats=1)
    rows.append(("70B Llama: blox-inspect --xla (+ compile: XLA cost and memory)", r, ""))
    base = best([sys.executable, "-c", BASELINE.format(spec=GPT2)])
    rows.append((f"GPT-2 small ({GPT2}): start-up + one make_jaxpr", base, "baseline"))
    ours = best(summary_cmd(GPT2, out, "--no-xla"))
    rows.append(("GPT-2 small: blox-inspect --no-xla", ours, f"{ours.cpu / base.cpu:.2f}x baseline CPU (target <= 2x)"))
    ours_xla = best(summary_cmd(GPT2, out))
    rows.append(
        ("GPT-2 small: blox-inspect (default: + XLA compile)", ours_xla, f"{ours_xla.cpu / base.cpu:.2f}x baseline CPU")
    )
    nnx = best([sys.executable, "-c", NNX])
    rows.append(
        (
            "GPT-2 small: Flax NNX build + nnx.tabulate(compute_flops=True)",
            nnx,
            f"{nnx.cpu / ours_xla.cpu:.1f}x the CPU of blox-inspect (+ XLA)",
        )
    )
    width = max(len(name) for name, _, _ in rows)
    print(f"{'case':<{width}}  {'wall s':>7}  {'CPU s':>6}  {'peak RSS MiB':>12}  note")
    for name, r, note in rows:
        print(f"{name:<{width}}  {r.wall:7.2f}  {r.cpu:6.2f}  {r.rss:12.0f}  {note}")
    inner = best([sys.executable, "-c", OURS_INNER.format(spec=GPT2, xla=True)]).inner
    inner_no_xla = best([sys.executable, "-c", OURS_INNER.format(spec=GPT2, xla=False)]).inner
    print("\nin-process CPU seconds, GPT-2 small (start-up, imports and model building excluded):")
    print(f"  summarize_loaded(xla=False)          {inner_no_xla:6.2f} s")
    print(f"  summarize_loaded(xla=True)           {inner:6.2f} s")
    print(
        f"  nnx.tabulate(compute_flops=True)     {nnx.inner:6.2f} s  ({nnx.inner / inner:.1f}x summarize_loaded(xla=True))"
    )


if __name__ == "__main__":
    main()
