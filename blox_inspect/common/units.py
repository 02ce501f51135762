"""Sizes of arrays, and human-readable sizes, counts and durations for reports (exact integers stay in JSON)."""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp

DASH = "—"


def itemsize(dtype: Any) -> int:
    """Bytes per element of a dtype, a dtype name, or a JAX extended dtype (PRNG keys).

    Example:
        >>> import jax
        >>> itemsize('bfloat16'), itemsize(jax.eval_shape(lambda: jax.random.key(0)).dtype), itemsize('key<fry>')
        (2, 8, 8)
    """
    size = getattr(dtype, "itemsize", None)  # numpy dtypes and JAX's key dtypes know their own size
    if size is not None:
        return int(size)
    try:
        return int(jnp.dtype(dtype).itemsize)
    except TypeError:
        # A key dtype's name from a saved report ('key<fry>'): threefry keys are two uint32 words.
        return 8 if "key" in str(dtype) else 4


def array_bytes(shape: Any, dtype: Any) -> int:
    """Bytes of an array of ``shape`` and ``dtype`` (a scalar for ``shape == ()``)."""
    return math.prod(int(d) for d in shape) * itemsize(dtype)


def human_bytes(n: int | None) -> str:
    """Decimal units, as device memory is sold (and as ``--device-memory 80GB`` reads): 1 GB = 10^9 bytes.

    Example:
        >>> human_bytes(14_336), human_bytes(80 * 10**9), human_bytes(512)
        ('14.3 KB', '80.00 GB', '512 B')
    """
    if n is None:
        return DASH
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if abs(n) >= size:
            value = n / size
            return f"{value:.2f} {unit}" if unit in ("GB", "TB") else f"{value:.1f} {unit}"
    return f"{n} B"


def human_count(n: int | None) -> str:
    """``65536`` -> ``'65.5 K'`` (exact integers stay in JSON).

    Example:
        >>> human_count(65_536), human_count(1_234_567_890_123)
        ('65.5 K', '1.23 T')
    """
    if n is None:
        return DASH
    for unit, size in (("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return str(n)


def human_seconds(s: float) -> str:
    for unit, size in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9), ("ps", 1e-12)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"
