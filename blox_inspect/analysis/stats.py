"""Statistics of one parameter array: moments, extremes, special values and a histogram.

Pure numpy, so it runs on values read straight from a checkpoint without
touching JAX. Renderers (the Textual app) only display the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Unicode eighth blocks, lowest to highest, for one-line histograms.
BLOCKS = " ▁▂▃▄▅▆▇█"


@dataclass
class ArrayStats:
    """Summary of one array. Moments and extremes ignore NaNs and infs.

    ``mean``/``std``/``min``/``max``/``l2`` are None when the array has no
    finite values. ``hist_counts``/``hist_edges`` are a histogram of the
    finite values (``len(edges) == len(counts) + 1``).
    """

    size: int
    dtype: str
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    l2: float | None
    zeros: int
    nans: int
    infs: int
    hist_counts: list[int] = field(default_factory=list)
    hist_edges: list[float] = field(default_factory=list)


def array_stats(value, bins: int = 24) -> ArrayStats:
    """Computes :class:`ArrayStats` for any numeric array (bool and bfloat16 included).

    Computed in float64 so the numbers do not depend on the stored precision.

    Example:
        >>> import numpy as np
        >>> s = array_stats(np.array([0.0, 3.0, 4.0, np.nan]))
        >>> s.mean, s.l2, s.zeros, s.nans
        (2.333..., 5.0, 1, 1)
    """
    arr = np.asarray(value)
    dtype = str(arr.dtype)
    if arr.size > BLOCK:
        return _blockwise_stats(arr, dtype, bins)
    # bfloat16/float8 (ml_dtypes) and bool convert cleanly through float64.
    x = arr.astype(np.float64).ravel()
    finite_mask = np.isfinite(x)
    nans = int(np.count_nonzero(np.isnan(x)))
    infs = int(np.count_nonzero(np.isinf(x)))
    zeros = int(np.count_nonzero(x == 0))
    finite = x[finite_mask] if nans or infs else x
    if finite.size == 0:
        return ArrayStats(int(x.size), dtype, None, None, None, None, None, zeros, nans, infs)
    lo, hi = float(finite.min()), float(finite.max())
    counts, edges = np.histogram(finite, bins=bins, range=(lo, hi) if hi > lo else (lo - 0.5, hi + 0.5))
    return ArrayStats(
        size=int(x.size),
        dtype=dtype,
        mean=float(finite.mean()),
        std=float(finite.std()),
        min=lo,
        max=hi,
        l2=float(np.sqrt(np.dot(finite, finite))),
        zeros=zeros,
        nans=nans,
        infs=infs,
        hist_counts=[int(c) for c in counts],
        hist_edges=[float(e) for e in edges],
    )


# Arrays above this many elements are summarised block by block: a float64 copy of a whole 1 GiB
# float32 tensor, plus the temporaries of std and the histogram, would need five times its size.
BLOCK = 1 << 20


def _blockwise_stats(arr: np.ndarray, dtype: str, bins: int) -> ArrayStats:
    """:func:`array_stats` of a big array in blocks of ``BLOCK`` elements: memory beyond the array stays
    a few float64 blocks. Two passes: counts, extremes and sums, then squared deviations and the histogram
    (its range is known only after the first). Sums of float64 block sums agree with numpy's whole-array
    sums to about 1e-15; extremes, counts and the histogram are exact."""
    flat = arr.reshape(-1)
    size = int(flat.size)

    def blocks():
        for start in range(0, size, BLOCK):
            x = flat[start : start + BLOCK].astype(np.float64)
            finite = np.isfinite(x)
            yield x, (x if finite.all() else x[finite])

    nans = infs = zeros = n = 0
    total = sq = 0.0
    lo, hi = np.inf, -np.inf
    for x, finite in blocks():
        nans += int(np.count_nonzero(np.isnan(x)))
        infs += int(np.count_nonzero(np.isinf(x)))
        zeros += int(np.count_nonzero(x == 0))
        if finite.size:
            n += finite.size
            total += float(finite.sum())
            sq += float(np.dot(finite, finite))
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    if n == 0:
        return ArrayStats(size, dtype, None, None, None, None, None, zeros, nans, infs)
    mean = total / n
    hist_range = (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)
    counts = np.zeros(bins, np.int64)
    deviations = 0.0
    edges = None
    for _, finite in blocks():
        if finite.size:
            d = finite - mean
            deviations += float(np.dot(d, d))
            c, edges = np.histogram(finite, bins=bins, range=hist_range)
            counts += c
    return ArrayStats(
        size=size,
        dtype=dtype,
        mean=mean,
        std=float(np.sqrt(deviations / n)),
        min=lo,
        max=hi,
        l2=float(np.sqrt(sq)),
        zeros=zeros,
        nans=nans,
        infs=infs,
        hist_counts=[int(c) for c in counts],
        hist_edges=[float(e) for e in edges],
    )


def histogram_bars(counts: list[int], height: int = 1) -> list[str]:
    """Draws counts as ``height`` rows of unicode block characters, top row first.

    Every non-empty bin shows at least the lowest block, so rare values stay visible.

    Example:
        >>> histogram_bars([0, 1, 4, 8])
        [' ▁▄█']
        >>> histogram_bars([0, 2, 4], height=2)
        ['  █', ' ██']
    """
    if not counts:
        return [""] * height
    top = max(counts) or 1
    levels = height * 8
    filled = [0 if c == 0 else max(1, round(c / top * levels)) for c in counts]
    rows = []
    for row in range(height - 1, -1, -1):
        base = row * 8
        rows.append("".join(BLOCKS[min(8, max(0, f - base))] for f in filled))
    return rows
