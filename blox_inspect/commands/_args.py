"""Argument types shared by the subcommands, so one flag means one thing everywhere."""

from __future__ import annotations

import argparse

MSG_DEPTH = "expected a whole number of levels, 0 or more (0: the top module only), got {got!r}"


def depth(text: str) -> int:
    """``--depth N``: a non-negative level count; anything else is an argparse error (exit 2).

    Example:
        >>> depth('2')
        2
    """
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(MSG_DEPTH.format(got=text))
    return value


def add_table_args(p: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    """``--depth``, ``--fold``, ``--format`` and ``-o``: the module-table flags of ``summary`` and ``profile``."""
    p.add_argument("--depth", type=depth, metavar="N", help="show N levels of modules; deeper ones fold into parents")
    p.add_argument(
        "--fold",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fold 2 or more identical consecutive sibling blocks into one row marked xN, as the diagram does "
        "(default: on)",
    )
    p.add_argument("--format", choices=formats, help="output format (default: from -o's extension, else table)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
