"""Human-readable sizes, counts and durations for reports (exact integers stay in JSON)."""

from __future__ import annotations

DASH = "—"


def human_bytes(n: int | None) -> str:
    """``1536`` -> ``'1.5 KiB'``.

    Example:
        >>> human_bytes(14_336), human_bytes(3 * 2**30)
        ('14.0 KiB', '3.00 GiB')
    """
    if n is None:
        return DASH
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            value = n / size
            return f"{value:.2f} {unit}" if unit in ("GiB", "TiB") else f"{value:.1f} {unit}"
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
