"""How checkpoint reading scales (run: python -m benchmarks.checkpoint_read).

(a) Header only, 300,000 tiny tensors: ``bx.read_header`` on a foreign file (written by
    ``safetensors.numpy.save_file``) and on a blox file (``bx.save``), against the official
    library's own way to list the same facts (``safe_open`` plus one ``get_slice`` per tensor).
(b) Lazy reads of a multi-GB checkpoint (default 16 tensors of 256 MiB = 4 GiB, in a temporary
    folder under /tmp, deleted afterwards): ``bx.read_tensor`` one tensor at a time, peak RSS
    against the size of one tensor; and, for comparison, ``safe_open``'s default mmap backend
    reading the same tensors one at a time.

(c) ``blox-inspect summary FILE`` end to end on the 300,000-tensor file (the header, the Report
    rebuilt from its paths, the folded table): wall and CPU seconds and peak RSS of the CLI process.
(d) ``--stats`` on the multi-GB checkpoint (what ``blox-inspect summary big.safetensors --stats``
    runs: the Report, then each tensor read once for its statistics): peak RSS against one tensor.

Every measurement is a fresh subprocess; RSS is the child's own peak (VmHWM) minus its RSS
after imports (for (c), the whole process's peak). Set ``CKPT_BENCH_TENSORS`` /
``CKPT_BENCH_MIB`` to change the size of (b) and (d).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

N_TINY = 300_000
N_BIG = int(os.environ.get("CKPT_BENCH_TENSORS", 16))
MIB_BIG = int(os.environ.get("CKPT_BENCH_MIB", 256))
REPEATS = int(os.environ.get("BENCH_REPEATS", 3))

CHILD = """
import sys, time, json
import blox as bx
import safetensors

def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

base = status('VmRSS:')
what, path = sys.argv[1], sys.argv[2]
t = time.perf_counter()
n = total = 0
if what == 'header':
    n = len(bx.read_header(path).tensors)
elif what == 'safe_open header':
    with safetensors.safe_open(path, 'numpy') as f:
        n = len([(k, s.get_dtype(), s.get_shape()) for k in f.offset_keys() for s in [f.get_slice(k)]])
elif what == 'read_tensor':
    with bx.read_header(path) as h:
        for info in h.tensors:
            a = bx.read_tensor(h, info)
            assert a[0] == int(info.name[1:]) and a[-1] == a[0]
            total += a.nbytes
            del a
elif what == 'stats':  # blox-inspect summary FILE --stats, in process
    from blox_inspect.analysis.summary import add_param_stats
    from blox_inspect.load.checkpoints import CheckpointReader, report_from_checkpoint
    base = status('VmRSS:')
    t = time.perf_counter()
    report = report_from_checkpoint(CheckpointReader(path))
    add_param_stats(report, path)
    n = sum(p.stats is not None for p in report.params)
    total = sum(p.bytes for p in report.params)
else:  # safe_open's default (mmap) backend, one tensor at a time
    with safetensors.safe_open(path, 'numpy') as f:
        for name in f.offset_keys():
            a = f.get_tensor(name)
            assert a[0] == int(name[1:])
            total += a.nbytes
            del a
print(json.dumps({'s': time.perf_counter() - t, 'n': n, 'bytes': total, 'rss': status('VmHWM:') - base}))
"""


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _best(*args: str) -> dict:
    return min((_child(*args) for _ in range(REPEATS)), key=lambda r: r["s"])


def _cli(path: str) -> dict:
    """``blox-inspect summary PATH`` in a fresh process: wall and CPU seconds, peak RSS (the driver imports
    nothing heavy, so the child's ru_maxrss is its own)."""
    argv = [sys.executable, "-m", "blox_inspect", "summary", path, "-o", os.devnull]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.read().decode()}")
    return {"s": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss * 1024}


def _write_tiny(folder: str) -> tuple[str, str]:
    import numpy as np
    from safetensors.numpy import save_file

    import blox as bx

    tensors = {f"layers.{i // 10}.sub{i % 10}.w": np.full((2,), i, np.float32) for i in range(N_TINY)}
    foreign = os.path.join(folder, "foreign.safetensors")
    save_file(tensors, foreign)
    params = bx.Params(
        {tuple(k.split(".")): bx.Param(v, trainable=i % 2 == 0) for i, (k, v) in enumerate(tensors.items())}
    )
    blox_file = os.path.join(folder, "blox.safetensors")
    bx.save(blox_file, params)
    return foreign, blox_file


def _write_big(path: str) -> None:
    """N_BIG float32 tensors of MIB_BIG MiB, tensor i filled with i, streamed (never all in memory)."""
    import numpy as np

    n = MIB_BIG * 2**20 // 4
    header = {
        f"t{i}": {"dtype": "F32", "shape": [n], "data_offsets": [i * n * 4, (i + 1) * n * 4]} for i in range(N_BIG)
    }
    body = json.dumps(header).encode()
    body += b" " * (-len(body) % 8)
    with open(path, "wb") as f:
        f.write(len(body).to_bytes(8, "little") + body)
        for i in range(N_BIG):
            f.write(np.full(n, i, np.float32).tobytes())


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="blox-ckpt-bench-", dir="/tmp")
    try:
        foreign, blox_file = _write_tiny(tmp)
        print(f"(a) header of {N_TINY:,} tiny tensors, best of {REPEATS} (fresh process each)\n")
        print("| reader | file | header size | time | peak RSS added |")
        print("|---|---|---:|---:|---:|")
        for label, what, path in [
            ("`bx.read_header`", "header", foreign),
            ("`bx.read_header`", "header", blox_file),
            ("`safe_open` + `get_slice` per tensor", "safe_open header", foreign),
        ]:
            r = _best(what, path)
            assert r["n"] == N_TINY
            kind = "foreign" if path == foreign else "blox"
            head = int.from_bytes(open(path, "rb").read(8), "little")
            print(f"| {label} | {kind} | {head / 2**20:.1f} MiB | {r['s']:.2f} s | {r['rss'] / 2**20:.0f} MiB |")
        print(f"\n(c) `blox-inspect summary FILE` on the {N_TINY:,}-tensor files, once each (fresh process)\n")
        print("| file | wall | CPU | peak RSS |")
        print("|---|---:|---:|---:|")
        for kind, path in [("foreign", foreign), ("blox", blox_file)]:
            r = _cli(path)
            print(f"| {kind} | {r['s']:.2f} s | {r['cpu']:.2f} s | {r['rss'] / 2**20:,.0f} MiB |")
        os.remove(foreign)
        os.remove(blox_file)

        big = os.path.join(tmp, "big.safetensors")
        _write_big(big)
        size = os.path.getsize(big)
        one = MIB_BIG * 2**20
        print(
            f"\n(b) {N_BIG} tensors of {MIB_BIG} MiB ({size / 2**30:.1f} GiB file, in the page cache), one at a time\n"
        )
        print("| reader | time | throughput | peak RSS added | / one tensor |")
        print("|---|---:|---:|---:|---:|")
        for label, how in [
            ("`bx.read_tensor`", "read_tensor"),
            ("`safe_open` (mmap backend)", "mmap"),
            ("(d) `--stats`: Report + each tensor's statistics", "stats"),
        ]:
            r = _child(how, big)
            assert r["bytes"] == N_BIG * one
            print(
                f"| {label} | {r['s']:.2f} s | {r['bytes'] / r['s'] / 2**30:.2f} GiB/s | "
                f"{r['rss'] / 2**20:,.0f} MiB | {r['rss'] / one:.2f}x |"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
