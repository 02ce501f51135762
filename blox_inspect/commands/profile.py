"""`blox-inspect profile model.py[:factory]`: time measured per module on the real device, beside our FLOPs."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

from blox_inspect.commands._args import add_table_args
from blox_inspect.common.errors import InspectError
from blox_inspect.renderers import formats

FORMATS = formats("profile")
MSG_NO_MODEL = "profile needs a model file (model.py or model.py:FACTORY) or --load PROFILE.json."
MSG_BOTH = "pass either a model file or --load PROFILE.json, not both."

EPILOG = """\
examples:
  blox-inspect profile model.py                          # forward pass, 10 steps after 2 warmup
  blox-inspect profile model.py --train --steps 20 --trace-dir prof/   # keep the trace for Perfetto
  blox-inspect profile model.py --device h100 --format json -o profile.json
  blox-inspect profile --load profile.json --depth 2 -o profile.md

Unlike the other commands, profile allocates the params and runs the program for real.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile",
        help="measured time per module on the device, with achieved FLOP/s and the fraction of the roofline",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", help="model file, optionally file.py:FACTORY")
    p.add_argument("--load", metavar="PROFILE.json", help="re-render a saved JSON profile without running anything")
    p.add_argument("--params", metavar="CKPT", help="real params from a checkpoint (blox.save) instead of the init")
    p.add_argument("--train", action="store_true", help="profile the train step (forward, backward, Adam update)")
    p.add_argument("--steps", default="10", metavar="N", help="profiled steps (default 10)")
    p.add_argument("--warmup", default="2", metavar="K", help="untimed steps before profiling (default 2)")
    p.add_argument(
        "--trace-dir", metavar="DIR", help="where the profiler writes its trace (default: a new temp folder)"
    )
    p.add_argument(
        "--device",
        default="auto",
        help="roofline peak to compare against (h100, a100, tpu-v5e, ...; default: the detected device; 'none')",
    )
    p.add_argument("--dtype", default=None, help="compute dtype of the peak (default: the params' dtype)")
    p.add_argument("--seed", type=int, default=0, help="seed of the init and the random inputs (default 0)")
    add_table_args(p, FORMATS)
    p.add_argument("--debug", dest="debug_sub", action="store_true", help="show full tracebacks")
    p.set_defaults(run=run)


@contextlib.contextmanager
def progress() -> Iterator:
    """A spinner on a terminal's stderr, else one line per stage on stderr (compiling and steps take a while)."""
    if not sys.stderr.isatty():
        yield lambda text: print(f"blox-inspect: {text}", file=sys.stderr, flush=True)
        return
    from rich.console import Console

    with Console(stderr=True).status("blox-inspect: starting") as status:
        yield lambda text: status.update(f"blox-inspect: {text}")


def run(args: argparse.Namespace) -> int:
    from blox_inspect.renderers import emit

    if args.load and args.model:
        raise InspectError(MSG_BOTH)
    if args.load:
        report = _load(args.load)
    elif not args.model:
        raise InspectError(MSG_NO_MODEL)
    else:
        from blox_inspect.analysis.devices import get_device
        from blox_inspect.analysis.profile import check_counts, profile_loaded
        from blox_inspect.load.model_file import load_model

        # Every option is checked before the model runs, so a typo fails fast.
        steps, warmup = check_counts(args.steps, args.warmup)
        if args.device not in ("auto", "none"):
            get_device(args.device)
        with progress() as say:
            say("loading the model file")
            report = profile_loaded(
                load_model(args.model),
                train=args.train,
                steps=steps,
                warmup=warmup,
                params_file=args.params,
                device=None if args.device == "none" else args.device,
                dtype=args.dtype,
                trace_dir=args.trace_dir,
                seed=args.seed,
                progress=say,
            )
        print(
            f"blox-inspect: trace in {os.path.dirname(report.trace_file)} (open in ui.perfetto.dev or "
            f"`tensorboard --logdir {args.trace_dir or os.path.dirname(report.trace_file)}`)",
            file=sys.stderr,
        )
    emit("profile", report, args.format, args.output, depth=args.depth, fold=args.fold)
    return 0


def _load(path: str):
    from blox_inspect.load.saved_report import read_saved_report
    from blox_inspect.report.profile import ProfileReport

    return read_saved_report(path, ProfileReport, "blox-inspect profile MODEL --format json -o profile.json")
