"""`blox-inspect tui`: the terminal browser for a model, a checkpoint, or two checkpoints.

Everything that can fail (loading the model, reading headers, diffing) runs
before the app starts, so errors print as one clear message with exit code 2
instead of breaking the screen.
"""

from __future__ import annotations

import argparse
import os

from blox_inspect.common.errors import InspectError

HELP = "browse a model, a checkpoint, or the difference of two checkpoints in the terminal"
DESCRIPTION = """\
Browse a model's modules, params and FLOPs in the terminal.

  blox-inspect tui model.py                            the model (abstract params)
  blox-inspect tui model.py --params ckpt.safetensors  the model with real values
  blox-inspect tui ckpt.safetensors                    a checkpoint on its own
  blox-inspect tui a.safetensors b.safetensors         what changed between two checkpoints

Press ? inside the app for every key.
"""
MSG_FILES = (
    "expected a model file (.py), a checkpoint, or two checkpoints to compare; got {n} files: {files}. "
    "Examples: blox-inspect tui model.py --params ckpt.safetensors, blox-inspect tui a.safetensors b.safetensors."
)
MSG_PARAMS_NEEDS_MODEL = "--params goes with a model file (blox-inspect tui model.py --params {params}); got {files}."


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tui", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE", help="model.py[:factory], ckpt.safetensors, or two checkpoints")
    p.add_argument("--params", metavar="CKPT", help="a checkpoint with real values for the model's params")
    p.add_argument(
        "--profile",
        metavar="PROFILE_JSON",
        help="show measured time per module (from `blox-inspect profile MODEL --format json -o p.json`)",
    )
    p.add_argument("--hlo", metavar="FILE", help="optimized HLO text to slice per module (else the jaxpr is shown)")
    p.add_argument("--debug", dest="debug_sub", action="store_true", help="show full tracebacks for errors")
    p.set_defaults(run=run)


def _is_model(spec: str) -> bool:
    """A model file; a Hugging Face folder opens as the checkpoint it holds (real values to browse)."""
    from blox_inspect.load.inputs import MODEL_FILE, classify

    return classify(spec) == MODEL_FILE


def model_report(spec: str):
    """The one place the TUI turns a model file into a Report: ``(report, loaded_model)``.

    The analysis tier does the work; it is imported lazily so that opening a
    checkpoint never pays for it.
    """
    from blox_inspect.analysis.summary import summarize_loaded
    from blox_inspect.load.model_file import load_model

    loaded = load_model(spec)
    # xla=False: the browser shows jaxpr-counted FLOPs, so skip compiling the whole model before opening.
    return summarize_loaded(loaded, xla=False), loaded


def build_app(args: argparse.Namespace):
    """Reads every input and returns the ready app (raising InspectError on bad input)."""
    from blox_inspect.load.checkpoints import CheckpointReader, match_checkpoint, report_from_checkpoint
    from blox_inspect.tui.app import make_app, title_for

    files = list(args.files)
    hlo_text = None
    if getattr(args, "hlo", None):
        try:
            with open(args.hlo, encoding="utf-8") as f:
                hlo_text = f.read()
        except OSError as e:
            raise InspectError(f"{args.hlo}: cannot read the HLO file: {e.strerror or e}.") from e
    if len(files) == 2 and not any(_is_model(f) for f in files):
        if args.params:
            raise InspectError(MSG_PARAMS_NEEDS_MODEL.format(params=args.params, files=", ".join(files)))
        from blox_inspect.analysis.diff import diff_checkpoints

        return make_app(diff=diff_checkpoints(*[_existing(f) for f in files]), title=title_for(*files))
    if len(files) != 1:
        raise InspectError(MSG_FILES.format(n=len(files), files=", ".join(files)))
    (spec,) = files
    if not _is_model(spec):
        if getattr(args, "profile", None):
            raise InspectError(f"--profile {args.profile}: a profile's times belong to a model file; got {spec}.")
        if args.params:
            raise InspectError(MSG_PARAMS_NEEDS_MODEL.format(params=args.params, files=spec))
        reader = CheckpointReader(_existing(spec))
        return make_app(report_from_checkpoint(reader), params=reader, hlo_text=hlo_text, title=title_for(spec))
    report, loaded = model_report(spec)
    reader = mismatch = None
    if args.params:
        reader = CheckpointReader(_existing(args.params))
        mismatch = match_checkpoint(report, reader) or None
    from blox_inspect.analysis.program_text import model_jaxpr_lines
    from blox_inspect.load.model_file import split_spec

    title = os.path.basename(split_spec(spec)[0]) + (f" + {os.path.basename(args.params)}" if args.params else "")
    times = None
    if getattr(args, "profile", None):
        from blox_inspect.commands.summary import profile_times

        times = profile_times(args.profile, report)
    return make_app(
        report,
        params=reader,
        mismatch=mismatch,
        hlo_text=hlo_text,
        program_text=lambda: model_jaxpr_lines(loaded),
        title=title,
        times=times,
    )


def _existing(path: str) -> str:
    if not os.path.exists(path):
        raise InspectError(f"{path}: no such file. Pass a .safetensors checkpoint (or a model .py file).")
    return path


def run(args: argparse.Namespace) -> int:
    app = build_app(args)
    app.run()
    return int(app.return_code or 0)
