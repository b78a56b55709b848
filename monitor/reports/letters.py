"""The messages of a scheduled report, one per person and channel, for the outbox: by e-mail
the report's HTML page as the body (in the person's language) with the CSV attached, and in the
portal inbox a few lines with a link to the report's page. SMS is not a channel for a report.

Each message's key is derived from (schedule, period, scope, address): a report queued again —
after a restart, or by a second gateway host — is ignored by the outbox.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from notifiers.base import Attachment, ChannelName

from ..alerting.model import Recipient
from ..alerting.outbox import OutboxItem
from ..config.alerting import Target
from .formats import format_availability, render_csv
from .html import render_html
from .model import Report
from .runs_store import NATIONAL
from .words import Lang

__all__ = ["CHANNELS", "Letter", "audience", "csv_name", "letters", "message_key"]

#: The channels a report goes out on (and falls back to).
CHANNELS: tuple[ChannelName, ...] = ("email", "inbox")

_SUBJECT = {
    "vi": {"month": "Báo cáo khả dụng tháng {label}", "week": "Báo cáo khả dụng tuần {label}"},
    "en": {"month": "Availability report {label}", "week": "Availability report, week {label}"},
}
_LINES = {
    "vi": (
        "Báo cáo định kỳ ({schedule}) về {what}, kỳ {label}.\n"
        "Khả dụng: {availability} %; số lần mất kết nối: {outages}; sự cố: {incidents};"
        " quá hạn xử lý: {breaches}.\n\nXem báo cáo: {link}\nTải CSV: {csv}"
    ),
    "en": (
        "Scheduled report ({schedule}) on {what}, period {label}.\n"
        "Availability: {availability} %; outages: {outages}; incidents: {incidents};"
        " SLA breaches: {breaches}.\n\nOpen the report: {link}\nDownload the CSV: {csv}"
    ),
}
_ATTACHED = {"vi": "\n\nBảng số liệu (CSV) đính kèm.", "en": "\n\nThe figures (CSV) are attached."}
_NATIONAL = {"vi": "toàn Cổng Dịch vụ công quốc gia", "en": "the whole National Portal"}
_NONE = {"vi": "không đo được", "en": "not measured"}


@dataclass(frozen=True, slots=True)
class Letter:
    """What a report's messages say, before they are addressed."""

    schedule: str
    kind: str  # month or week
    scope: str  # NATIONAL or an agency id
    report: Report
    link: str  # the report's page
    csv_link: str  # its CSV in the API


def message_key(schedule: str, period: str, scope: str, group_key: str) -> str:
    """The outbox key of a report's message to one address."""
    text = f"report|{schedule}|{period}|{scope}|{group_key}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def csv_name(schedule: str, period: str, scope: str) -> str:
    """The attached file's name, e.g. ``npsp-agency-weekly-2026-W08-ha-noi.csv``."""
    return f"npsp-{schedule}-{period}{'' if scope == NATIONAL else '-' + scope}.csv"


def _language(value: str) -> Lang:
    return "en" if value == "en" else "vi"


def _subject(letter: Letter, lang: Lang) -> str:
    subject = _SUBJECT[lang][letter.kind].format(label=letter.report.month)
    if letter.scope == NATIONAL:
        return subject
    agency = letter.report.agencies[0]
    return f"{subject} — {agency.name_vi if lang == 'vi' else agency.name_en}"


def _text(letter: Letter, lang: Lang) -> str:
    report = letter.report
    if letter.scope == NATIONAL:
        what = _NATIONAL[lang]
    else:
        agency = report.agencies[0]
        what = agency.name_vi if lang == "vi" else agency.name_en
    figures = report.totals
    query = "" if lang == "vi" else "?lang=en"
    return _LINES[lang].format(
        schedule=letter.schedule,
        what=what,
        label=report.month,
        availability=format_availability(figures.availability, lang) or _NONE[lang],
        outages=figures.outages,
        incidents=figures.incidents,
        breaches=figures.sla_breaches,
        link=letter.link + query,
        csv=letter.csv_link,
    )


def _usable(r: Recipient) -> Recipient | None:
    """The recipient on a report's channels only (an SMS-only person gets nothing)."""
    if r.channel not in CHANNELS:
        return None
    fallbacks = tuple(f for f in r.fallbacks if f[0] in CHANNELS)
    return Recipient(r.person, r.name, r.channel, r.address, r.language, fallbacks)


def letters(letter: Letter, people: Sequence[Recipient]) -> list[OutboxItem]:
    """One outbox row per address of ``people`` (deduplicated)."""
    seen: set[str] = set()
    out: list[OutboxItem] = []
    pages: dict[Lang, str] = {}
    period = letter.report.month
    attachment = Attachment(
        csv_name(letter.schedule, period, letter.scope),
        "text/csv",
        render_csv(letter.report).encode("utf-8"),
    )
    for found in people:
        r = _usable(found)
        if r is None or r.group_key in seen:
            continue
        seen.add(r.group_key)
        lang = _language(r.language)
        text = _text(letter, lang)
        subject = _subject(letter, lang)
        email = r.channel == "email" or any(c == "email" for c, _ in r.fallbacks)
        if email and lang not in pages:
            pages[lang] = render_html(letter.report, lang)
        out.append(
            OutboxItem(
                key=message_key(letter.schedule, period, letter.scope, r.group_key),
                channel=r.channel,
                address=r.address,
                person=r.person,
                subject=subject,
                text=text + (_ATTACHED[lang] if r.channel == "email" else ""),
                short=f"{subject} {letter.link}",
                html=pages[lang] if email else None,
                thread_key=None,
                language=lang,
                fallbacks=r.fallbacks,
                attachments=(attachment,) if email else (),
            )
        )
    return out


def audience(
    targets: Iterable[Target], scope: str, agencies: Iterable[str]
) -> list[tuple[str, Target]]:
    """(agency, target) pairs: a national report's agency targets are every agency's."""
    chosen = list(dict.fromkeys(agencies)) if scope == NATIONAL else [scope]
    out: list[tuple[str, Target]] = []
    for target in targets:
        if target == "operations":
            out.append(("", target))
        else:
            out += [(a, target) for a in chosen]
    return out
