"""Test helper: tiny Hugging Face Flax reference models, saved in the Flax naming and rewritten in PyTorch's.

The PyTorch rewrite follows Hugging Face's documented convention (the inverse
of the rule its Flax loader applies to PyTorch checkpoints): ``kernel`` ->
``weight`` transposed (4-D convolution kernels HWIO -> OIHW), ``embedding``
and ``scale`` -> ``weight``. The tests check the rewrite is right by loading
it back with the reference's own ``from_pretrained``.
"""

import json
import os
import shutil
from contextlib import contextmanager

import jax
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict
from safetensors.numpy import load_file, save_file


@contextmanager
def highest_precision():
    """float32 matmuls at full precision (XLA:CPU may otherwise use faster, looser ones), restored after."""
    old = jax.config.jax_default_matmul_precision
    jax.config.update("jax_default_matmul_precision", "highest")
    try:
        yield
    finally:
        jax.config.update("jax_default_matmul_precision", old)


def randomize(model, seed=0, std=0.25):
    """Replaces the reference's init (std 0.02, which makes every logit nearly 0) with larger random weights."""
    rs = np.random.RandomState(seed)
    flat = flatten_dict(jax.device_get(model.params))
    out = {}
    for key, value in flat.items():
        if key[-1] in ("scale", "weight") and value.ndim == 1:  # norm scales around 1
            new = 1.0 + 0.2 * rs.normal(size=value.shape)
        else:
            new = std * rs.normal(size=value.shape)
        out[key] = new.astype(np.float32)
    model.params = unflatten_dict(out)
    return model


def save_flax(model, folder):
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def rewrite_pt(flax_folder, pt_folder, strip_prefix=None, extra=None):
    """The same weights in the hub's PyTorch naming and layout (``metadata={'format': 'pt'}``)."""
    os.makedirs(pt_folder, exist_ok=True)
    shutil.copy(os.path.join(flax_folder, "config.json"), os.path.join(pt_folder, "config.json"))
    tensors = {}
    for name, value in load_file(os.path.join(flax_folder, "model.safetensors")).items():
        *stem, last = name.split(".")
        if last == "kernel":
            value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
            last = "weight"
        elif last in ("embedding", "scale"):
            last = "weight"
        name = ".".join([*stem, last])
        if strip_prefix and name.startswith(strip_prefix + "."):
            name = name[len(strip_prefix) + 1 :]
        tensors[name] = np.ascontiguousarray(value)
    tensors.update(extra or {})
    save_file(tensors, os.path.join(pt_folder, "model.safetensors"), metadata={"format": "pt"})
    return pt_folder


def edit_config(folder, **changes):
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        config = json.load(f)
    config.update(changes)
    with open(path, "w") as f:
        json.dump(config, f)


@contextmanager
def reference_numpy():
    """Hugging Face's Flax code relies on NumPy rank promotion, which the test suite's strict mode forbids."""
    old = jax.config.jax_numpy_rank_promotion
    jax.config.update("jax_numpy_rank_promotion", "allow")
    try:
        yield
    finally:
        jax.config.update("jax_numpy_rank_promotion", old)


class Reference:
    """A Hugging Face Flax model whose calls run with rank promotion allowed (blox code stays strict)."""

    def __init__(self, model):
        self.model = model

    @classmethod
    def build(cls, model_class, config, seed=0):
        with reference_numpy(), highest_precision():
            return cls(randomize(model_class(config, seed=0), seed=seed))

    @classmethod
    def load(cls, model_class, folder):
        with reference_numpy():
            return cls(model_class.from_pretrained(folder))

    @property
    def params(self):
        return self.model.params

    def __call__(self, *args, **kwargs):
        with reference_numpy():
            return self.model(*args, **kwargs)

    def generate(self, *args, **kwargs):
        with reference_numpy():
            return self.model.generate(*args, **kwargs)

    def save(self, folder):
        with reference_numpy():
            self.model.save_pretrained(folder, safe_serialization=True)
        return folder
