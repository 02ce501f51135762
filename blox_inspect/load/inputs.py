"""What a command's path argument names: a model file, a Hugging Face model folder, or a checkpoint.

The one place this is decided, so ``summary``, ``tui`` and ``diff`` read the same path the same way.
"""

from __future__ import annotations

import os

MODEL_FILE = "model file"
HF_MODEL_FOLDER = "Hugging Face model folder"
CHECKPOINT = "checkpoint"

# A safetensors file, or the index of a sharded one (Hugging Face's layout).
CHECKPOINT_SUFFIXES = (".safetensors", ".safetensors.index.json")


def classify(spec: str) -> str:
    """``model.py[:factory]`` is a model file; a folder with a ``config.json`` a Hugging Face model folder
    (its architecture, built from the config); a ``.safetensors`` file, an index or any other folder
    (shards, an Orbax checkpoint) a checkpoint. Anything else is taken as a model file, whose loader
    says what is wrong with it.

    Example:
        >>> classify('examples/gpt2.py:build'), classify('model.safetensors'), classify('m.safetensors.index.json')
        ('model file', 'checkpoint', 'checkpoint')
    """
    path = spec.rpartition(":")[0] if ":" in spec and spec.rpartition(":")[0].endswith(".py") else spec
    if path.endswith(".py"):
        return MODEL_FILE
    if path.endswith(CHECKPOINT_SUFFIXES):
        return CHECKPOINT
    if os.path.isdir(path):
        return HF_MODEL_FOLDER if os.path.exists(os.path.join(path, "config.json")) else CHECKPOINT
    return MODEL_FILE
