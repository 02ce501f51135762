"""docs/models.md names every config.json field each architecture reads, and every architecture."""

import pathlib
import re

import pytest

from blox.models import ARCHITECTURES, _bert, _gpt2, _llama, _vit

DOC = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("module", [_gpt2, _llama, _bert, _vit], ids=lambda m: m.__name__)
def test_every_config_field_read_is_documented(module):
    row = next(
        line
        for line in DOC.splitlines()
        if line.startswith(
            "| "
            + {"_gpt2": "GPT-2", "_llama": "Llama", "_bert": "BERT", "_vit": "ViT"}[module.__name__.rsplit(".", 1)[1]]
            + " |"
        )
    )
    named = set(re.findall(r"`([a-z_0-9]+)`", row))
    for hf_field, ours in module.HF_FIELDS.items():
        assert hf_field in named, f"{hf_field} is read but not in docs/models.md"
        assert ours in named or ours == hf_field, f"{hf_field} -> {ours} is not in docs/models.md"


def test_every_architecture_is_listed():
    for kind, arch in ARCHITECTURES.items():
        assert f"| `{kind}` | `{arch.model.__name__}` (`{arch.config.__name__}`)" in DOC
