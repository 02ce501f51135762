"""The blox-inspect command line: parse -> load -> analyse -> render.

Each subcommand lives in ``blox_inspect/commands/<name>.py`` and exposes
``register(subparsers)`` (adds its parser; must import nothing heavy) and
``run(args) -> int``. Known errors become one clear message and exit code 2;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator

from blox_inspect.common.errors import InspectError

# name -> module; `summary` is the default when the first argument is a file.
COMMANDS = {
    "summary": "blox_inspect.commands.summary",
    "graph": "blox_inspect.commands.graph",
    "hlo": "blox_inspect.commands.hlo",
    "cost": "blox_inspect.commands.cost",
    "profile": "blox_inspect.commands.profile",
    "check": "blox_inspect.commands.check",
    "tui": "blox_inspect.commands.tui",
    "diff": "blox_inspect.commands.diff",
}
DEFAULT_COMMAND = "summary"

DESCRIPTION = """\
Inspect a blox model without allocating it: per-module shapes, parameters and
FLOPs, Graphviz diagrams, HLO and compiled costs, sharded memory estimates,
static checks, and a terminal browser; or run it for real and measure the
time of every module (profile).

A model file defines a factory (default name `build`) that takes no arguments
and returns (model, inputs) or (model, inputs, kwargs); name another factory
with file.py:NAME.

examples:
  blox-inspect examples/gpt2.py                 # summary table (default command)
  blox-inspect summary examples/gpt2.py --depth 2 -o gpt2.md
  blox-inspect graph examples/resnet50.py -o resnet.svg
  blox-inspect cost examples/llama.py:build_7b --train --mesh data=8 --sharding fsdp
  blox-inspect check examples/gpt2.py --fail-on warning
  blox-inspect profile examples/gpt2.py --train --steps 20
  blox-inspect tui examples/gpt2.py
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blox-inspect", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for modname in COMMANDS.values():
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name != modname:
                raise
            continue  # command not built yet
        module.register(sub)
    return parser


def _normalise(argv: list[str]) -> list[str]:
    """Inserts the default command when the first positional argument is not a command."""
    argv = list(argv)
    i = 0
    while i < len(argv) and argv[i] == "--debug":
        i += 1
    # A model file or a summary option (e.g. --load r.json) first means the default command.
    if i < len(argv) and argv[i] not in COMMANDS and argv[i] not in ("-h", "--help"):
        argv.insert(i, DEFAULT_COMMAND)
    return argv


MSG_INTERRUPTED = "blox-inspect: interrupted"


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C always ends the run at once with "interrupted" and exit 130.

    Python's own handler raises KeyboardInterrupt wherever the main thread happens to be. Inside a
    ``gc`` callback (JAX registers one) it is swallowed and the run goes on; inside an import (numpy,
    jaxlib) it becomes an ImportError, or leaves an extension half-initialised (a crash at exit). An
    inspection run has nothing to save, so the handler ends the process directly; the one thing that
    must not be left behind, a half-written ``-o`` file, is cleaned up first (``blox._files``).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        try:
            files = sys.modules.get("blox._files")
            if files is not None:
                files.discard_pending()  # temporary files of atomic writes in flight; the targets are untouched
        finally:
            print(MSG_INTERRUPTED, file=sys.stderr, flush=True)
            os._exit(130)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    try:
        with _interruptible():
            return _main(argv)
    except KeyboardInterrupt:  # raised by a model's own code (its handler is ours while the run lasts)
        print(MSG_INTERRUPTED, file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    argv = _normalise(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    debug = args.debug or getattr(args, "debug_sub", False)
    try:
        if args.command == "tui":  # the terminal app owns the screen, and restores it on Ctrl-C itself
            signal.signal(signal.SIGINT, signal.default_int_handler)
            return int(args.run(args) or 0)
        from blox_inspect.common.output import model_prints_to_stderr

        with model_prints_to_stderr():
            return int(args.run(args) or 0)
    except InspectError as e:
        if debug:
            traceback.print_exc()
        print(f"blox-inspect: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(MSG_INTERRUPTED, file=sys.stderr)
        return 130
    except Exception as e:  # never a bare traceback unless --debug
        if debug:
            traceback.print_exc()
        else:
            print(
                f"blox-inspect: error: {type(e).__name__}: {e}\n(run with --debug for the full traceback)",
                file=sys.stderr,
            )
        return 2


if __name__ == "__main__":
    sys.exit(main())
