"""Pins blox_inspect's import surface. Adding a public name means adding one line here (keep it sorted)."""

import types

import blox_inspect

PUBLIC = [
    "CostReport",
    "Finding",
    "InspectError",
    "LoadedModel",
    "Report",
    "check",
    "cost",
    "fan_in",
    "fan_out",
    "load_model",
    "longest_path",
    "summarize_loaded",
    "summary",
    "topological_order",
]


def test_public_names_are_exactly_the_pinned_list():
    assert PUBLIC == sorted(PUBLIC), "keep PUBLIC sorted so merges stay easy"
    names = [
        n
        for n in dir(blox_inspect)
        if not n.startswith("_") and not isinstance(getattr(blox_inspect, n), types.ModuleType)
    ]
    assert sorted(names) == PUBLIC


def test_public_names_come_from_private_modules():
    for name in PUBLIC:
        module = getattr(blox_inspect, name).__module__
        assert module.startswith("blox_inspect."), (name, module)
        assert any(part.startswith("_") or part == "checks" for part in module.split(".")[1:]), (name, module)
