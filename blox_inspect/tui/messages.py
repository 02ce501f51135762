"""Messages the app's widgets send each other."""

from __future__ import annotations

from textual.message import Message

from blox_inspect.analysis.folds import Fold


class ModuleChosen(Message):
    """The module tree's cursor moved to ``path`` (on a folded ×N row: ``fold``, whose first block is ``path``)."""

    def __init__(self, path: str, fold: Fold | None = None) -> None:
        self.path = path
        self.fold = fold
        super().__init__()


class ParamChosen(Message):
    """A parameter row was highlighted in the detail pane."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__()
