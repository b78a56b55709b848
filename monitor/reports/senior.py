"""The report's senior-rights section (QĐ 31/2021/QĐ-TTg, Chương VII, mục A khoản 2): per
agency, who held the high-level account's rights (``agency-admin``) at the end of the period,
and the grants and revocations during it, replayed from ``senior_rights_changes``
(:mod:`monitor.rules.seniorrights`). Accounts made before those records began, still active
agency-admins, count as holders from their creation (``from_creation``).

Its renderings: a part of the JSON (:func:`senior_as_dict`), a section of the HTML
(:func:`senior_html`) and a CSV of its own (:func:`render_senior_csv`): the availability CSV
stays the one table its readers know.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from html import escape
from typing import Any

from ..rules.seniorrights import store as senior_store
from ..rules.seniorrights.model import AgencySeniorRights, Change, Holder, replay
from ..sqldialect import Handle
from .model import TZ, Report
from .words import WORDS, Lang

__all__ = [
    "SENIOR_CSV_HEADER",
    "attach",
    "read_senior_rights",
    "render_senior_csv",
    "senior_as_dict",
    "senior_html",
]


def read_senior_rights(db: Handle, start: float, end: float) -> dict[str, AgencySeniorRights]:
    """Per agency: the holders at ``end`` and the changes in ``[start, end)``."""
    return replay(senior_store.before(db, end), senior_store.legacy_holders(db), start, end)


def attach(report: Report, found: dict[str, AgencySeniorRights]) -> Report:
    """``report`` with its senior-rights section: every agency of the report, in its order
    (none held: an empty entry), then the other agencies that had some, by id."""
    ids = [a.id for a in report.agencies]
    ids += sorted(set(found) - set(ids))
    rights = tuple(found.get(i, AgencySeniorRights(i, (), ())) for i in ids)
    return dataclasses.replace(report, senior_rights=rights)


def _moment(ts: float) -> dt.datetime:
    """A time of the report, in Vietnam's time zone (as :func:`.formats.moment`, which renders
    this section and so cannot be imported here)."""
    return dt.datetime.fromtimestamp(ts, TZ)


def _iso(ts: float) -> str:
    return _moment(ts).isoformat(timespec="seconds")


def _local(ts: float) -> str:
    return _moment(ts).strftime("%H:%M %d/%m/%Y")


def _holder(h: Holder) -> dict[str, Any]:
    return {
        "account": h.account_id,
        "name": h.name,
        "since": _iso(h.since),
        "from_creation": h.from_creation,
    }


def _change(c: Change) -> dict[str, Any]:
    return {
        "account": c.account_id,
        "name": c.name,
        "change": c.change,
        "at": _iso(c.at),
        "by": c.actor,
        "source": c.source,
    }


def senior_as_dict(report: Report) -> dict[str, Any]:
    """The section as JSON-able data."""
    return {
        "as_of": _iso(report.until),
        "agencies": [
            {
                "agency": r.agency,
                "holders": [_holder(h) for h in r.holders],
                "changes": [_change(c) for c in r.changes],
            }
            for r in report.senior_rights
        ],
    }


SENIOR_CSV_HEADER = (
    "month",
    "agency",
    "agency_name",
    "row",  # holder (at the end of the period), granted, revoked (during it)
    "account",
    "name",
    "at",  # a holder: since when
    "by",
    "source",
    "from_creation",  # a holder recorded before the records began: counted from creation
)


def render_senior_csv(report: Report) -> str:
    """The section as its own CSV: per agency, one row per holder at the end of the period,
    then one per change during it. UTF-8; times in ISO 8601 with Vietnam's offset."""
    names = {a.id: a.name_vi for a in report.agencies}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        SENIOR_CSV_HEADER if "-W" not in report.month else ("period", *SENIOR_CSV_HEADER[1:])
    )
    for r in report.senior_rights:
        name = names.get(r.agency, "")
        for h in r.holders:
            writer.writerow(
                [
                    *(report.month, r.agency, name, "holder", h.account_id, h.name),
                    *(_iso(h.since), "", "", "yes" if h.from_creation else "no"),
                ]
            )
        for c in r.changes:
            writer.writerow(
                [
                    *(report.month, r.agency, name, c.change, c.account_id, c.name),
                    *(_iso(c.at), c.actor, c.source, ""),
                ]
            )
    return out.getvalue()


def senior_html(report: Report, language: Lang) -> list[str]:
    """The section of the HTML page: one row per agency, its holders and its changes."""
    w = WORDS[language]
    names = {a.id: (a.name_vi if language == "vi" else a.name_en) for a in report.agencies}
    parts = [
        f'<h2 id="senior-rights">{escape(w["senior_title"])}</h2>',
        f"<p>{escape(w['senior_intro'].format(at=_local(report.until)))}</p>",
        '<table class="senior">',
        f"<thead><tr><th>{escape(w['agency'])}</th><th>{escape(w['senior_holders'])}</th>"
        f"<th>{escape(w['senior_changes'])}</th></tr></thead>",
        "<tbody>",
    ]
    marked = False
    for r in report.senior_rights:
        holders = []
        for h in r.holders:
            mark = "*" if h.from_creation else ""
            marked = marked or h.from_creation
            text = w["senior_holder"].format(
                name=h.name, account=h.account_id, since=_local(h.since)
            )
            holders.append(escape(text + mark))
        changes = [
            escape(
                w[f"senior_{c.change}"].format(
                    at=_local(c.at), name=c.name, account=c.account_id, by=c.actor
                )
            )
            for c in r.changes
        ]
        nobody = escape(w["senior_nobody"])
        parts.append(
            f"<tr><td>{escape(names.get(r.agency, r.agency))}</td>"
            f"<td>{'<br>'.join(holders) or nobody}</td>"
            f"<td>{'<br>'.join(changes) or escape(w['senior_none'])}</td></tr>"
        )
    parts += ["</tbody>", "</table>"]
    if marked:
        parts.append(f"<p><small>{escape(w['senior_from_creation'])}</small></p>")
    return parts
