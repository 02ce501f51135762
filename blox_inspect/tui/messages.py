"""Messages the app's widgets send each other."""

from __future__ import annotations

from textual.message import Message


class ModuleChosen(Message):
    """The module tree's cursor moved to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__()


class ParamChosen(Message):
    """A parameter row was highlighted in the detail pane."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__()
