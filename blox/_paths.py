"""Path tuples and their string form.

A graph path is a tuple of names. Names may hold any character, so the string
form escapes ``\\`` and ``/`` inside a name before joining with ``/``. The same
string is the ``jax.named_scope`` of a module, which lets tools map scopes in a
jaxpr or in HLO metadata back to exactly one path.
"""

from __future__ import annotations

Path = tuple[str, ...]


def _escape(name: str) -> str:
    return name.replace("\\", "\\\\").replace("/", "\\/")


def path_str(path: Path) -> str:
    """Joins a path tuple into its unambiguous ``/``-separated string.

    Example:
        >>> path_str(('net', 'mlp', 'a/b'))
        'net/mlp/a\\\\/b'
    """
    return "/".join(_escape(n) for n in path)


def parse_path(text: str) -> Path:
    """Inverse of :func:`path_str`.

    Example:
        >>> parse_path(path_str(('net', 'a/b', 'c')))
        ('net', 'a/b', 'c')
    """
    parts: list[str] = []
    cur: list[str] = []
    it = iter(text)
    for ch in it:
        if ch == "\\":
            cur.append(next(it, "\\"))
        elif ch == "/":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return tuple(parts)
