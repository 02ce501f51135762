"""blox_inspect: inspect blox models abstractly (shapes, params, FLOPs, costs, diagrams, checks), or profile them.

Names are imported on first use (module ``__getattr__``), so ``blox-inspect --help`` and
``--load report.json`` start without importing JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module that defines it
_EXPORTS = {
    "CostReport": "blox_inspect.report.cost",
    "Finding": "blox_inspect.report.finding",
    "InspectError": "blox_inspect.common.errors",
    "LoadedModel": "blox_inspect.load.model_file",
    "ProfileReport": "blox_inspect.report.profile",
    "Report": "blox_inspect.report.model",
    "check": "blox_inspect.checks._run",
    "cost": "blox_inspect.analysis.cost",
    "fan_in": "blox_inspect.analysis.dataflow",
    "fan_out": "blox_inspect.analysis.dataflow",
    "load_model": "blox_inspect.load.model_file",
    "longest_path": "blox_inspect.analysis.dataflow",
    "profile": "blox_inspect.analysis.profile",
    "render": "blox_inspect.renderers",
    "summarize_loaded": "blox_inspect.analysis.summary",
    "summary": "blox_inspect.analysis.summary",
    "to_networkx": "blox_inspect.analysis.dataflow",
    "topological_order": "blox_inspect.analysis.dataflow",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'blox_inspect' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(_EXPORTS)
