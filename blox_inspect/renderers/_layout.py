"""Running a Graphviz layout engine on DOT source: the system ``dot``, else ``graphviz-pure``.

``graphviz-pure`` (a PyPI package) is a self-contained port of Graphviz; it writes
SVG, PNG and JPEG but not PDF. The engine is run directly with a timeout, so a
layout that hangs or fails becomes one clear error, never a half-written file.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

from blox_inspect.common.errors import InspectError

# Environment override for the engine binary (an absolute path); empty means "none".
ENGINE_ENV = "BLOX_INSPECT_DOT"
DEFAULT_TIMEOUT = 60.0
# Output extension -> Graphviz -T format. ".dot"/".gv" is the source and needs no engine.
EXTENSIONS = {
    ".svg": "svg", ".png": "png", ".pdf": "pdf", ".jpg": "jpg", ".jpeg": "jpeg", ".gif": "gif",
    ".ps": "ps", ".eps": "eps", ".webp": "webp", ".dot": "dot", ".gv": "dot",
}  # fmt: skip
SOURCE_FORMATS = ("dot",)
# What each engine writes when it cannot be asked (the real list is read from the engine's own `-T?` answer).
KNOWN_FORMATS = {"dot": ("svg", "png", "pdf"), "graphviz-pure": ("svg", "png", "jpg", "jpeg")}

UNSUPPORTED_EXTENSION = (
    "{path}: cannot write {ext!r} files{engine}. Supported extensions: {supported} "
    "(.dot writes the Graphviz source).{hint}"
)
NO_ENGINE = (
    "no Graphviz layout engine found (neither `dot` on PATH nor `graphviz-pure` next to {python}), so {out} "
    "was not drawn; the diagram's source is in {dot}. To get an image, install one and lay it out:\n"
    "  pip install graphviz-pure && graphviz-pure -T{fmt} {dot} -o {out}\n"
    "  (or install Graphviz, e.g. `apt-get install graphviz`, and run: dot -T{fmt} {dot} -o {out})"
)
ENGINE_FAILED = (
    "{engine} failed (exit {rc}) laying out the diagram for {out}:\n{stderr}\nNothing was written. Try a smaller "
    "diagram (--depth 2, --focus PATH, no --expand), or write the source with -o file.dot and inspect it."
)
ENGINE_TIMEOUT = (
    "{engine} did not finish laying out the diagram for {out} within {timeout:g} s; nothing was written. Draw less "
    "(--depth 2, --focus PATH, no --expand) or allow more time with --timeout SECONDS.{stderr}"
)


@dataclass(frozen=True)
class Engine:
    """A layout engine binary and the output formats it writes."""

    path: str
    name: str  # 'dot' or 'graphviz-pure' (or the binary's name)
    formats: tuple[str, ...]


def find_engine() -> Engine | None:
    """The layout engine to use: ``$BLOX_INSPECT_DOT``, else ``dot`` on PATH, else ``graphviz-pure``; or None."""
    override = os.environ.get(ENGINE_ENV)
    if override is not None:
        return _engine(override) if override else None
    dot = shutil.which("dot")
    if dot:
        return _engine(dot)
    beside = os.path.join(os.path.dirname(sys.executable), "graphviz-pure")
    pure = beside if os.access(beside, os.X_OK) else shutil.which("graphviz-pure")
    return _engine(pure) if pure else None


@functools.lru_cache(maxsize=8)
def _engine(path: str) -> Engine:
    name = os.path.basename(path)
    return Engine(path=path, name=name, formats=_ask_formats(path, name))


def _ask_formats(path: str, name: str) -> tuple[str, ...]:
    """Asks the engine with an unknown -T; both Graphviz and graphviz-pure answer 'Use one of: ...'."""
    fallback = KNOWN_FORMATS.get(name, ("svg",))
    try:
        done = subprocess.run([path, "-T?"], input=b"", capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return fallback
    found = re.search(r"Use one of:(.*)", done.stderr.decode("utf-8", "replace"))
    if not found:
        return fallback
    # Graphviz lists "svg:cairo" style variants; keep the format names.
    names = {w.split(":")[0] for w in found.group(1).split()}
    return tuple(sorted(names))


def output_format(path: str, engine: Engine | None) -> str:
    """The -T format for an output path, or an error listing what this engine can write."""
    ext = os.path.splitext(path)[1].lower()
    fmt = EXTENSIONS.get(ext)
    if fmt in SOURCE_FORMATS:
        return fmt
    writable = supported_extensions(engine)
    if fmt is None or (engine is not None and fmt not in engine.formats):
        where = f" with {engine.name} ({engine.path})" if engine else ""
        hint = " Install Graphviz (`apt-get install graphviz`) for PDF." if fmt == "pdf" and engine else ""
        raise InspectError(
            UNSUPPORTED_EXTENSION.format(
                path=path, ext=ext or "(no extension)", engine=where, supported=", ".join(writable), hint=hint
            )
        )
    return fmt


def supported_extensions(engine: Engine | None) -> list[str]:
    if engine is None:
        return [".dot", ".gv"]
    return [ext for ext, fmt in EXTENSIONS.items() if fmt in engine.formats or fmt in SOURCE_FORMATS]


DEFAULT_DPI = 150
# Pixel formats, whose size the resolution sets; SVG and PDF are vectors and ignore it.
BITMAPS = ("png", "jpg", "jpeg", "gif", "webp")


def layout(
    engine: Engine, source: str, fmt: str, out: str, timeout: float = DEFAULT_TIMEOUT, dpi: int = DEFAULT_DPI
) -> bytes:
    """Runs ``engine -T<fmt>`` on ``source`` and returns the image bytes (``out`` only names it in errors).

    Bitmaps are drawn at ``dpi`` dots per inch (the engines' own default, 72-96, makes a GPT-2 diagram
    too coarse to read)."""
    cmd = [engine.path, f"-T{fmt}"] + ([f"-Gdpi={int(dpi)}"] if fmt in BITMAPS else [])
    try:
        done = subprocess.run(cmd, input=source.encode("utf-8"), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        err = (e.stderr or b"").decode("utf-8", "replace").strip()
        raise InspectError(
            ENGINE_TIMEOUT.format(
                engine=engine.name, out=out, timeout=timeout, stderr=f"\nIts stderr:\n{err}" if err else ""
            )
        ) from None
    except OSError as e:
        raise InspectError(f"could not run {engine.path}: {e}. Set {ENGINE_ENV} to a working dot binary.") from e
    if done.returncode != 0 or not done.stdout:
        err = _stderr(done.stderr) or "(no message)"
        raise InspectError(ENGINE_FAILED.format(engine=engine.name, rc=done.returncode, out=out, stderr=err))
    return done.stdout


def _stderr(raw: bytes) -> str:
    # graphviz-pure warns about glyph widths for non-ASCII marks (×); that is noise, not the failure.
    lines = [ln for ln in raw.decode("utf-8", "replace").splitlines() if "non-ASCII character" not in ln]
    return "\n".join(lines[-20:]).strip()
