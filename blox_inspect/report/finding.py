"""Finding (one problem a check found) and the table of check codes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One problem found in a model.

    Example:
        >>> f = Finding('BX202', 'warning', 'net/head', 'Param net/head/bias affects no output.', 'Remove it.')
        >>> f.to_dict()['code']
        'BX202'
    """

    code: str
    severity: str  # error | warning | info
    path: str  # module path ('' for the whole model)
    message: str  # one sentence: what is wrong
    fix: str  # one sentence: what to do

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class CodeInfo:
    code: str
    severity: str
    family: str
    title: str


CODES: dict[str, CodeInfo] = {}


def code(code: str, severity: str, family: str, title: str) -> CodeInfo:
    """Registers a stable check code; every code is documented in docs/checks.md."""
    if severity not in SEVERITIES:
        raise ValueError(f"{code}: severity must be one of {SEVERITIES}, got {severity!r}")
    if code in CODES:
        raise ValueError(f"check code {code} registered twice")
    info = CodeInfo(code, severity, family, title)
    CODES[code] = info
    return info


def finding(code_: str, path: str, message: str, fix: str) -> Finding:
    """A Finding with the severity registered for ``code_``."""
    return Finding(code_, CODES[code_].severity, path, message, fix)
