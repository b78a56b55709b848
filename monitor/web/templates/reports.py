"""The scheduled reports' list page (:mod:`monitor.web.report_pages`): every report the reader
may see, newest first, each with its page (HTML), its CSV and its JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from urllib.parse import quote

from ...reports.runs_store import Run
from .frame import Chrome, layout, link, table, when
from .words import Lang

__all__ = ["WORDS", "reports_link", "reports_page"]

WORDS: dict[Lang, dict[str, str]] = {
    "vi": {
        "title": "Báo cáo định kỳ",
        "title_of": "Báo cáo định kỳ — {name}",
        "none": "Chưa có báo cáo định kỳ nào.",
        "schedule": "Lịch",
        "period": "Kỳ",
        "about": "Phạm vi",
        "produced": "Lập lúc",
        "open": "Xem",
        "national": "Toàn Cổng",
        "not_found": "Không tìm thấy báo cáo",
        "not_found_text": "Không có báo cáo này.",
    },
    "en": {
        "title": "Scheduled reports",
        "title_of": "Scheduled reports — {name}",
        "none": "No scheduled report yet.",
        "schedule": "Schedule",
        "period": "Period",
        "about": "About",
        "produced": "Produced",
        "open": "Open",
        "national": "Whole portal",
        "not_found": "Report not found",
        "not_found_text": "There is no such report.",
    },
}


def reports_link(agency: str, lang: Lang) -> str:
    """The line of an agency's page that leads to its scheduled reports."""
    href = link(f"/agency/{quote(agency, safe='')}/reports", lang)
    return f'<p><a href="{escape(href)}">{escape(WORDS[lang]["title"])}</a></p>'


def reports_page(
    chrome: Chrome, runs: Sequence[Run], names: Mapping[str, str], *, agency: str | None
) -> str:
    """The list; ``names`` by agency id; ``agency`` the page's agency (None: every report)."""
    lang = chrome.lang
    w = WORDS[lang]
    title = w["title"] if agency is None else w["title_of"].format(name=names.get(agency, agency))
    if not runs:
        return layout(chrome, title, f'<p class="muted">{escape(w["none"])}</p>')
    rows = []
    for run in runs:
        about = w["national"] if run.agency is None else names.get(run.agency, run.agency)
        links = " · ".join(
            f'<a href="{escape(href)}">{escape(text)}</a>'
            for href, text in (
                (link(f"/reports/{run.id}", lang), w["open"]),
                (f"/api/v1/reports/{run.id}?format=csv", "CSV"),
                (f"/api/v1/reports/{run.id}", "JSON"),
            )
        )
        rows.append(
            f'<tr data-id="{run.id}"><td>{escape(run.schedule)}</td><td>{escape(run.period)}</td>'
            f"<td>{escape(about)}</td><td>{when(run.produced_at)}</td><td>{links}</td></tr>"
        )
    head = [w["schedule"], w["period"], w["about"], w["produced"], ""]
    return layout(chrome, title, table(head, rows, css="list"))
