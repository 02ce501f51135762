"""Start-up of blox-inspect against plain Python and `import jax`, side by side in one run.

Run: `python -m benchmarks.startup`. Each case is a fresh process, timed wall-clock; the median
of REPEATS runs is shown with its ratio to `import jax`. The `--load` case re-renders a small
saved JSON report, written first by the real CLI; the last case is the GPT-2 summary itself
(default command, XLA included).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

REPEATS = 5
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = [sys.executable, "-m", "blox_inspect"]


def _time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=600)
    return time.perf_counter() - t0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "mlp.json")
        subprocess.run([*CLI, "tests/blox_inspect/models/mlp.py", "-o", report], cwd=ROOT, check=True, timeout=600)
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            'python -c "import jax"': [sys.executable, "-c", "import jax"],
            "blox-inspect --help": [*CLI, "--help"],
            "blox-inspect summary --help": [*CLI, "summary", "--help"],
            "blox-inspect --load report.json": [*CLI, "--load", report],
            "blox-inspect examples/gpt2.py": [*CLI, "examples/gpt2.py"],
        }
        times = {name: statistics.median(_time(cmd) for _ in range(REPEATS)) for name, cmd in cases.items()}
    base = times['python -c "import jax"']
    print(f"median of {REPEATS} fresh processes")
    print(f"{'case':36s} {'seconds':>8s} {'vs import jax':>14s}")
    for name, t in times.items():
        print(f"{name:36s} {t:8.2f} {t / base:13.2f}x")


if __name__ == "__main__":
    main()
