"""`blox-inspect hlo`: the forward pass or train step as jaxpr, StableHLO, HLO or optimized HLO."""

from __future__ import annotations

import argparse

EPILOG = """\
stages:
  jaxpr       JAX's own IR (jax.make_jaxpr)
  stablehlo   the lowered MLIR module that JAX hands to XLA
  hlo         XLA HLO before optimisation, with op_name metadata
  optimized   XLA HLO after compilation for this machine's backend (fusions, layouts, collectives)

examples:
  blox-inspect hlo model.py --stage optimized --train -o step.hlo
  blox-inspect hlo model.py --stage jaxpr --module net/encoder/block_0/attn
  blox-inspect hlo model.py --train --export step.mlir     # StableHLO as MLIR text; Netron opens it

--module keeps the ops whose metadata names that module (its '/'-joined graph path) or one of its children.
--export writes a jax.export artifact: .mlir is MLIR text (Netron opens it), .mlirbc the portable StableHLO
bytecode. Its arguments are the flattened leaves of (params, *inputs), or of (trainable, rest, opt_state,
*inputs) with --train.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hlo",
        help="print the compiled program at one stage (jaxpr, stablehlo, hlo, optimized)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="model file, optionally file.py:FACTORY")
    p.add_argument("--stage", default="stablehlo", help="jaxpr, stablehlo, hlo or optimized (default stablehlo)")
    p.add_argument("--train", action="store_true", help="the whole train step (params donated), not the forward")
    p.add_argument("--module", default=None, help="only ops of this module path, e.g. net/mlp/l1")
    p.add_argument("--export", default=None, metavar="FILE", help="also write a jax.export artifact (.mlir, .mlirbc)")
    p.add_argument("-o", "--output", default=None, help="write the text to this file instead of stdout")
    p.add_argument("--debug", dest="debug_sub", action="store_true", help="show full tracebacks")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from blox_inspect.analysis.programs import (
        MSG_STAGE,
        STAGES,
        build_program,
        check_module,
        export_with_sidecar,
        program_text,
    )
    from blox_inspect.common.errors import InspectError
    from blox_inspect.common.output import write_output
    from blox_inspect.load.model_file import load_model
    from blox_inspect.renderers import emit

    if args.stage not in STAGES:
        raise InspectError(MSG_STAGE.format(got=args.stage, known=", ".join(STAGES)))
    loaded = load_model(args.model)
    scope = check_module(loaded, args.module) if args.module else None
    program = build_program(loaded, train=args.train)
    if args.export:
        data, sidecar = export_with_sidecar(program, args.export)
        write_output(data, args.export)  # says "wrote FILE (N bytes)"
        write_output(sidecar, args.export + ".json")  # every argument's name, shape and dtype
        if args.output is None and scope is None:
            return 0
    emit("program", program_text(program, args.stage, scope), "text", args.output)
    return 0
