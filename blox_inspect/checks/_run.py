"""Running every registered check over one shared CheckContext."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from blox_inspect.checks._context import CheckContext
from blox_inspect.checks._registry import CHECKS
from blox_inspect.common.errors import InspectError
from blox_inspect.load.model_file import LoadedModel
from blox_inspect.report.finding import CODES, SEVERITIES, Finding, code, finding

code("BX001", "warning", "runner", "the train step could not be traced")

MSG_UNKNOWN_CODE = "unknown check code {code!r} in {where}. Known codes: {known}. See docs/checks.md."


def ignored_codes(ctx: CheckContext, extra: Iterable[str] = ()) -> set[str]:
    """``--ignore`` codes plus the model file's ``BLOX_CHECK_IGNORE`` list, validated."""
    found: set[str] = set()
    sources = [("--ignore", list(extra)), ("BLOX_CHECK_IGNORE", list(ctx.settings.get("BLOX_CHECK_IGNORE", ())))]
    for where, codes in sources:
        for c in codes:
            c = str(c).strip().upper()
            if c not in CODES:
                raise InspectError(MSG_UNKNOWN_CODE.format(code=c, where=where, known=", ".join(sorted(CODES))))
            found.add(c)
    return found


def run_checks(ctx: CheckContext, ignore: Iterable[str] = ()) -> list[Finding]:
    """Every finding for the model, deduplicated, without ignored codes, most severe first."""
    skip = ignored_codes(ctx, ignore)
    ctx.forward  # noqa: B018 - traced first: a model that cannot trace is an error, not a finding
    findings: list[Finding] = []
    if ctx.train is None:
        findings.append(
            finding(
                "BX001",
                "",
                f"The train step (value_and_grad of the loss) could not be traced, so gradient checks were skipped: "
                f"{ctx.train_error.rstrip('.')}.",
                "Fix the error (jax.grad of this model fails the same way), or define BLOX_LOSS(outputs, *inputs) "
                "-> scalar in the model file.",
            )
        )
    for fn in CHECKS.values():
        findings.extend(fn(ctx))
    unique: dict[tuple, Finding] = {}
    for f in findings:
        if f.code not in skip:
            unique.setdefault((f.code, f.path, f.message), f)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(unique.values(), key=lambda f: (order[f.severity], f.code, f.path))


def exit_code(findings: list[Finding], fail_on: str) -> int:
    """1 when a finding is at least as severe as ``fail_on`` ('none' never fails), else 0."""
    if fail_on == "none":
        return 0
    limit = SEVERITIES.index(fail_on)
    return int(any(SEVERITIES.index(f.severity) <= limit for f in findings))


def check(
    model: Any,
    *inputs: Any,
    mesh: dict[str, int] | None = None,
    ignore: Iterable[str] = (),
    settings: dict[str, Any] | None = None,
    **kwargs: Any,
) -> list[Finding]:
    """Runs every check on ``model(params, *inputs, **kwargs)``; nothing is allocated.

    ``settings`` holds what a model file would declare (``BLOX_LOSS``, ``BLOX_CHECK_IGNORE``...).

    Example:
        >>> import jax, jax.numpy as jnp, blox as bx, blox_inspect
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> forgotten = bx.Linear(g / 'proj', 4, rng)
        >>> head = bx.Linear(g / 'head', 4, rng)
        >>> [(f.code, f.path) for f in blox_inspect.check(head, jax.ShapeDtypeStruct((2, 3), jnp.float32))]
        [('BX201', 'net/proj')]
    """
    loaded = LoadedModel(model=model, inputs=tuple(inputs), kwargs=dict(kwargs), source=type(model).__name__)
    loaded.file_settings = dict(settings or {})
    return run_checks(CheckContext(loaded, mesh), ignore=ignore)
