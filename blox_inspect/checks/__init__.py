"""Static checks that find model bugs before they cost a training run (``blox-inspect check``).

One module per family; each registers its codes (``BX101``...) and a check function. Every check reads the
same :class:`CheckContext`, which traces the forward pass and the train step once. Codes are documented,
with a bad and a good example each, in docs/checks.md.
"""

from blox_inspect.checks import constants, dead, dtypes, gradients, numerics, rng, sharding  # noqa: F401 - registers the checks
from blox_inspect.checks._context import CheckContext as CheckContext
from blox_inspect.checks._context import parse_mesh as parse_mesh
from blox_inspect.checks._registry import CHECKS as CHECKS
from blox_inspect.checks._run import check as check
from blox_inspect.checks._run import exit_code as exit_code
from blox_inspect.checks._run import run_checks as run_checks
from blox_inspect.report.finding import CODES as CODES
from blox_inspect.report.finding import Finding as Finding
