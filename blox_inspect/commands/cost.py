"""`blox-inspect cost`: FLOPs (ours vs XLA), compiled memory, a roofline, and sharded per-device estimates."""

from __future__ import annotations

import argparse
import os

from blox_inspect.commands._args import depth
from blox_inspect.common.output import result_stream

FORMATS = ("table", "json", "markdown")

EPILOG = """\
examples:
  blox-inspect cost model.py                          # forward pass, roofline on an H100
  blox-inspect cost model.py --train --device a100 --format markdown -o cost.md
  blox-inspect cost model.py --train --mesh data=8 --sharding fsdp --device-memory 80GB
  blox-inspect cost model.py --train --mesh data=2,model=4 --sharding tp

Meshes larger than this process's devices are compiled in a subprocess with that many fake CPU devices
(up to 2048); nothing is allocated, only compiled.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cost",
        help="FLOPs, XLA costs, memory, roofline and per-device sharding estimates",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", help="model file, optionally file.py:FACTORY")
    p.add_argument("--load", default=None, metavar="REPORT.json", help="re-render a saved JSON cost report")
    p.add_argument("--train", action="store_true", help="analyse the whole train step (forward, backward, Adam)")
    p.add_argument(
        "--device", default="h100", help="roofline device (h100, a100, tpu-v5e, ...; 'none' for no roofline)"
    )
    p.add_argument("--dtype", default=None, help="compute dtype for the roofline peak (default: the params' dtype)")
    p.add_argument("--mesh", default=None, help="device mesh to compile for, e.g. data=8 or data=8,model=4")
    p.add_argument("--sharding", default="fsdp", help="with --mesh: fsdp, tp or metadata (default fsdp)")
    p.add_argument("--device-memory", default=None, help="per-device memory for the fit verdict, e.g. 80GB, 16GiB")
    p.add_argument("--depth", type=depth, default=None, help="module rows down to this many levels below the top")
    p.add_argument("--batch", type=int, default=None, help="override the leading (batch) dimension of the inputs")
    p.add_argument(
        "--format", default=None, choices=FORMATS, help="output format (default: from the -o extension, else table)"
    )
    p.add_argument("-o", "--output", default=None, help="write to this file instead of stdout")
    p.add_argument("--debug", dest="debug_sub", action="store_true", help="show full tracebacks")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from blox_inspect.analysis.cost import analyse_cost
    from blox_inspect.analysis.devices import get_device, parse_bytes
    from blox_inspect.analysis.shard_plan import STRATEGIES, parse_mesh
    from blox_inspect.common.errors import InspectError
    from blox_inspect.common.output import write_output
    from blox_inspect.load.model_file import load_model
    from blox_inspect.renderers.cost import render_markdown, render_text

    # Check every option before loading the model, so mistakes fail fast.
    device = None if str(args.device).lower() == "none" else get_device(args.device).name
    mesh = parse_mesh(args.mesh) if args.mesh else None
    if args.sharding not in STRATEGIES:
        raise InspectError(f"unknown --sharding {args.sharding!r}; expected one of: {', '.join(STRATEGIES)}.")
    budget = parse_bytes(args.device_memory) if args.device_memory else None
    if args.load:
        report = _load(args.load)
    elif not args.model:
        raise InspectError("cost needs a model file (model.py or model.py:FACTORY) or --load REPORT.json.")
    else:
        report = analyse_cost(
            load_model(args.model),
            train=args.train,
            device=device,
            dtype=args.dtype,
            mesh=mesh,
            strategy=args.sharding,
            device_memory=budget,
            batch=args.batch,
            spec=args.model,
        )
    fmt = args.format or {".json": "json", ".md": "markdown", ".markdown": "markdown"}.get(
        os.path.splitext(args.output or "")[1].lower(), "table"
    )
    if fmt == "json":
        text = report.to_json()
    elif fmt == "markdown":
        text = render_markdown(report, args.depth)
    else:

        color = args.output is None and result_stream().isatty()
        text = render_text(report, color=color, depth=args.depth)
    write_output(text, args.output)
    return 0


def _load(path: str):
    from blox_inspect.load.saved_report import read_saved_report
    from blox_inspect.report.cost import CostReport

    return read_saved_report(path, CostReport, "blox-inspect cost MODEL --format json -o cost.json")
