"""Pins blox's import surface. Adding a public name means adding one line here (keep it sorted)."""

import importlib
import types

import blox

PUBLIC = [
    "BatchNorm",
    "BloxError",
    "CheckpointError",
    "CheckpointHeader",
    "CheckpointManager",
    "Conv",
    "ConvTranspose",
    "Dropout",
    "Embed",
    "GRU",
    "Graph",
    "GraphError",
    "KVCache",
    "LSTM",
    "LSTMState",
    "LayerNorm",
    "Linear",
    "LockedParamsError",
    "MLP",
    "MatchReport",
    "Module",
    "ModuleCall",
    "MultiHeadAttention",
    "OutputError",
    "Param",
    "ParamError",
    "Params",
    "RMSNorm",
    "RecurrenceBase",
    "Rng",
    "RngError",
    "ScanBlocks",
    "SequenceBase",
    "Sequential",
    "ShapeError",
    "SwiGLU",
    "TensorInfo",
    "TransformerBlock",
    "apply_rope",
    "avg_pool",
    "check_matches",
    "load",
    "load_state",
    "match_report",
    "max_pool",
    "min_pool",
    "observe_calls",
    "param_shardings",
    "param_specs",
    "parse_path",
    "path_str",
    "read_header",
    "read_tensor",
    "rope_frequencies",
    "save",
    "scope_for",
    "seed_all",
    "shape_only",
]


# Subpackages with their own pinned surface (tests/blox/test_models_public_api.py); imported on demand.
SUBPACKAGES = ["models"]


def test_public_names_are_exactly_the_pinned_list():
    assert PUBLIC == sorted(PUBLIC), "keep PUBLIC sorted so merges stay easy"
    names = [n for n in dir(blox) if not n.startswith("_")]
    assert sorted(n for n in names if not isinstance(getattr(blox, n), types.ModuleType)) == PUBLIC
    importlib.import_module("blox.models")

    assert sorted(n for n in dir(blox) if isinstance(getattr(blox, n), types.ModuleType) and n[0] != "_") == SUBPACKAGES


def test_public_names_come_from_private_modules():
    for name in PUBLIC:
        obj = getattr(blox, name)
        module = getattr(obj, "__module__", "")
        assert module.startswith("blox._"), f"{name} is defined in {module}; implement it in a private module"
