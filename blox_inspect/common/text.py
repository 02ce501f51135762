"""Untrusted text made safe to show: names, configs and metadata from model files, checkpoints and saved reports.

Two hazards, handled apart because they belong to different outputs:

* **control characters** (``ESC ] 52`` writes the clipboard, ``ESC [ 2 J`` clears the screen, a bare
  ``\\r`` overwrites a line) reach a terminal from any renderer. :func:`visible` shows each as its
  Python escape (``\\x1b``), so the text stays readable and nothing is sent to the terminal.
* **markup**: Rich and Textual read ``[bold]`` or ``[/]`` in a string as style tags (``[/]`` can even
  crash). :func:`markup_safe` is :func:`visible` plus Rich's markup escaping, for every string that
  goes into a Rich or Textual widget.

Plain-text formats that are consumed by programs (CSV, JSON) keep the exact text: JSON escapes
control characters itself, and CSV cells are written with :func:`visible`.
"""

from __future__ import annotations

import re

# Everything that is not printable: C0/C1 controls, DEL, and the Unicode format, separator and
# private-use categories that terminals may act on (bidi overrides reorder what the eye reads).
_UNPRINTABLE = re.compile(r"[^\S ]|[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    return ascii(match.group())[1:-1]


def visible(text: object) -> str:
    r"""``text`` with every control or invisible formatting character shown as its escape.

    Example:
        >>> visible('h.0\x1b]52;c;ZWNobw==\x07'), visible('tab\there'), visible('ok name')
        ('h.0\\x1b]52;c;ZWNobw==\\x07', 'tab\\there', 'ok name')
    """
    text = str(text)
    if text.isprintable():  # the common case costs one C-level scan
        return text
    return _UNPRINTABLE.sub(_escape, text)


def markup_safe(text: object) -> str:
    r"""``text`` for a Rich or Textual widget that parses markup: control characters shown, tags escaped.

    Example:
        >>> markup_safe('Sequential(layers=[a, relu, b])'), markup_safe('[/]'), markup_safe('[bold red]x')
        ('Sequential(layers=\\[a, relu, b])', '\\[/]', '\\[bold red]x')
    """
    text = visible(text)
    if "[" not in text:
        return text
    # Rich's own rule (rich.markup.escape) without importing Rich here: a backslash before any
    # '[' that starts something tag-like, and a doubled backslash where one already precedes it.
    return _TAG.sub(lambda m: m.group(1) + m.group(1) + "\\" + m.group(2), text)


_TAG = re.compile(r"(\\*)(\[[a-zA-Z#/@].*?\])")

# Characters that start markdown structure inside a table cell: pipes end the cell, '<' opens HTML
# (dtypes such as key<fry> would vanish), '*' and '`' restyle, and a ']' followed by '(' or '[' closes
# a link (escaping it breaks the link, while shapes such as f32[4,16] stay as they are).
_MD_SPECIAL = re.compile(r"([\\`*|<]|\](?=[(\[]))")


def md_cell(text: object) -> str:
    r"""``text`` for one cell (or list item) of a GitHub-flavoured markdown document.

    Example:
        >>> md_cell('key<fry>'), md_cell('[x](http://e.x) | *y*'), md_cell('a\nb')
        ('key\\<fry>', '[x\\](http://e.x) \\| \\*y\\*', 'a\\\\nb')
    """
    return _MD_SPECIAL.sub(r"\\\1", visible(text))


def ellipsize(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with a middle ellipsis, keeping both ends readable.

    Example:
        >>> ellipsize('transformer/h/0/attn/c_attn', 16), ellipsize('short', 16)
        ('transfor…/c_attn', 'short')
    """
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 2 + (width - 1) % 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")
