"""The pages' frame and small pieces: what a handler hands over (:class:`Chrome`, :class:`Row`,
:class:`Bar`, :class:`Problem`, :class:`InboxItem`), the stylesheet and the Content-Security-Policy
that allows it by its hash (:data:`CSP`), links, times, names, state badges, the 24-hour bar,
a table, and :func:`layout`, the frame of every page. Every value from the config, the store or
a probe is escaped here or in :mod:`.tables` and :mod:`.render`; nowhere else builds HTML.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlencode

from ...config import Agency
from ...reasons import duration
from ...registry import SystemEntry
from ...rules.incidents import Incident
from ...state import State
from .words import STATE_NAMES, WORDS, Lang

VN = dt.timezone(dt.timedelta(hours=7), "ICT")  # Asia/Ho_Chi_Minh has no daylight saving


SLOTS = 48  # the 24-hour bar: 48 half hours


Run = tuple[State, int, int]  # a state, its first slot, how many slots


@dataclass(frozen=True, slots=True)
class Bar:
    """A system's last 24 hours: runs of slots coloured by the worst state seen in each."""

    start: float  # epoch seconds where slot 0 begins
    slot: float  # seconds per slot
    runs: tuple[Run, ...]


@dataclass(frozen=True, slots=True)
class Row:
    """One system on a list (overview, agency page, status page)."""

    entry: SystemEntry
    state: State
    since: float
    bar: Bar


