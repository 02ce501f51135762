"""What the pretrained architectures share: activations by Hugging Face name, config fields, masks and caches."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from .._errors import CheckpointError
from .._params import Params
from .._scan import ScanBlocks

MSG_ACTIVATION = (
    "{where}: activation {got!r} is not supported; expected one of {known}. It is read from config.json's "
    "{field!r} field."
)
MSG_UNSUPPORTED = (
    "{where}: config.json sets {field}={got!r}, which blox.models does not implement (supported: {want!r}). "
    "Loading it anyway would compute something else than the checkpoint was trained for."
)
MSG_NO_CONFIG = (
    "{where}: no config.json. A Hugging Face model folder holds config.json beside model.safetensors (or the "
    "shards named by model.safetensors.index.json); pass that folder, or a config dict."
)
MSG_BAD_CONFIG = "{where}: config.json is not a JSON object ({why}). Re-download or re-save the model folder."
MSG_MISSING_FIELD = (
    "{where}: config.json has no {field!r}, which {arch} needs (and has no default for). Add it, or re-save the "
    "folder with the Hugging Face version that made it."
)


def gelu_exact(x: jax.Array) -> jax.Array:
    """GELU with the exact error function (Hugging Face ``gelu``; BERT, ViT)."""
    return jax.nn.gelu(x, approximate=False)


def gelu_tanh(x: jax.Array) -> jax.Array:
    """GELU's tanh approximation (Hugging Face ``gelu_new`` / ``gelu_pytorch_tanh``; GPT-2)."""
    return jax.nn.gelu(x, approximate=True)


def quick_gelu(x: jax.Array) -> jax.Array:
    """``x * sigmoid(1.702 x)`` (Hugging Face ``quick_gelu``)."""
    return x * jax.nn.sigmoid(1.702 * x)


ACTIVATIONS: dict[str, Callable] = {
    "gelu": gelu_exact,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_tanh,
    "quick_gelu": quick_gelu,
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "tanh": jnp.tanh,
}


def activation(name: str, where: str, field: str = "hidden_act") -> Callable:
    """The activation function a config.json names, or a clear error."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise CheckpointError(
            MSG_ACTIVATION.format(where=where, got=name, known=sorted(ACTIVATIONS), field=field)
        ) from None


def read_config(source: str | os.PathLike | Mapping) -> tuple[dict, str]:
    """``(config dict, where)`` from a model folder, a config.json path, or a dict already read."""
    if isinstance(source, Mapping):
        return dict(source), "config"
    path = os.fspath(source)
    file = os.path.join(path, "config.json") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise CheckpointError(MSG_NO_CONFIG.format(where=path))
    try:
        with open(file, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(MSG_BAD_CONFIG.format(where=file, why=e)) from e
    if not isinstance(config, dict):
        raise CheckpointError(MSG_BAD_CONFIG.format(where=file, why=f"found {type(config).__name__}"))
    return config, file


def field(hf: Mapping, name: str, where: str, arch: str, default: Any = ...) -> Any:
    """``hf[name]``; a missing field takes ``default`` (the Hugging Face default) or is an error without one."""
    value = hf.get(name, default)
    if value is ...:
        raise CheckpointError(MSG_MISSING_FIELD.format(where=where, field=name, arch=arch))
    return value


def reject(hf: Mapping, where: str, supported: Mapping[str, Any]) -> None:
    """Raises when config.json turns on a feature this implementation does not compute."""
    for name, want in supported.items():
        got = hf.get(name, want)
        ok = got in want if isinstance(want, tuple) else got == want
        if not ok:
            raise CheckpointError(MSG_UNSUPPORTED.format(where=where, field=name, got=got, want=want))


# Fields every config.json has that no config class keeps: to_hf writes them from the model itself.
_WRITTEN = {"torch_dtype", "architectures", "model_type"}


def finish_from_hf(cls: type, hf: Mapping, fields: Mapping, values: dict, overrides: Mapping) -> Any:
    """The config from the ``values`` read, keeping the fields it does not model (``hf_extra``) for ``to_hf``."""
    values["hf_extra"] = {k: v for k, v in hf.items() if k not in set(fields) | _WRITTEN}
    values.update(overrides)
    return cls(**values)


def hf_dict(config: Any, fields: Mapping, model_type: str, architecture: str, **special: Any) -> dict:
    """A config.json dict: the kept extras, each ``fields`` entry from its config field, then ``special``."""
    out = dict(config.hf_extra)
    out.update({theirs: getattr(config, ours) for theirs, ours in fields.items()})
    out.update(model_type=model_type, architectures=[architecture], torch_dtype=dtype_name(config.param_dtype))
    out.update(special)
    return out


def dtype_name(dtype: Any) -> str:
    """Hugging Face's ``torch_dtype`` spelling of a JAX dtype."""
    return jnp.dtype(dtype).name


def key_mask(mask: jax.Array | None) -> jax.Array | None:
    """A ``(batch, keys)`` padding mask (True or 1 = a real token) as the attention's ``(batch, 1, keys)``."""
    if mask is None:
        return None
    m = jnp.asarray(mask)
    if m.ndim != 2:
        raise ValueError(
            f"expected a padding mask shaped (batch, keys) with True (or 1) for real tokens, got shape {m.shape}. "
            "With a KV cache, keys is the cache length."
        )
    return (m != 0)[:, None, :]


def cache_start(cache: Any) -> jax.Array:
    """How many positions a model's cache (a list of KVCaches, or one stacked by ScanBlocks) holds."""
    if isinstance(cache, (list, tuple)) and not hasattr(cache, "index"):
        return cache[0].index
    return cache.index if jnp.ndim(cache.index) == 0 else cache.index[0]


def need_is_training(where: str, is_training: bool | None, dropout: bool) -> None:
    if dropout and is_training is None:
        raise ValueError(
            f"{where}: dropout is on (the config's dropout rates are above 0), so the call needs "
            "is_training=True or is_training=False."
        )


def count_params(params: Any) -> int:
    """The number of trainable values (Rng state excluded)."""
    return sum(math.prod(p.value.shape) for p in params.values() if p.trainable)


def init_block_cache(blocks: list, batch: int, max_len: int, dtype: Any) -> Any:
    """One empty KV cache per block, or the stacked one of a single ScanBlocks."""
    if len(blocks) == 1 and isinstance(blocks[0], ScanBlocks):
        return blocks[0].init_cache(batch, max_len, dtype)
    return [b.init_cache(batch, max_len, dtype) for b in blocks]


def run_blocks(
    blocks: list,
    params: Params,
    x: jax.Array,
    mask: Any,
    cache: Any,
    is_training: bool | None,
    positions: jax.Array | None = None,
) -> tuple[jax.Array, Any, Params]:
    """Runs causal blocks in order, threading each block's KV cache (``cache=None``: no cache)."""
    kwargs: dict[str, Any] = {"mask": mask, "causal": True}
    if is_training is not None:
        kwargs["is_training"] = is_training
    if positions is not None:
        kwargs["positions"] = positions
    if cache is None:
        for block in blocks:
            x, params = block(params, x, **kwargs)
        return x, None, params
    if len(blocks) == 1 and isinstance(blocks[0], ScanBlocks):
        (x, cache), params = blocks[0](params, x, cache=cache, **kwargs)
        return x, cache, params
    new = []
    for block, c in zip(blocks, cache):
        (x, c), params = block(params, x, cache=c, **kwargs)
        new.append(c)
    return x, new, params
