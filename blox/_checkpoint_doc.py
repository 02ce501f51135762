"""The blox metadata document of a checkpoint (format 2, the current one), sorted into what each tensor needs.

The document (``__metadata__["blox"]``, see ``blox._checkpoint``) lists only tensors whose facts
are not the defaults, and most of those only as ``{"trainable": false}``; a header may hold
300,000 tensors. :func:`typed_entries` decodes it with msgspec into typed entries, and only a
document exactly as this blox writes it (known keys, each of its type, Param metadata at most
a few levels deep) gets through; for anything else it returns None, and the caller reads the
document with ``json`` and checks it step by step, saying what is wrong. So this function only
has to be right about what it accepts (tests/blox/test_safetensors_fast.py compares the two).
"""

from __future__ import annotations

import itertools
import operator
from typing import Any

import msgspec

_Scalar = str | int | float | bool | None
# Param metadata is free-form JSON. A bounded depth keeps this decode from ever reading a nesting
# that ``json`` (limited by Python's recursion limit) would refuse; deeper metadata takes that path.
_Json: Any = _Scalar
for _ in range(8):
    _Json = _Scalar | list[_Json] | dict[str, _Json]


class _Entry(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    trainable: bool = True
    path: list[str] | None = None
    metadata: dict[str, _Json] | msgspec.UnsetType = msgspec.UNSET  # type: ignore[valid-type]
    key_impl: str | None = None
    key_shape: list[int] | None = None


class _Doc(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    format_version: int
    locked: bool
    tensors: dict[str, _Entry]


_DOC = msgspec.json.Decoder(_Doc)
_FROZEN = _Entry(trainable=False)


def typed_entries(text: str, version: int) -> tuple[bool, set[str], dict[str, dict]] | None:
    """``(locked, frozen, other)`` of a document of format ``version`` (the one this module's schema
    describes, blox's current format), or None if it is anything else.

    ``frozen`` names the tensors whose entry is only ``{"trainable": false}``; ``other`` holds every
    other entry, as the dict ``json`` would have read (see :func:`sort_entries`).
    """
    try:
        doc = _DOC.decode(text)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        return None
    if doc.format_version != version:
        return None
    names, entries = list(doc.tensors), list(doc.tensors.values())
    is_frozen = list(map(_FROZEN.__eq__, entries))
    frozen = set(itertools.compress(names, is_frozen))
    other = {}
    if len(frozen) != len(names):
        for name, e in itertools.compress(zip(names, entries), map(operator.not_, is_frozen)):
            other[name] = _as_dict(e)
    return doc.locked, frozen, other


def _as_dict(e: _Entry) -> dict:
    out = {"trainable": e.trainable, "path": e.path, "key_impl": e.key_impl, "key_shape": e.key_shape}
    if e.metadata is not msgspec.UNSET:
        out["metadata"] = e.metadata
    return out


def sort_entries(entries: dict[str, Any]) -> tuple[set[str], dict[str, Any]]:
    """``(frozen, other)`` of entries read by ``json``, as :func:`typed_entries` sorts them, with
    every other entry kept as read, bad ones included, for the caller to check."""
    frozen: set[str] = set()
    other: dict[str, Any] = {}
    for name, e in entries.items():
        if type(e) is dict and len(e) == 1 and e.get("trainable") is False:
            frozen.add(name)
        else:
            other[name] = e
    return frozen, other
