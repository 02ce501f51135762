"""Pins blox.models' import surface. Adding a public name means adding one line here (keep it sorted)."""

import blox.models

PUBLIC = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "BasicBlock",
    "Bert",
    "BertConfig",
    "BertOutput",
    "Bottleneck",
    "GPT2",
    "GPT2Config",
    "HFMatch",
    "HFMatchError",
    "Llama",
    "LlamaConfig",
    "ResNet",
    "Shortcut",
    "ViT",
    "ViTConfig",
    "ViTOutput",
    "build_from_config",
    "config_from_hf",
    "count_params",
    "filter_logits",
    "from_hf",
    "generate",
    "resnet18",
    "resnet50",
    "to_hf",
]


def test_public_names_are_exactly_the_pinned_list():
    assert PUBLIC == sorted(PUBLIC), "keep PUBLIC sorted so merges stay easy"
    assert sorted(n for n in dir(blox.models) if not n.startswith("_")) == PUBLIC


def test_public_names_come_from_private_modules():
    for name in PUBLIC:
        obj = getattr(blox.models, name)
        if isinstance(obj, dict):  # the tables
            continue
        module = getattr(obj, "__module__", "")
        assert module.startswith("blox.models._"), f"{name} is defined in {module}; implement it in a private module"


def test_every_architecture_reads_and_writes_the_same_config_fields():
    # Each config class round-trips its own Hugging Face config: to_hf then from_hf gives it back.
    for kind, arch in blox.models.ARCHITECTURES.items():
        config = arch.config()
        hf = config.to_hf()
        assert hf["model_type"] == kind
        assert arch.config.from_hf(hf) == config, kind
