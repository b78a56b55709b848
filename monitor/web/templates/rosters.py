"""An agency's duty roster page (:mod:`monitor.web.roster_pages`): who is on duty now, the
weekly shifts and the dated overrides, and for those allowed the forms that add and remove
them; :func:`duty_line`, the line of the overview and the agency page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape
from urllib.parse import quote
from zoneinfo import ZoneInfo

from ...contacts.model import Person
from ...rosters.model import Roster, days_of
from .frame import Chrome, layout, link, table
from .words import Lang

__all__ = ["WORDS", "duty_line", "duty_section", "roster_page"]

WORDS: dict[Lang, dict[str, str]] = {
    "vi": {
        "title": "Lịch trực — {name}",
        "now": "Đang trực",
        "now_none": "Không có ai trực lúc này (ngoài giờ: báo toàn bộ cán bộ kỹ thuật).",
        "now_working": "Trong giờ làm việc: cảnh báo gửi theo định tuyến thông thường.",
        "no_roster": "Chưa có lịch trực: ngoài giờ, cảnh báo gửi toàn bộ cán bộ kỹ thuật.",
        "shifts": "Ca trực hằng tuần",
        "overrides": "Thay đổi theo ngày (đổi ca)",
        "days": "Ngày",
        "time": "Giờ",
        "who": "Người trực",
        "note": "Ghi chú",
        "from": "Từ",
        "to": "Đến",
        "nobody": "Không ai",
        "add_shift": "Thêm ca trực",
        "add_override": "Thêm thay đổi",
        "remove": "Xoá",
        "none": "Chưa có.",
        "next_day": "(hôm sau)",
        "day1": "T2",
        "day2": "T3",
        "day3": "T4",
        "day4": "T5",
        "day5": "T6",
        "day6": "T7",
        "day7": "CN",
        "link": "Lịch trực",
        "line": "Đang trực: {names}",
    },
    "en": {
        "title": "Duty roster — {name}",
        "now": "On duty now",
        "now_none": "Nobody is on duty now (off hours: the whole technical team is paged).",
        "now_working": "Working hours: alerts follow the normal routing.",
        "no_roster": "No roster yet: off hours, alerts go to the whole technical team.",
        "shifts": "Weekly shifts",
        "overrides": "Dated overrides (swaps)",
        "days": "Days",
        "time": "Time",
        "who": "On duty",
        "note": "Note",
        "from": "From",
        "to": "To",
        "nobody": "Nobody",
        "add_shift": "Add a shift",
        "add_override": "Add an override",
        "remove": "Remove",
        "none": "None.",
        "next_day": "(next day)",
        "day1": "Mon",
        "day2": "Tue",
        "day3": "Wed",
        "day4": "Thu",
        "day5": "Fri",
        "day6": "Sat",
        "day7": "Sun",
        "link": "Duty roster",
        "line": "On duty: {names}",
    },
}


def base(agency: str) -> str:
    return f"/agency/{quote(agency, safe='')}/roster"


def duty_line(agency: str, names: Sequence[str] | None, lang: Lang) -> str:
    """``On duty: A, B`` linking to the roster page (empty when the agency has no roster)."""
    if names is None:
        return ""
    w = WORDS[lang]
    text = w["line"].format(names=", ".join(names) if names else w["nobody"])
    href = link(base(agency), lang)
    return f'<p class="duty"><a href="{escape(href)}">{escape(text)}</a></p>'


def duty_section(lines: Sequence[tuple[str, str, Sequence[str]]], lang: Lang) -> str:
    """The overview's "on duty now": one line per agency with a roster (agency id, its name,
    the names on duty), each linking to its roster; empty when no agency has one."""
    if not lines:
        return ""
    w = WORDS[lang]
    items = "".join(
        f"<li>{escape(name)}: "
        f'<a href="{escape(link(base(agency), lang))}">'
        f"{escape(', '.join(names) if names else w['nobody'])}</a></li>"
        for agency, name, names in lines
    )
    return f'<section id="duty"><h2>{escape(w["now"])}</h2><ul>{items}</ul></section>'


def _csrf(chrome: Chrome) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(chrome.csrf or "")}">'


def _remove(chrome: Chrome, action: str) -> str:
    w = WORDS[chrome.lang]
    return (
        f'<form method="post" action="{escape(link(action, chrome.lang))}" class="inline">'
        f'{_csrf(chrome)}<button type="submit">{escape(w["remove"])}</button></form>'
    )


def _people(people: Sequence[Person], with_nobody: bool, lang: Lang) -> str:
    options = [f'<option value="">{escape(WORDS[lang]["nobody"])}</option>'] if with_nobody else []
    options += [
        f'<option value="{escape(p.id)}">{escape(p.contact.name)} ({escape(p.contact.role)})'
        "</option>"
        for p in people
    ]
    return "".join(options)


def _stamp(ts: float, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts, tz).strftime("%H:%M %d/%m/%Y")


def roster_page(
    chrome: Chrome,
    name: str,
    roster: Roster,
    people: Sequence[Person],
    on_duty: Sequence[str],
    *,
    working_now: bool,
    now_ts: float,
    tz: ZoneInfo,
    may_edit: bool,
    may_swap: bool,
) -> str:
    w, lang = WORDS[chrome.lang], chrome.lang
    names = {p.id: p.contact.name for p in people}
    agency = roster.agency

    def who(cid: str | None) -> str:
        return w["nobody"] if cid is None else names.get(cid, cid)

    if not roster.held(now_ts):
        now = w["no_roster"]
    elif working_now:
        now = w["now_working"]
    elif on_duty:
        now = ", ".join(who(c) for c in on_duty)
    else:
        now = w["now_none"]
    body = f'<p class="on-duty"><strong>{escape(w["now"])}:</strong> {escape(now)}</p>'

    rows = []
    for s in roster.shifts:
        days = " ".join(w[f"day{d}"] for d in days_of(s.weekdays))
        span = f"{s.starts}–{s.ends}" + (f" {w['next_day']}" if s.crosses_midnight else "")
        cells = [escape(days), escape(span), escape(who(s.contact_id)), escape(s.note)]
        if may_edit:
            cells.append(_remove(chrome, f"{base(agency)}/shifts/{s.id}/remove"))
        tds = "".join(f"<td>{c}</td>" for c in cells)
        rows.append(f'<tr data-id="{s.id}">{tds}</tr>')
    head = [w["days"], w["time"], w["who"], w["note"]] + ([""] if may_edit else [])
    body += f"<h2>{escape(w['shifts'])}</h2>"
    body += table(head, rows, css="list shifts") if rows else f"<p>{escape(w['none'])}</p>"
    if may_edit:
        boxes = "".join(
            f'<label><input type="checkbox" name="weekdays" value="{d}"> {escape(w[f"day{d}"])}'
            "</label> "
            for d in range(1, 8)
        )
        body += (
            f"<h3>{escape(w['add_shift'])}</h3>"
            f'<form method="post" action="{escape(link(base(agency) + "/shifts", lang))}"'
            ' class="shift">'
            + _csrf(chrome)
            + f"<fieldset><legend>{escape(w['days'])}</legend>{boxes}</fieldset>"
            + f'<label>{escape(w["from"])} <input type="time" name="starts"></label> '
            + f'<label>{escape(w["to"])} <input type="time" name="ends"></label><br>'
            + f'<label>{escape(w["who"])} <select name="contact_id">'
            + _people(people, False, lang)
            + "</select></label><br>"
            + f'<label>{escape(w["note"])} <input type="text" name="note"></label><br>'
            + f'<button type="submit">{escape(w["add_shift"])}</button></form>'
        )

    rows = []
    for o in roster.overrides:
        cells = [
            escape(_stamp(o.starts, tz)),
            escape(_stamp(o.ends, tz)),
            escape(who(o.contact_id)),
            escape(o.note),
        ]
        if may_swap:
            cells.append(_remove(chrome, f"{base(agency)}/overrides/{o.id}/remove"))
        tds = "".join(f"<td>{c}</td>" for c in cells)
        rows.append(f'<tr data-id="{o.id}">{tds}</tr>')
    head = [w["from"], w["to"], w["who"], w["note"]] + ([""] if may_swap else [])
    body += f"<h2>{escape(w['overrides'])}</h2>"
    body += table(head, rows, css="list overrides") if rows else f"<p>{escape(w['none'])}</p>"
    if may_swap:
        body += (
            f"<h3>{escape(w['add_override'])}</h3>"
            f'<form method="post" action="{escape(link(base(agency) + "/overrides", lang))}"'
            ' class="override">'
            + _csrf(chrome)
            + f'<label>{escape(w["from"])} <input type="datetime-local" name="starts"></label> '
            + f'<label>{escape(w["to"])} <input type="datetime-local" name="ends"></label><br>'
            + f'<label>{escape(w["who"])} <select name="contact_id">'
            + _people(people, True, lang)
            + "</select></label><br>"
            + f'<label>{escape(w["note"])} <input type="text" name="note"></label><br>'
            + f'<button type="submit">{escape(w["add_override"])}</button></form>'
        )
    return layout(chrome, w["title"].format(name=name), body)
