"""The Textual terminal browser (`blox-inspect tui`): a thin view over a finished Report."""

from blox_inspect.tui.app import BloxInspectApp as BloxInspectApp
from blox_inspect.tui.app import make_app as make_app
