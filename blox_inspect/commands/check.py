"""`blox-inspect check model.py[:factory]`: static checks that find model bugs before a training run."""

from __future__ import annotations

import argparse
from typing import Any

from blox_inspect.renderers import formats

HELP = "static checks: RNG reuse, dead structure, gradient flow, dtypes, constants, sharding, numerics"
FORMATS = formats("findings")
FAIL_ON = ("error", "warning", "info", "none")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help=HELP,
        description=HELP + ". Every code (BX101...) is explained in docs/checks.md.",
    )
    p.add_argument("model", nargs="?", help="model file, optionally with :factory (default factory: build)")
    p.add_argument("--list-codes", action="store_true", help="print every check code with its severity and exit")
    p.add_argument("--format", choices=FORMATS, help="output format (default: json for -o *.json, else text)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    p.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default="error",
        help="exit 1 when a finding is at least this severe (default: error)",
    )
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="CODE",
        help="skip a check code (repeatable; also BLOX_CHECK_IGNORE = [...] in the model file)",
    )
    p.add_argument("--mesh", metavar="AXES", help="check sharding metadata against a mesh, e.g. data=8,model=4")
    p.add_argument("--debug", dest="debug_sub", action="store_true", help="show full tracebacks for errors")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from blox_inspect.checks import CheckContext, exit_code, parse_mesh, run_checks
    from blox_inspect.common.output import write_output
    from blox_inspect.load.model_file import load_model
    from blox_inspect.renderers import emit

    if args.list_codes:
        from blox_inspect.checks import CODES

        write_output(
            "\n".join(f"{c.code}  {c.severity:<7}  {c.family:<9}  {c.title}" for _, c in sorted(CODES.items())), None
        )
        return 0
    if not args.model:
        from blox_inspect.common.errors import InspectError

        raise InspectError("missing the model file: blox-inspect check model.py[:factory] (or --list-codes).")
    mesh = parse_mesh(args.mesh)
    loaded = load_model(args.model)
    findings = run_checks(CheckContext(loaded, mesh), ignore=args.ignore)
    emit("findings", findings, args.format, args.output, default="text", model=args.model)
    return exit_code(findings, args.fail_on)