#: The states the overview lists on top, in the order it lists them: the most severe first;
#: maintenance last and apart (not a problem, but people ask).
PROBLEMS: dict[State, int] = {
    State.DOWN: 0,
    State.UNREACHABLE: 1,
    State.FLAPPING: 2,
    State.DEGRADED: 3,
    State.MAINTENANCE: 4,
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One row of the overview's list on top: a system in a :data:`PROBLEMS` state."""

    row: Row
    reason: str  # in the page's language
    incident: Incident | None  # its open outage incident, if any


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One message of a portal inbox."""

    id: int
    subject: str
    text: str
    created_at: float
    read_at: float | None


@dataclass(frozen=True, slots=True)
class Chrome:
    """What every page's frame shows: language, who is logged in, the navigation."""

    lang: Lang
    path: str
    query: tuple[tuple[str, str], ...] = ()  # kept on the language switch (without ``lang``)
    account: str | None = None  # the logged-in account's name
    my_agency: str | None = None
    unread: int = 0
    csrf: str | None = None  # the forms' token (CSRF) of the logged-in account
    logout: bool = False  # logged in by the cookie: a logout button


# A state's colours: the bar's, the badge's background and its text. The badge always says the
# state in words; maintenance's bar is striped, so it differs from the rest by more than hue.
_COLOURS = {
    State.UP: ("#2e9d4c", "#d8f3dc", "#1b5e20"),
    State.DEGRADED: ("#8e5bd0", "#efe5fb", "#4f2784"),
    State.MAINTENANCE: (
        "repeating-linear-gradient(135deg,#1e6fd9 0 4px,#9cc3f5 4px 8px)",
        "#dcebfd",
        "#0b3f8c",
    ),
    State.DOWN: ("#d32f2f", "#fde0e0", "#a3161a"),
    State.UNREACHABLE: ("#ef6c00", "#ffe7cc", "#8a3d00"),
    State.FLAPPING: ("#f2b705", "#fff3cd", "#6b5000"),
    State.UNKNOWN: ("#7b8794", "#e4e7eb", "#39424e"),
    State.PENDING: ("#c3c9d0", "#eef0f3", "#39424e"),
}


CSS = (
    'body{font:15px/1.45 "DejaVu Sans",system-ui,sans-serif;margin:0;color:#1d232a;'
    "background:#f6f7f9}"
    "header{display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:center;padding:.6em 1.2em;"
    "background:#a3161a;color:#fff}"
    "header a{color:#fff}header nav{display:flex;gap:1em;flex:1}.brand{font-weight:700}"
    "header form{display:inline;margin:0}"
    "header button{background:none;border:1px solid #fff;color:#fff;border-radius:3px;"
    "cursor:pointer}"
    "main{padding:.8em 1.2em;max-width:1280px}h1{font-size:1.45em;margin:.3em 0}"
    "h2{font-size:1.15em;margin:1.3em 0 .3em}h3{font-size:1em;margin:.2em 0}"
    "table{border-collapse:collapse;width:100%;background:#fff;margin:.3em 0 1em}"
    "th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid #e2e5e9;vertical-align:top}"
    "th{background:#eef0f3;font-weight:600}"
    "table.list{table-layout:fixed}.list th:last-child{width:250px}"
    ".list td{overflow-wrap:anywhere}"
    ".muted{color:#5b6570}.st{display:inline-block;padding:0 .5em;border-radius:3px;"
    "white-space:nowrap}"
    ".bar{display:flex;width:240px;height:16px;background:#e4e7eb;border-radius:2px;"
    "overflow:hidden}.bar i{display:block;flex-basis:0;min-width:0}"
    ".msg{background:#fff;border:1px solid #e2e5e9;padding:.6em .8em;margin:.6em 0}"
    ".msg.unread{border-left:4px solid #a3161a}"
    ".msg pre{white-space:pre-wrap;font:inherit;margin:.4em 0}"
    ".note{background:#fff3cd;border:1px solid #e0c36a;padding:.6em .8em}"
    ".err{background:#fde0e0;border:1px solid #d32f2f;padding:.6em .8em}"
    "form.login{display:flex;flex-direction:column;gap:.5em;max-width:28em}"
    "input[type=password]{padding:.4em;font:inherit}"
    "footer{padding:1em 1.2em;color:#5b6570;font-size:.85em}"
    ".problems td{overflow-wrap:anywhere}.problems td:first-child{border-left:6px solid #5b6570}"
    ".problems .st{font-weight:600}.problems time{white-space:nowrap}"
    ".ok{background:#d8f3dc;border:1px solid #2e9d4c;padding:.4em .8em}"
    "details.agency{background:#fff;border-bottom:1px solid #e2e5e9;padding:.25em .5em}"
    "details.agency summary{cursor:pointer}details.agency[open]{padding-bottom:.5em}"
    "details.agency summary .st{font-size:.9em}"
    + "".join(
        f".s-{s.value}{{background:{bar}}}.st-{s.value}{{background:{bg};color:{fg}}}"
        for s, (bar, bg, fg) in _COLOURS.items()
    )
    + "".join(f".problems td.p-{s.value}{{border-left-color:{_COLOURS[s][2]}}}" for s in PROBLEMS)
    + "".join(f".w{n}{{flex-grow:{n}}}" for n in range(1, SLOTS + 1))
)


_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()


CSP = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def link(path: str, lang: Lang, query: Iterable[tuple[str, str]] = ()) -> str:
    """``path`` with ``query`` and, in English, ``lang=en`` (not yet HTML-escaped)."""
    items = [(k, v) for k, v in query if v]
    if lang == "en":
        items.append(("lang", "en"))
    return path + ("?" + urlencode(items) if items else "")


def system_href(key: str, lang: Lang) -> str:
    agency, _, system = key.partition("/")
    return link(f"/system/{quote(agency, safe='')}/{quote(system, safe='')}", lang)


def agency_href(agency: str, lang: Lang) -> str:
    return link(f"/agency/{quote(agency, safe='')}", lang)


def when(ts: float | None, *, seconds: bool = False) -> str:
    """A moment in Vietnam time; ``—`` for none."""
    if not ts:
        return "—"
    fmt = "%H:%M:%S %d/%m/%Y" if seconds else "%H:%M %d/%m/%Y"
    return dt.datetime.fromtimestamp(ts, VN).strftime(fmt)


def _badges() -> dict[Lang, dict[State, str]]:
    return {
        lang: {
            s: f'<span class="st st-{s.value}">{escape(name)}</span>' for s, name in names.items()
        }
        for lang, names in STATE_NAMES.items()
    }


BADGES = _badges()


def system_name(entry: SystemEntry, lang: Lang) -> str:
    return entry.system.name_en if lang == "en" and entry.system.name_en else entry.system.name


def agency_name(agency: Agency, lang: Lang) -> str:
    return agency.name_en if lang == "en" else agency.name_vi


def bar(b: Bar, lang: Lang) -> str:
    """The 24-hour bar: one ``<i>`` per run of equal slots, its span and state as a tooltip."""
    names = STATE_NAMES[lang]
    parts = [f'<span class="bar" title="{escape(WORDS[lang]["last_24h"])}">']
    for state, first, count in b.runs:
        begin = dt.datetime.fromtimestamp(b.start + first * b.slot, VN)
        end = dt.datetime.fromtimestamp(b.start + (first + count) * b.slot, VN)
        title = f"{begin:%H:%M}–{end:%H:%M} {names[state]}"
        parts.append(f'<i class="s-{state.value} w{count}" title="{escape(title)}"></i>')
    parts.append("</span>")
    return "".join(parts)


def table(headers: Iterable[str], rows: Iterable[str], *, css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def counts(rows: Iterable[Row], lang: Lang) -> str:
    counts: dict[State, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    return " ".join(
        f'<span class="st st-{s.value}">{escape(STATE_NAMES[lang][s])}: {counts[s]}</span>'
        for s in State
        if s in counts
    )


def systems_count(n: int, lang: Lang) -> str:
    """``1 system`` / ``2 systems``."""
    return WORDS[lang]["systems_count_one" if n == 1 else "systems_count"].format(n=n)


def layout(chrome: Chrome, title: str, body: str) -> str:
    lang = chrome.lang
    w = WORDS[lang]
    nav: list[tuple[str, str]] = []
    if chrome.account is not None:
        nav.append((link("/", lang), w["overview"]))
        if chrome.my_agency is not None:
            nav.append((agency_href(chrome.my_agency, lang), w["my_agency"]))
        inbox = w["inbox"] + (f" ({chrome.unread})" if chrome.unread else "")
        nav.append((link("/inbox", lang), inbox))
    nav.append((link("/status", lang), w["status"]))
    if chrome.account is None:
        nav.append((link("/login", lang), w["login"]))
    links = "".join(f'<a href="{escape(h)}">{escape(t)}</a>' for h, t in nav)
    who = ""
    if chrome.account is not None:
        who = f'<span class="who">{escape(w["signed_in_as"].format(name=chrome.account))}</span>'
        if chrome.logout and chrome.csrf is not None:
            who += (
                f'<form method="post" action="{escape(link("/logout", lang))}">'
                f'<input type="hidden" name="csrf" value="{escape(chrome.csrf)}">'
                f"<button>{escape(w['logout'])}</button></form>"
            )
    other: Lang = "en" if lang == "vi" else "vi"
    switch = link(chrome.path, other, chrome.query)
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · NPSP</title><style>{CSS}</style></head><body>"
        f'<header><a class="brand" href="{escape(link("/", lang))}">NPSP</a>'
        f"<nav>{links}</nav>{who}"
        f'<a class="lang" href="{escape(switch)}" hreflang="{other}" lang="{other}">'
        f"{escape(w['switch'])}</a></header>"
        f"<main><h1>{escape(title)}</h1>{body}</main>"
        f"<footer>{escape(w['product'])} · {escape(w['hotline'])} · {escape(w['times'])}"
        "</footer></body></html>"
    )


def gateway_note(since: float | None, lang: Lang) -> str:
    if since is None:
        return ""
    return f'<p class="note">{escape(WORDS[lang]["gateway_cut"].format(since=when(since)))}</p>'


def since_cell(since: float, now: float, lang: Lang) -> str:
    """How long a state has lasted, in words ("2 giờ 5 phút" / "2 h 5 min"); the exact time
    on hover."""
    if not since:
        return WORDS[lang]["none"]
    iso = dt.datetime.fromtimestamp(since, VN).isoformat(timespec="seconds")
    return (
        f'<time datetime="{iso}" title="{escape(when(since, seconds=True))}">'
        f"{escape(duration(now - since, lang))}</time>"
    )


def agency_heading(agency: Agency, lang: Lang) -> str:
    return (
        f'<a href="{escape(agency_href(agency.id, lang))}">{escape(agency_name(agency, lang))}</a>'
    )
