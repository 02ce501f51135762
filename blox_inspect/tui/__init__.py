"""The Textual terminal browser (`blox-inspect tui`): a thin view over a finished Report."""

from .app import BloxInspectApp as BloxInspectApp
from .app import make_app as make_app
