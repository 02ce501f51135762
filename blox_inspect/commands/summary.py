"""`blox-inspect [summary] model.py[:factory]`: per-module shapes, params and FLOPs."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from typing import Any

from blox_inspect.commands._args import add_table_args
from blox_inspect.common.errors import BudgetExceeded, InspectError
from blox_inspect.renderers import formats

HELP = "per-module shapes, parameters and FLOPs (the default command)"
FORMATS = formats("summary")
_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12, "P": 10**15}

MSG_BUDGET = (
    "{what} budget exceeded: the model has {got} {unit}, but {flag} allows {limit}. Shrink the model or raise {flag}."
)


def parse_count(text: str) -> int:
    """'1e9', '7B', '100M', '12.5k', '1_000' -> int."""
    m = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]*)?(?:e[0-9]+)?)\s*([kKmMbBgGtTpP]?)\s*", str(text))
    if not m:
        raise argparse.ArgumentTypeError(f"expected a count such as 1000000, 1e9, 7B, 100M or 12K; got {text!r}")
    return int(round(float(m.group(1).replace("_", "")) * _SUFFIX[m.group(2).upper()]))


def register(sub: Any) -> None:
    p = sub.add_parser("summary", help=HELP, description=HELP)
    p.add_argument(
        "model",
        nargs="?",
        help="model file, file.py or file.py:FACTORY (default factory: build); or a checkpoint on its own: a "
        ".safetensors file, a Hugging Face index, or a folder holding either (its tensors as a tree)",
    )
    p.add_argument("--params", metavar="CKPT", help="use a checkpoint's shapes and dtypes (reads its header only)")
    p.add_argument(
        "--stats",
        action="store_true",
        help="with --params, or a checkpoint on its own: read the values too and add per-param statistics "
        "(mean, std, min, max, L2, zeros, NaNs, infs)",
    )
    p.add_argument("--train", action="store_true", help="add train-step (forward + backward + Adam) FLOPs")
    add_table_args(p, FORMATS)
    p.add_argument("--load", metavar="REPORT_JSON", help="re-render a saved JSON report without tracing")
    p.add_argument(
        "--profile",
        metavar="PROFILE_JSON",
        help="add measured time per module (Time, Time %%) from `blox-inspect profile MODEL --format json -o p.json`",
    )
    p.add_argument("--max-params", type=parse_count, metavar="N", help="fail (exit 1) when params exceed N (1e9, 7B)")
    p.add_argument("--max-flops", type=parse_count, metavar="N", help="fail (exit 1) when forward FLOPs exceed N")
    p.add_argument("--seed", type=int, default=0, help="seed for the abstract init (default 0)")
    p.add_argument(
        "--xla",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile the forward program for XLA's FLOP count and memory analysis (default: unless the "
        "program has more than 5,000 equations, e.g. a 70B model; --no-xla: never)",
    )
    p.add_argument("--debug", dest="debug_sub", action="store_true", help="show full tracebacks for errors")
    p.set_defaults(run=run)


@contextlib.contextmanager
def progress():
    """A rich spinner on stderr when it is a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        yield lambda _: None
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("blox-inspect: starting") as status:
        yield lambda text: status.update(f"blox-inspect: {text}")


def bytes_read(say):
    """``on_read(done, total)`` that shows the bytes read so far in the spinner line (``--stats``)."""
    from blox_inspect.common.units import human_bytes

    def on_read(done: int, total: int) -> None:
        share = f" ({100 * done / total:.0f}%)" if total else ""
        say(f"reading values for statistics: {human_bytes(done)} of {human_bytes(total)}{share}")

    return on_read


MSG_PROFILE_MISMATCH = (
    "{file}: this profile is of {other!r} and names none of this model's modules ({example}, ...). "
    "Profile this model: blox-inspect profile {model} --format json -o profile.json"
)


def profile_times(path: str, report) -> dict[str, float]:
    """Module path -> measured seconds per step (children included) from a saved profile of this model."""
    from blox_inspect.load.saved_report import read_saved_report
    from blox_inspect.report.profile import ProfileReport

    prof = read_saved_report(path, ProfileReport, "blox-inspect profile MODEL --format json -o profile.json")
    times = {m.path: m.total_seconds for m in prof.modules}
    if not any(m.path in times for m in report.modules):
        example = report.modules[0].path if report.modules else report.root
        raise InspectError(
            MSG_PROFILE_MISMATCH.format(file=path, other=prof.model, example=example, model=report.model)
        )
    return times


def load_report(path: str):
    from blox_inspect.load.saved_report import read_saved_report
    from blox_inspect.report.model import Report

    return read_saved_report(path, Report, "blox-inspect summary MODEL --format json -o report.json")


def check_budgets(report, max_params: int | None, max_flops: int | None) -> None:
    from blox_inspect.analysis.rows import both

    t = report.totals
    if max_params is not None and t.params > max_params:
        raise BudgetExceeded(
            MSG_BUDGET.format(
                what="parameter", got=both(t.params), unit="params", flag="--max-params", limit=both(max_params)
            )
        )
    if max_flops is not None and t.flops > max_flops:
        raise BudgetExceeded(
            MSG_BUDGET.format(
                what="FLOP",
                got=both(t.flops, si=True),
                unit="forward FLOPs",
                flag="--max-flops",
                limit=both(max_flops, si=True),
            )
        )


def run(args: argparse.Namespace) -> int:
    from blox_inspect.renderers import emit

    if args.load:
        if args.model:
            raise InspectError("pass either a model file or --load REPORT_JSON, not both.")
        report = load_report(args.load)
    else:
        if not args.model:
            raise InspectError(
                "missing the model file: blox-inspect summary model.py[:factory] (or --load report.json)."
            )
        from blox_inspect.analysis.summary import add_param_stats, summarize_loaded
        from blox_inspect.load.checkpoints import CheckpointReader, is_checkpoint_path, report_from_checkpoint
        from blox_inspect.load.model_file import load_model

        if is_checkpoint_path(args.model):  # a checkpoint alone: its tensors as a tree, no model file
            report = report_from_checkpoint(CheckpointReader(args.model))
            if args.stats:
                with progress() as say:
                    add_param_stats(report, args.model, bytes_read(say))
        else:
            with progress() as say:
                say("loading the model file")
                loaded = load_model(args.model)
                report = summarize_loaded(
                    loaded,
                    train=args.train,
                    params_file=args.params,
                    xla=args.xla,
                    seed=args.seed,
                    progress=say,
                    stats=args.stats,
                    on_read=bytes_read(say),
                )
    times = profile_times(args.profile, report) if args.profile else None
    emit("summary", report, args.format, args.output, depth=args.depth, fold=args.fold, times=times)
    check_budgets(report, args.max_params, args.max_flops)
    return 0
