"""`blox-inspect diff A B`: what changed between two checkpoints, with an exit code CI can gate on."""

from __future__ import annotations

import argparse
from typing import Any

from blox_inspect.renderers import formats

HELP = "compare two checkpoints: added, removed, shape, dtype and value changes (exit 1 when they differ)"
FORMATS = formats("diff")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "diff",
        help=HELP,
        description=HELP
        + ". A and B are .safetensors files, Hugging Face index files, or folders holding either. Values are "
        "read one tensor pair at a time. Exit 0: equal within --atol/--rtol; 1: they differ; 2: an error.",
    )
    p.add_argument("a", help="the first checkpoint")
    p.add_argument("b", help="the second checkpoint")
    p.add_argument("--atol", type=float, default=0.0, help="a value change up to this max |b - a| counts as equal")
    p.add_argument("--rtol", type=float, default=0.0, help="... or up to this ||b - a|| / ||a|| (default 0: exact)")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from -o's extension, else table)")
    p.add_argument("--all", action="store_true", help="also list the unchanged tensors")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    p.add_argument("--debug", dest="debug_sub", action="store_true", help="show full tracebacks for errors")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from blox_inspect.analysis.diff import diff_checkpoints, within
    from blox_inspect.renderers import emit

    diff = diff_checkpoints(args.a, args.b)
    for p in diff.params:
        if p.status == "changed" and within(p, args.atol, args.rtol):
            p.status = "unchanged"
    emit("diff", diff, args.format, args.output, show_unchanged=args.all)
    return 0 if all(p.status == "unchanged" for p in diff.params) else 1
