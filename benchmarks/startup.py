"""Start-up of blox-inspect against plain Python and `import jax`, side by side in one run.

Run: `python -m benchmarks.startup [--baseline REV]`. Each case is a fresh process, timed wall-clock;
the median of REPEATS runs is shown with its ratio to `import jax`. The `--load` case re-renders a small
saved JSON report, written first by the real CLI; the last case is the GPT-2 summary itself
(default command, XLA included).

``--baseline REV`` also times the GPT-2 summary of an older revision (checked out into a temporary git
worktree, same Python environment), the two interleaved run by run so load on the machine hits both
alike: the "no slower than before" comparison, side by side.
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


def _time(cmd: list[str], cwd: str = ROOT) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=600)
    return time.perf_counter() - t0


def baseline(rev: str) -> None:
    """The GPT-2 summary at ``rev`` and now, interleaved (``python -m`` imports from the working directory)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "baseline")
        subprocess.run(["git", "worktree", "add", "--detach", tree, rev], cwd=ROOT, check=True, capture_output=True)
        try:
            old, new = [], []
            for _ in range(REPEATS):
                old.append(_time([*CLI, "examples/gpt2.py"], cwd=tree))
                new.append(_time([*CLI, "examples/gpt2.py"]))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=ROOT, check=True, capture_output=True)
    a, b = statistics.median(old), statistics.median(new)
    print(f"\nGPT-2 summary (default command, XLA included), median of {REPEATS}, interleaved")
    print(f"{'revision ' + rev:36s} {a:8.2f} s")
    print(f"{'this checkout':36s} {b:8.2f} s {b / a:13.2f}x")


def main() -> None:
    if "--baseline" in sys.argv:
        baseline(sys.argv[sys.argv.index("--baseline") + 1])
        return
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
