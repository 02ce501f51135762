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
