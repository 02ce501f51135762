"""Sizes of arrays, and the one human-readable format of counts, FLOPs, bytes and durations (exact integers stay in JSON)."""

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


def human(n: float | int | None, unit: str = "", si: bool = False) -> str:
    """The one number formatter of every report, renderer and the TUI.

    * counts (no unit): ``K``, ``M``, ``B`` (billions, as model sizes are quoted), ``T``: ``124.4M``, ``7.0B``;
    * FLOPs and other quantities with a unit take SI prefixes: ``1.2 GFLOP``; ``si=True`` gives the same
      prefixes without a unit, for FLOP columns (``293.5G``);
    * bytes (``unit='B'``) are binary, everywhere: ``KiB``, ``MiB``, ``GiB`` (1 GiB = 2**30 bytes).

    One decimal, and a value that would print as 1000 carries to the next prefix.

    Example:
        >>> human(124_439_808), human(999_960), human(6_738_415_616, si=True), human(1023 * 1024 + 1000, "B")
        ('124.4M', '1.0M', '6.7G', '1.0 MiB')
        >>> human(68_976_648_192), human(3.2e12, "FLOP"), human(512, "B"), human(None)
        ('69.0B', '3.2 TFLOP', '512 B', '—')
    """
    if n is None:
        return DASH
    if unit == "B":
        value = float(n)
        for suffix in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
            # Compare the value as printed (one decimal), so 1023.97 KiB carries to 1.0 MiB.
            if abs(round(value, 1)) < 1024 or suffix == "PiB":
                return f"{int(value)} B" if suffix == "B" else f"{value:.1f} {suffix}"
            value /= 1024
    value = float(n)
    suffixes = ("", "K", "M", "G", "T", "P", "E") if unit or si else ("", "K", "M", "B", "T", "P", "E")
    for suffix in suffixes:
        if abs(round(value, 1)) < 1000 or suffix == "E":  # 999,960 reads 1.0M, not 1000.0K
            if suffix == "":
                text = f"{int(n):,}" if float(n).is_integer() else f"{value:.1f}"
                return f"{text} {unit}".rstrip() if unit else text
            return f"{value:.1f} {suffix}{unit}" if unit else f"{value:.1f}{suffix}"
        value /= 1000
    return str(n)


def human_bytes(n: int | None) -> str:
    """Bytes in binary units: ``human(n, 'B')``.

    Example:
        >>> human_bytes(14_336), human_bytes(80 * 10**9), human_bytes(512)
        ('14.0 KiB', '74.5 GiB', '512 B')
    """
    return human(n, "B")


def human_count(n: int | None) -> str:
    """A count (parameters, elements): ``human(n)``.

    Example:
        >>> human_count(65_536), human_count(1_234_567_890_123)
        ('65.5K', '1.2T')
    """
    return human(n)


def human_seconds(s: float) -> str:
    """Seconds with an SI prefix: ``human_seconds(0.0123)`` -> ``'12.3 ms'``."""
    for unit, size in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9), ("ps", 1e-12)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"
