"""How long `blox-inspect check` takes on GPT-2 small, train step included.

Uses examples/gpt2.py when it exists, else the GPT-style stand-in from the check test corpus at GPT-2 small's
sizes. Prints a markdown table for docs/benchmarks.md (section "blox-inspect check speed").
Run: python -m benchmarks.check_speed
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).parent.parent
STAND_IN = "tests/blox_inspect/check_models/transformer_good.py:build_gpt2_small"


def target() -> str:
    return "examples/gpt2.py" if (ROOT / "examples" / "gpt2.py").exists() else STAND_IN


def phases(spec: str) -> list[tuple[str, float]]:
    from blox_inspect.checks import CheckContext, run_checks
    from blox_inspect.load.model_file import load_model

    rows = []
    t = time.perf_counter()
    ctx = CheckContext(load_model(spec))
    rows.append(("load the model file", time.perf_counter() - t))
    for name, step in (
        ("abstract params (eval_shape)", lambda: ctx.params),
        ("forward jaxpr + flatten", lambda: ctx.forward),
        ("train-step jaxpr + flatten", lambda: ctx.train),
        ("all checks", lambda: run_checks(ctx)),
    ):
        t = time.perf_counter()
        step()
        rows.append((name, time.perf_counter() - t))
    rows.append(("ops in forward / train programs", (len(ctx.forward.program.ops), len(ctx.train.program.ops))))
    return rows


def main() -> None:
    spec = target()
    rows = phases(spec)
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "blox_inspect", "check", spec],
        cwd=ROOT,
        check=False,
        capture_output=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    cli = time.perf_counter() - t
    print(f"model: {spec}\n")
    print("| phase | seconds |\n|---|---|")
    for name, value in rows:
        shown = f"{value[0]} / {value[1]}" if isinstance(value, tuple) else f"{value:.2f}"
        print(f"| {name} | {shown} |")
    total = sum(v for _, v in rows if not isinstance(v, tuple))
    print(f"| **check, in process (sum)** | **{total:.2f}** |")
    print(f"| `blox-inspect check` CLI wall time (incl. Python + JAX import) | {cli:.2f} |")


if __name__ == "__main__":
    main()
