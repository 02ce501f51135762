"""Vim-style movement for the tree and the tables: j/k (and h/l in the tree), gg to the top, G to the end."""

from __future__ import annotations

import time

from textual.binding import Binding

# Two presses of g closer than this make gg; a lone g does nothing.
GG_SECONDS = 1.0


def vim_bindings(top: str, bottom: str, *, tree: bool = False) -> list[Binding]:
    """j/k/G (and h/l for a tree) mapped onto a widget's own actions; gg goes through ``action_vim_g``."""
    keys = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("G", bottom, "Last row", show=False),
        Binding("g", "vim_g(" + repr(top) + ")", "gg: first row", show=False),
    ]
    if tree:
        keys += [
            Binding("h", "collapse_or_parent", "Collapse", show=False),
            Binding("l", "expand_or_enter", "Expand", show=False),
        ]
    return keys


class VimG:
    """The ``gg`` half of :func:`vim_bindings`: the second g within GG_SECONDS runs the top action."""

    _last_g = float("-inf")

    async def action_vim_g(self, top: str) -> None:
        now = time.monotonic()
        if now - self._last_g <= GG_SECONDS:
            self._last_g = float("-inf")
            await self.run_action(top)  # type: ignore[attr-defined]
        else:
            self._last_g = now
