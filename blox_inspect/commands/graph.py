"""`blox-inspect graph`: a Graphviz diagram of a model's structure and dataflow."""

from __future__ import annotations

import argparse
import os

from blox_inspect.commands._args import depth

HELP = "draw the model's modules and dataflow with Graphviz (.svg, .png, .dot, ...)"
EPILOG = """\
examples:
  blox-inspect graph examples/gpt2.py -o gpt2.svg
  blox-inspect graph examples/llama.py:build_70b --depth 2 --rankdir LR -o llama.png
  blox-inspect graph examples/resnet50.py --focus stage2 --color flops -o stage2.svg
  blox-inspect graph --load report.json -o model.dot          # draw a saved report; .dot is the source

Runs of identical consecutive blocks (h/0..h/47) are drawn once, marked xN; --expand draws them all.
Layout uses `dot` when it is on PATH, else the graphviz-pure binary (svg, png, jpg; no pdf).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "graph", help=HELP, description=HELP, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("model", nargs="?", help="model file, file.py or file.py:FACTORY (omit with --load)")
    p.add_argument(
        "-o", "--output", help="output file: .svg .png .jpg .pdf (with system Graphviz) or .dot; default: DOT to stdout"
    )
    p.add_argument(
        "--load", metavar="REPORT.json", help="draw a report saved with `blox-inspect summary --format json`"
    )
    p.add_argument("--params", metavar="CKPT", help="use a checkpoint's shapes and dtypes (reads its header only)")
    p.add_argument(
        "--depth",
        type=depth,
        default=None,
        metavar="N",
        help="open N levels of modules as clusters; deeper ones collapse into their ancestor",
    )
    p.add_argument(
        "--expand", action="store_true", help="draw every block of a run of identical blocks instead of one marked xN"
    )
    p.add_argument(
        "--focus", metavar="PATH", help="draw only this module's subtree, with the edges crossing its boundary"
    )
    p.add_argument("--rankdir", choices=("TB", "LR", "BT", "RL"), default="TB", help="layout direction (default TB)")
    p.add_argument(
        "--color",
        choices=("type", "params", "flops"),
        default="type",
        help="fill boxes by module type or by size (default type)",
    )
    p.add_argument(
        "--dpi",
        type=_positive,
        default=150,
        metavar="N",
        help="resolution of PNG/JPEG output in dots per inch (default 150)",
    )
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds the layout may take (default 60)")
    p.add_argument("--debug", dest="debug_sub", action="store_true", help="show full tracebacks for errors")
    p.set_defaults(run=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number of dots per inch, e.g. 150; got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from blox_inspect.renderers import emit

    report = load_report(args)
    options = dict(depth=args.depth, expand=args.expand, focus=args.focus, rankdir=args.rankdir, color=args.color)
    out = args.output
    if out in (None, "-") or os.path.splitext(out)[1].lower() in (".dot", ".gv"):
        emit("graph", report, "dot", out, **options)
    else:
        emit("graph", report, "image", out, out=out, timeout=args.timeout, dpi=args.dpi, **options)
    return 0


def load_report(args: argparse.Namespace):
    """The Report to draw: ``--load`` a saved one, or analyse the model file (the one place that calls analysis)."""
    from blox_inspect.common.errors import InspectError
    from blox_inspect.load.saved_report import read_saved_report
    from blox_inspect.report.model import Report

    if args.load:
        if args.model or args.params:
            given = args.model or f"--params {args.params}"
            raise InspectError(
                f"--load {args.load} draws a saved report; it takes no model file or --params ({given})."
            )
        return read_saved_report(args.load, Report, "blox-inspect summary MODEL --format json -o report.json")
    if not args.model:
        raise InspectError("graph needs a model file (file.py or file.py:FACTORY) or --load REPORT.json.")
    from blox_inspect.analysis.summary import summarize_loaded
    from blox_inspect.load.model_file import load_model

    # Drawing needs shapes, params and FLOPs only: skip the XLA compile (cost and memory analysis).
    return summarize_loaded(load_model(args.model), xla=False, params_file=args.params)
