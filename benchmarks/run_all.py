"""`make bench`: runs every benchmark module in this folder, each in a fresh process.

A benchmark is `benchmarks/<name>.py` with a `main()`; it prints its own table.
Pass names to run a subset: `python -m benchmarks.run_all overhead inspect_speed`.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).parent


def main(argv: list[str]) -> int:
    names = argv or sorted(
        p.stem for p in HERE.glob("*.py") if p.stem not in {"run_all", "__init__"} and not p.stem.startswith("_")
    )
    failed = []
    for name in names:
        print(f"\n=== benchmarks/{name}.py ===", flush=True)
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"], cwd=HERE.parent)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
