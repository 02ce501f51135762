"""Static checks that find model bugs before they cost a training run (``blox-inspect check``).

One module per family; each registers its codes (``BX101``...) and a check function. Every check reads the
same :class:`CheckContext`, which traces the forward pass and the train step once. Codes are documented,
with a bad and a good example each, in docs/checks.md.
"""

from . import constants, dead, dtypes, gradients, numerics, rng, sharding  # noqa: F401 - registers the checks
from ._context import CheckContext as CheckContext
from ._context import parse_mesh as parse_mesh
from ._finding import CODES as CODES
from ._finding import Finding as Finding
from ._registry import CHECKS as CHECKS
from ._run import check as check
from ._run import exit_code as exit_code
from ._run import run_checks as run_checks
