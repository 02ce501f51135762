"""Path tuples and their string form.

A graph path is a tuple of names. Names may hold any character, so the string
form escapes ``\\`` and ``/`` inside a name before joining with ``/``. The same
string is the ``jax.named_scope`` of a module, which lets tools map scopes in a
jaxpr or in HLO metadata back to exactly one path.

The empty string is the empty path ``()``. Joining would spell the one-name path
``('',)`` the same way, so that path alone is written ``\\.`` (backslash, dot);
:func:`parse_path` reads ``\\.`` as nothing wherever it appears. Every tuple of
strings therefore has exactly one string form, and ``parse_path(path_str(p)) == p``.
"""

from __future__ import annotations

Path = tuple[str, ...]


# The string of the path ('',): an escape that stands for no characters (see the module docstring).
EMPTY_NAME = "\\."


def _escape(name: str) -> str:
    return name.replace("\\", "\\\\").replace("/", "\\/")


def path_str(path: Path) -> str:
    """Joins a path tuple into its unambiguous ``/``-separated string.

    Example:
        >>> path_str(('net', 'mlp', 'a/b'))
        'net/mlp/a\\\\/b'
        >>> path_str(()), path_str(('',)), path_str(('', ''))
        ('', '\\\\.', '/')
    """
    if len(path) == 1 and not path[0]:
        return EMPTY_NAME
    try:
        joined = "/".join(path)
    except TypeError:  # a name that is not a str: let _escape say so, as it always has
        joined = None
    # Most names hold neither separator nor backslash: then the plain join is the answer (this runs
    # for every module call and every flatten of Params, so it is worth skipping the escapes).
    if joined is not None and "\\" not in joined and joined.count("/") == len(path) - 1:
        return joined
    return "/".join(_escape(n) for n in path)


def parse_path(text: str) -> Path:
    """Inverse of :func:`path_str`.

    Example:
        >>> parse_path(path_str(('net', 'a/b', 'c')))
        ('net', 'a/b', 'c')
        >>> parse_path(''), parse_path('\\\\.'), parse_path('/')
        ((), ('',), ('', ''))
    """
    if not text:
        return ()
    parts: list[str] = []
    cur: list[str] = []
    it = iter(text)
    for ch in it:
        if ch == "\\":
            # A lone trailing backslash is kept as itself; backslash-dot is the empty escape.
            escaped = next(it, "\\")
            if escaped != ".":
                cur.append(escaped)
        elif ch == "/":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return tuple(parts)
