"""Pins blox_inspect's import surface. Adding a public name means adding one line here (keep it sorted)."""

import types

import blox_inspect

TIERS = {"analysis", "checks", "common", "load", "renderers", "report"}

PUBLIC = [
    "CostReport",
    "Finding",
    "InspectError",
    "LoadedModel",
    "ProfileReport",
    "Report",
    "check",
    "cost",
    "fan_in",
    "fan_out",
    "load_model",
    "longest_path",
    "profile",
    "render",
    "summarize_loaded",
    "summary",
    "to_networkx",
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
        assert module.split(".")[1] in TIERS, (name, module)


def test_importing_blox_inspect_imports_no_jax():
    import subprocess
    import sys

    code = "import sys, blox_inspect; blox_inspect.__dir__(); print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"
