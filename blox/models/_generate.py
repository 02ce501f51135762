"""Decoding with the KV cache: greedy, or sampling with temperature, top-k and top-p, reproducible from a seed."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from .._module import Module
from .._params import Params


def filter_logits(logits: jax.Array, top_k: int | None = None, top_p: float | None = None) -> jax.Array:
    """Sets every logit outside the top ``top_k`` and outside the ``top_p`` nucleus to ``-inf``.

    The nucleus is the smallest set of most likely tokens whose probabilities
    sum to at least ``top_p``; the most likely token always stays.

    Example:
        >>> import jax.numpy as jnp
        >>> from blox.models import filter_logits
        >>> filter_logits(jnp.log(jnp.array([0.5, 0.3, 0.15, 0.05])), top_p=0.7).tolist()[2:]
        [-inf, -inf]
    """
    logits = logits.astype(jnp.float32)
    neg = jnp.full_like(logits, -jnp.inf)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, neg, logits)
    if top_p is not None:
        ordered = jnp.sort(logits, axis=-1)[..., ::-1]
        probs = jax.nn.softmax(ordered, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs  # mass of the more likely tokens
        kept = jnp.where(before < top_p, ordered, jnp.inf)
        threshold = jnp.min(kept, axis=-1, keepdims=True)
        logits = jnp.where(logits < threshold, neg, logits)
    return logits


@functools.partial(jax.jit, static_argnames=("model", "max_new_tokens", "top_k", "greedy", "use_top_p", "eos", "pad"))
def _decode(model, params, ids, mask, key, temperature, top_p, *, max_new_tokens, top_k, greedy, use_top_p, eos, pad):
    b, t = ids.shape
    cache = model.init_cache(b, t + max_new_tokens)
    keys = jnp.concatenate([mask, jnp.ones((b, max_new_tokens), mask.dtype)], axis=1)
    # Left padding: real tokens are numbered from 0, as Hugging Face's generate does.
    positions = jnp.maximum(jnp.cumsum(mask, axis=1) - 1, 0)
    (logits, cache), _ = model(params, ids, mask=keys, positions=positions, cache=cache, is_training=False)

    def pick(last, i):
        if greedy:
            return jnp.argmax(last, axis=-1).astype(ids.dtype)
        scaled = filter_logits(last.astype(jnp.float32) / temperature, top_k, top_p if use_top_p else None)
        return jax.random.categorical(jax.random.fold_in(key, i), scaled, axis=-1).astype(ids.dtype)

    def step(carry, i):
        last, cache, pos, done = carry
        token = pick(last, i)
        if eos is not None:
            token = jnp.where(done, jnp.asarray(pad, ids.dtype), token)
            done = done | (token == eos)
        (logits, cache), _ = model(
            params, token[:, None], mask=keys, positions=pos[:, None], cache=cache, is_training=False
        )
        return (logits[:, -1], cache, pos + 1, done), token

    init = (logits[:, -1], cache, positions[:, -1] + 1, jnp.zeros((b,), bool))
    _, tokens = jax.lax.scan(step, init, jnp.arange(max_new_tokens))
    return jnp.concatenate([ids, tokens.T], axis=1)


def generate(
    model: Module,
    params: Params,
    ids: Any,
    max_new_tokens: int,
    *,
    mask: Any = None,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
) -> jax.Array:
    """Extends token ids ``(batch, length)`` by ``max_new_tokens`` with a causal model and its KV cache.

    The prompt runs once to fill the cache; each new token then costs one
    single-position call. ``temperature=0`` is greedy (argmax); above 0 the
    next token is sampled from ``softmax(logits / temperature)`` restricted by
    ``top_k`` and ``top_p`` (see :func:`filter_logits`), with keys derived from
    ``seed``, so a seed reproduces its tokens. The whole loop is one compiled
    ``lax.scan``.

    Args:
        model: a causal ``blox.models`` model (GPT2, Llama), or any module with
            ``init_cache`` and a call taking ``mask``, ``positions``, ``cache``
            and ``is_training``.
        params: its params.
        ids: the prompts; left-pad unequal ones and pass ``mask``.
        max_new_tokens: how many tokens to add.
        mask: ``(batch, length)``, 1 for real prompt tokens, 0 for left padding.
        temperature, top_k, top_p: the sampling rule (see above).
        seed: the sampling seed.
        eos_token_id: ends a sequence; its later tokens are ``pad_token_id``
            (default: ``eos_token_id``), as in Hugging Face's ``generate``.

    Returns:
        ``(batch, length + max_new_tokens)`` token ids, the prompt first.

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx
        >>> from blox.models import Llama, LlamaConfig, generate
        >>> model = Llama(bx.Graph('llama') / 'model', LlamaConfig(vocab_size=32, width=16, num_layers=1,
        ...               num_heads=2, mlp_size=32))
        >>> ids = jnp.array([[1, 2, 3]])
        >>> _, params = jax.jit(model)(bx.seed_all(model.graph.root, bx.Params()), ids)
        >>> generate(model, params, ids, 4).shape
        (1, 7)
    """
    ids = jnp.asarray(ids, jnp.int32)
    if ids.ndim != 2:
        raise ValueError(f"generate: expected token ids shaped (batch, length), got shape {ids.shape}.")
    if max_new_tokens < 1:
        raise ValueError(f"generate: max_new_tokens must be at least 1, got {max_new_tokens}.")
    if temperature < 0 or (top_p is not None and not 0 < top_p <= 1) or (top_k is not None and top_k < 1):
        raise ValueError(
            f"generate: expected temperature >= 0, 0 < top_p <= 1 and top_k >= 1, got temperature={temperature}, "
            f"top_p={top_p}, top_k={top_k}."
        )
    mask = jnp.ones(ids.shape, jnp.int32) if mask is None else jnp.asarray(mask, jnp.int32)
    if mask.shape != ids.shape:
        raise ValueError(f"generate: mask of shape {mask.shape} does not match ids of shape {ids.shape}.")
    greedy = temperature == 0
    return _decode(
        model,
        params,
        ids,
        mask,
        jax.random.key(seed),
        jnp.float32(1.0 if greedy else temperature),
        jnp.float32(1.0 if top_p is None else top_p),
        max_new_tokens=int(max_new_tokens),
        top_k=top_k,
        greedy=greedy,
        use_top_p=top_p is not None,
        eos=eos_token_id,
        pad=eos_token_id if pad_token_id is None else pad_token_id,
    )
