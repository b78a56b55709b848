"""The report as one HTML page (no JavaScript, no external resources), in Vietnamese or
English: a summary table of the agencies, then one table per agency, then the definitions.

It writes in the pages' way (:mod:`monitor.web.templates`): their language type, and every
value from the configuration or the store passed through :func:`html.escape`, the one escape
the pages use."""

from __future__ import annotations

from html import escape

from .formats import format_availability, format_hmm, moment
from .model import AgencyReport, Figures, Report, SystemReport
from .senior import senior_html
from .words import KINDS, STYLE, WORDS, Lang

__all__ = ["render_html"]

#: The figure columns, in their order.
_COLUMNS = (
    "availability",
    "down",
    "outages",
    "unreachable",
    "monitored",
    "not_monitored",
    "maintenance",
    "degraded",
    "incidents",
    "breaches",
)

_DEFINITIONS = (
    "def_availability",
    "def_maintenance",
    "def_not_monitored",
    "def_outages",
    "def_incidents",
    "def_agency",
)


def _local(ts: float) -> str:
    return moment(ts).strftime("%H:%M %d/%m/%Y")


def _cells(f: Figures, language: Lang) -> str:
    value = f.availability
    availability = (
        escape(WORDS[language]["none"]) if value is None else format_availability(value, language)
    )
    numbers = [
        availability,
        format_hmm(f.down_seconds),
        str(f.outages),
        format_hmm(f.unreachable_seconds),
        format_hmm(f.monitored_seconds),
        format_hmm(f.not_monitored_seconds),
        format_hmm(f.maintenance_seconds),
        format_hmm(f.degraded_seconds),
        str(f.incidents),
        f'<span class="bad">{f.sla_breaches}</span>' if f.sla_breaches else "0",
    ]
    return "".join(f'<td class="n">{n}</td>' for n in numbers)


def _figure_heads(language: Lang) -> str:
    return "".join(f"<th>{escape(WORDS[language][k])}</th>" for k in _COLUMNS)


def _agency_name(a: AgencyReport, language: Lang) -> str:
    return a.name_vi if language == "vi" else a.name_en


def _system_name(s: SystemReport, language: Lang) -> str:
    return s.name if language == "vi" or not s.name_en else s.name_en


def _title(report: Report, language: Lang) -> str:
    if "-W" in report.month:  # a week (monitor.reports.periods)
        last = report.ends - 86400
        start, end = moment(report.starts), moment(last)
        return WORDS[language]["title_week"].format(
            week=report.month, start=start.strftime("%d/%m"), end=end.strftime("%d/%m/%Y")
        )
    year, number = report.month.split("-")
    month_text = f"{number}/{year}" if language == "vi" else report.month
    return WORDS[language]["title"].format(month=month_text)


def _head(report: Report, language: Lang) -> list[str]:
    w = WORDS[language]
    title = escape(_title(report, language))
    period = w["period"].format(start=_local(report.starts), end=_local(report.ends))
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{language}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{title}</h1>",
        f"<p>{escape(period)}</p>",
    ]
    if not report.complete:
        partial = w["partial"].format(until=_local(report.until))
        parts.append(f"<p><strong>{escape(partial)}</strong></p>")
    parts.append(f"<p>{escape(w['note'])}</p>")
    return parts


def _summary(report: Report, language: Lang) -> list[str]:
    w = WORDS[language]
    parts = [
        f"<h2>{escape(w['summary'])}</h2>",
        "<table>",
        f"<thead><tr><th>{escape(w['agency'])}</th>{_figure_heads(language)}</tr></thead>",
        "<tbody>",
    ]
    for a in report.agencies:
        name = escape(_agency_name(a, language))
        parts.append(
            f'<tr><td><a href="#{escape(a.id)}">{name}</a></td>{_cells(a.figures, language)}</tr>'
        )
    if report.agency is None:  # one agency's report has no portal line
        total = _cells(report.totals, language)
        parts.append(f'<tr class="total"><td>{escape(w["portal"])}</td>{total}</tr>')
    return [*parts, "</tbody>", "</table>"]


def _agency(a: AgencyReport, language: Lang) -> list[str]:
    w = WORDS[language]
    parts = [
        f'<h2 id="{escape(a.id)}">{escape(_agency_name(a, language))} ({escape(a.code)})</h2>',
        "<table>",
        f"<thead><tr><th>{escape(w['system'])}</th><th>{escape(w['kind'])}</th>"
        f"{_figure_heads(language)}</tr></thead>",
        "<tbody>",
    ]
    for s in a.systems:
        kind = KINDS[language].get(s.kind, s.kind)
        parts.append(
            f"<tr><td>{escape(_system_name(s, language))}<br><small>{escape(s.key)}</small></td>"
            f"<td>{escape(kind)}</td>{_cells(s.figures, language)}</tr>"
        )
    return [
        *parts,
        f'<tr class="total"><td colspan="2">{escape(w["total"])}</td>'
        f"{_cells(a.figures, language)}</tr>",
        "</tbody>",
        "</table>",
    ]


def _end(report: Report, language: Lang) -> list[str]:
    w = WORDS[language]
    generated = w["generated"].format(at=_local(report.generated_at))
    return [
        f"<h2>{escape(w['definitions'])}</h2>",
        "<ul>",
        *(f"<li>{escape(w[key])}</li>" for key in _DEFINITIONS),
        "</ul>",
        f"<p><small>{escape(generated)}</small></p>",
        "</body>",
        "</html>",
    ]


def render_html(report: Report, language: Lang = "vi") -> str:
    """A complete HTML page (no JavaScript, no external resources): a summary table of the
    agencies, then one table per agency, the senior rights, then the definitions."""
    parts = [*_head(report, language), *_summary(report, language)]
    for a in report.agencies:
        parts += _agency(a, language)
    parts += senior_html(report, language)
    parts += _end(report, language)
    return "\n".join(parts) + "\n"
