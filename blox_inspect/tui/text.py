"""Untrusted text (names, configs, metadata) as Rich ``Text`` for widgets: control characters shown, no markup."""

from __future__ import annotations

from rich.text import Text

from blox_inspect.common.text import visible


def safe(text: object, style: str = "") -> Text:
    r"""Untrusted text (a name, a config, metadata) for a widget: control characters shown, never markup.

    Example:
        >>> safe('net/[bold red]x\x1b]52;c;Zm9v\x07').plain
        'net/[bold red]x\\x1b]52;c;Zm9v\\x07'
    """
    return Text(visible(text), style=style)


def safe_lines(lines: list[str], style: str = "") -> Text:
    r"""Several untrusted strings, one a line (a line break inside one shows as ``\n``).

    Example:
        >>> safe_lines(['note = [/]', 'act = a\nb']).plain
        'note = [/]\nact = a\\nb'
    """
    return Text("\n", style=style).join(safe(line, style) for line in lines)
