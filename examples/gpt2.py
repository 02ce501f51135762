"""GPT-2 small (124,439,808 params) from ``blox.models``, for `blox-inspect examples/gpt2.py`.

The input and output embeddings are tied: the logits are ``wte.attend(x)``.
Module names follow the original checkpoint: ``wte``, ``wpe``, ``h/0/ln_1``,
``h/0/attn``, ``h/0/mlp``, ``ln_f``. Importing this file has no side effects.
Real weights load with ``blox.models.from_hf(folder)``.

Example:
    >>> import jax
    >>> model, inputs, kwargs = build()
    >>> params = jax.eval_shape(lambda ids: model(seed(model), ids, **kwargs)[1], *inputs)
    >>> count_params(params)
    124439808
"""

import jax
import jax.numpy as jnp

import blox as bx
from blox.models import GPT2, GPT2Config, count_params

__all__ = ["GPT2", "GPT2Config", "build", "build_scan", "count_params", "seed"]


def seed(model: bx.Module, seed: int = 0) -> bx.Params:
    """Params holding only the seeded Rngs of ``model``'s graph: the start of an init."""
    return bx.seed_all(model.graph.root, bx.Params(), seed)


def build(scan: bool = False, seq_len: int = 1024):
    """GPT-2 small on one sequence of 1024 tokens, run in eval mode."""
    model = GPT2(bx.Graph("gpt2") / "transformer", GPT2Config(scan=scan))
    return model, (jax.ShapeDtypeStruct((1, seq_len), jnp.int32),), {"is_training": False}


def build_scan():
    """The same model with its 12 blocks run by one ``lax.scan`` (params stacked per layer)."""
    return build(scan=True)
