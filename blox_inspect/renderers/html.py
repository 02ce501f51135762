"""HTML tables for notebooks (``Report._repr_html_``) and ``-o report.html``: the same rows, folding and numbers
as the terminal table, every model- or file-derived string escaped."""

from __future__ import annotations

import html

from blox_inspect.analysis.rows import FOLD_NOTE, table_head, table_rows, totals_items
from blox_inspect.common.text import visible
from blox_inspect.report.cost import CostReport
from blox_inspect.report.model import Report
from blox_inspect.report.profile import ProfileReport

_STYLE = (
    "<style>.blox-report td,.blox-report th{padding:2px 8px;text-align:left;font-family:monospace}"
    ".blox-report td.n,.blox-report th.n{text-align:right}.blox-report tr.fold td{font-weight:bold}</style>"
)


def _e(text: object) -> str:
    return html.escape(visible(text))


def _table(head: list[str], rows: list[tuple[str, list[str]]], right_from: int) -> list[str]:
    out = ["<table>", "<thead><tr>"]
    out += [f'<th class="{"n" if i >= right_from else ""}">{_e(h)}</th>' for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for css, cells in rows:
        tds = "".join(f'<td class="{"n" if i >= right_from else ""}">{c}</td>' for i, c in enumerate(cells))
        out.append(f'<tr class="{css}">{tds}</tr>')
    out.append("</tbody></table>")
    return out


def render(report: Report, depth: int | None = None, fold: bool = True, times: dict | None = None, **_) -> str:
    """The summary as one HTML fragment: the module table (folded ×N runs), the totals and the notes.

    Example:
        >>> from blox_inspect.report.model import Report, Totals
        >>> r = Report(model='<m>', root='net', inputs=[], kwargs={}, totals=Totals(params=3), modules=[], params=[])
        >>> '&lt;m&gt;' in render(r) and '<table>' in render(r)
        True
    """
    shown = table_rows(report, depth, fold, blank_zeros=True, times=times)
    rows = [
        ("fold" if r.folded else "", [f"{'&nbsp;&nbsp;' * r.level}{_e(r.label)}"] + [_e(c) for c in r.cells])
        for r in shown
    ]
    out = [_STYLE, '<div class="blox-report">', f"<h4>{_e(report.model)}</h4>"]
    out += _table(table_head(report, times), rows, right_from=3)
    out += ["<table>"] + [f"<tr><th>{_e(k.strip())}</th><td>{_e(v)}</td></tr>" for k, v in totals_items(report)]
    out.append("</table>")
    notes = report.notes + ([FOLD_NOTE] if any(r.folded for r in shown) else [])
    if notes:
        out += ["<ul>"] + [f"<li>{_e(n)}</li>" for n in notes] + ["</ul>"]
    out.append("</div>")
    return "\n".join(out)


def render_cost(report: CostReport, depth: int | None = None, **_) -> str:
    """The cost report as HTML: one titled table per section, as in the terminal."""
    from blox_inspect.renderers.cost import sections, title

    out = [_STYLE, '<div class="blox-report">', f"<h4>{_e(title(report))}</h4>"]
    for sec in sections(report, depth):
        out.append(f"<h5>{_e(sec.title)}</h5>")
        if sec.columns:
            body = [("", [_e(c) for c in row]) for row in sec.rows]
            right = min(sec.right) if sec.right else len(sec.columns)
            out += _table(list(sec.columns), body, right_from=right)
        out += [f"<p>{_e(line)}</p>" for line in sec.lines]
    out.append("</div>")
    return "\n".join(out)


def render_profile(report: ProfileReport, depth: int | None = None, fold: bool = True, **_) -> str:
    """The profile as HTML: the module table (folded like the terminal), then the totals."""
    from blox_inspect.renderers.profile import COLUMNS, RIGHT, table_rows, title
    from blox_inspect.renderers.profile import totals_items as profile_totals

    body = [("", [_e(c) for c in row]) for row in table_rows(report, depth, fold)]
    out = [_STYLE, '<div class="blox-report">', f"<h4>{_e(title(report))}</h4>"]
    out += _table(list(COLUMNS), body, right_from=min(RIGHT))
    out += ["<table>"] + [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in profile_totals(report)]
    out += ["</table>", "</div>"]
    return "\n".join(out)
