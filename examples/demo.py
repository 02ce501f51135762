"""The main demo (`make demo`): inspect a real model abstractly, then train one for real.

1. Summarise GPT-2 small (124M params) without allocating it: shapes, params, FLOPs, memory.
2. Draw its dataflow diagram to out/gpt2.svg (Graphviz, or the bundled graphviz-pure).
3. Run the static checks on it.
4. Train a small CNN on scikit-learn's handwritten digits, save a checkpoint, and summarise the
   trained model from that checkpoint.
"""

from __future__ import annotations

import os
import sys

from blox_inspect.cli import main as inspect

OUT = "out"


def step(title: str, argv: list[str]) -> None:
    print(f"\n\033[1m$ blox-inspect {' '.join(argv)}\033[0m   # {title}", flush=True)
    rc = inspect(argv)
    if rc not in (0, None):
        sys.exit(f"demo step failed with exit code {rc}: blox-inspect {' '.join(argv)}")


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    step("summary, abstract: nothing is allocated", ["examples/gpt2.py", "--depth", "2"])
    step("dataflow diagram", ["graph", "examples/gpt2.py", "--depth", "2", "-o", f"{OUT}/gpt2.svg"])
    step("static checks", ["check", "examples/gpt2.py"])

    from examples import train_digits

    ckpt = f"{OUT}/digits_cnn.safetensors"
    print("\n\033[1m$ python -m examples.train_digits --model cnn\033[0m   # a real training run", flush=True)
    train_digits.main(["--model", "cnn", "--out", ckpt])
    step("the trained checkpoint, with per-param statistics", ["examples/train_digits.py", "--params", ckpt, "--stats"])
    print(
        f"\nDone. Open {OUT}/gpt2.svg in a browser; browse the checkpoint with: "
        f".venv/bin/blox-inspect tui examples/train_digits.py --params {ckpt}"
    )


if __name__ == "__main__":
    main()
