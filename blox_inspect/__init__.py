"""blox_inspect: inspect blox models abstractly (shapes, params, FLOPs, costs, diagrams, checks)."""

from ._cost import cost as cost
from ._cost_report import CostReport as CostReport
from ._errors import InspectError as InspectError
from ._loading import LoadedModel as LoadedModel
from ._loading import load_model as load_model
from ._networkx import fan_in as fan_in
from ._networkx import fan_out as fan_out
from ._networkx import longest_path as longest_path
from ._networkx import topological_order as topological_order
from ._report import Report as Report
from ._summary import summarize_loaded as summarize_loaded
from ._summary import summary as summary
from .checks import Finding as Finding
from .checks import check as check
