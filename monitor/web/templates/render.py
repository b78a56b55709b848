"""The pages' HTML: pure functions from what a handler gathered to one string.

No JavaScript: links, forms and a 24-hour bar drawn with CSS flexbox. The stylesheet is inline
and allowed by its hash in the Content-Security-Policy (``CSP``), so the pages need no
``'unsafe-inline'`` and run no script at all. Every value that comes from the config, the
store or a probe passes through :func:`html.escape` here, and nowhere else builds HTML.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlencode

from npsp_common.types import ProbeResult

from ...config import Agency
from ...engine import Sample
from ...reasons import duration, say
from ...registry import CheckEntry, SystemEntry
from ...rules.announcements import Announcement
from ...rules.incidents import OUTAGE, Incident
from ...state import CheckStatus, Event, State
from .words import AGENCY_KINDS, STATE_NAMES, SYSTEM_KINDS, WORDS, Lang

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
class Message:
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


# ----- the stylesheet ---------------------------------------------------------------------------

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


# ----- small pieces -----------------------------------------------------------------------------


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


def _table(headers: Iterable[str], rows: Iterable[str], *, css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _counts(rows: Iterable[Row], lang: Lang) -> str:
    counts: dict[State, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    return " ".join(
        f'<span class="st st-{s.value}">{escape(STATE_NAMES[lang][s])}: {counts[s]}</span>'
        for s in State
        if s in counts
    )


def systems_table(rows: Sequence[Row], lang: Lang, *, private: bool) -> str:
    """Systems with state, since and bar; private lists link to the system pages and show
    kinds. Equal bars (most systems: up all day) are rendered once."""
    w = WORDS[lang]
    kinds = SYSTEM_KINDS[lang]
    badges = BADGES[lang]
    bars: dict[tuple[float, tuple[Run, ...]], str] = {}
    out = []
    for row in rows:
        entry = row.entry
        key = (row.bar.start, row.bar.runs)
        drawn = bars.get(key)
        if drawn is None:
            drawn = bars[key] = bar(row.bar, lang)
        name = escape(system_name(entry, lang))
        if private:
            name = f'<a href="{escape(system_href(entry.key, lang))}">{name}</a>'
        out.append(
            f'<tr data-system="{escape(entry.key)}" data-state="{row.state.value}">'
            f"<td>{name}</td><td>{escape(kinds.get(entry.system.kind, entry.system.kind))}</td>"
            f"<td>{badges[row.state]}</td><td>{when(row.since)}</td><td>{drawn}</td></tr>"
        )
    headers = [w["system"], w["kind"], w["state"], w["since"], w["last_24h"]]
    return _table(headers, out, css="list")


# ----- the frame --------------------------------------------------------------------------------


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


def _gateway_note(since: float | None, lang: Lang) -> str:
    if since is None:
        return ""
    return f'<p class="note">{escape(WORDS[lang]["gateway_cut"].format(since=when(since)))}</p>'


# ----- the pages --------------------------------------------------------------------------------


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


def problems_table(problems: Sequence[Problem], lang: Lang, *, now: float) -> str:
    """The overview's list on top: agency, system, state, for how long, why, who acknowledged
    and the incident (which opens on the system's page)."""
    w = WORDS[lang]
    badges = BADGES[lang]
    out = []
    for p in problems:
        entry, incident = p.row.entry, p.incident
        href = escape(system_href(entry.key, lang))
        if incident is None:
            acked = ident = w["none"]
        else:
            ident = f'<a href="{href}">{escape(incident.id)}</a>'
            if incident.acknowledged_by:
                at = escape(w["acknowledged_at"].format(at=when(incident.acknowledged_at)))
                acked = f'<span title="{at}">{escape(incident.acknowledged_by)}</span>'
            else:
                acked = f'<span class="muted">{escape(w["not_acknowledged"])}</span>'
        state = p.row.state.value
        out.append(
            f'<tr class="problem" data-problem="{escape(entry.key)}" data-state="{state}">'
            f'<td class="p-{state}"><a href="{escape(agency_href(entry.agency.id, lang))}">'
            f"{escape(agency_name(entry.agency, lang))}</a></td>"
            f'<td><a href="{href}">{escape(system_name(entry, lang))}</a></td>'
            f"<td>{badges[p.row.state]}</td><td>{since_cell(p.row.since, now, lang)}</td>"
            f"<td>{escape(p.reason) if p.reason else w['none']}</td>"
            f"<td>{acked}</td><td>{ident}</td></tr>"
        )
    headers = [
        w["agency"],
        w["system"],
        w["state"],
        w["for_how_long"],
        w["reason"],
        w["acknowledged_by"],
        w["incident"],
    ]
    return _table(headers, out, css="problems")


def _agency_heading(agency: Agency, lang: Lang) -> str:
    return (
        f'<a href="{escape(agency_href(agency.id, lang))}">{escape(agency_name(agency, lang))}</a>'
    )


def overview(
    chrome: Chrome,
    groups: Sequence[tuple[Agency, Sequence[Row]]],
    *,
    total: int,
    all_rows: Sequence[Row],
    problems: Sequence[Problem],
    problems_only: bool,
    gateway_since: float | None,
    now: float,
) -> str:
    """What is wrong right now, then every agency the account may see.

    On top (under the gateway's banner when it is cut off) the ``problems`` in their order,
    those in maintenance apart and last; then the agencies with a system in a
    :data:`PROBLEMS` state, each with its systems table; then the others, one line each that
    opens on its table (a ``<details>``, no script). With ``problems_only`` only the systems
    that are not up are listed, each agency open.
    """
    lang = chrome.lang
    w = WORDS[lang]
    toggle = (
        f'<a href="{escape(link("/", lang))}">{escape(w["show_all"])}</a>'
        if problems_only
        else f'<a href="{escape(link("/", lang, [("problems", "1")]))}">'
        f"{escape(w['problems_only'])}</a>"
    )
    parts = [
        _gateway_note(gateway_since, lang),
        f"<p>{escape(_systems(total, lang))} · {_counts(all_rows, lang)} · {toggle}</p>",
    ]
    urgent = [p for p in problems if p.row.state is not State.MAINTENANCE]
    planned = [p for p in problems if p.row.state is State.MAINTENANCE]
    parts.append(
        f'<section id="problems"><h2>{escape(w["problems_now"].format(n=len(urgent)))}</h2>'
    )
    if urgent:
        parts.append(problems_table(urgent, lang, now=now))
    elif gateway_since is None:  # while cut off, nobody's state is known: say nothing
        parts.append(f'<p class="ok">{escape(w["no_problems"])}</p>')
    parts.append("</section>")
    if planned:
        parts.append(
            f'<section id="maintenance">'
            f"<h2>{escape(w['in_maintenance'].format(n=len(planned)))}</h2>"
            f"{problems_table(planned, lang, now=now)}</section>"
        )
    loud: list[tuple[Agency, Sequence[Row]]] = []
    quiet: list[tuple[Agency, Sequence[Row]]] = []
    for agency, rows in groups:
        if rows:
            wrong = problems_only or any(r.state in PROBLEMS for r in rows)
            (loud if wrong else quiet).append((agency, rows))
    for agency, rows in loud:
        parts.append(
            f'<h2 id="agency-{escape(agency.id)}">{_agency_heading(agency, lang)}</h2>'
            f'<p class="muted">{escape(AGENCY_KINDS[lang][agency.kind])} · '
            f"{escape(agency.code)} · {_counts(rows, lang)}</p>"
            + systems_table(rows, lang, private=True)
        )
    if quiet:
        all_up = all(r.state is State.UP for _, rows in quiet for r in rows)
        if all_up:
            heading = w["agencies_all_up_one" if len(quiet) == 1 else "agencies_all_up"]
        else:
            heading = w["agencies_other"]
        parts.append(f'<h2 id="quiet">{escape(heading.format(n=len(quiet)))}</h2>')
        for agency, rows in quiet:
            parts.append(
                f'<details class="agency" id="agency-{escape(agency.id)}"><summary>'
                f"<b>{_agency_heading(agency, lang)}</b> "
                f'<span class="muted">· {escape(AGENCY_KINDS[lang][agency.kind])} · '
                f"{escape(agency.code)} ·</span> {_counts(rows, lang)}</summary>"
                + systems_table(rows, lang, private=True)
                + "</details>"
            )
    return layout(chrome, w["overview"], "".join(parts))


def agency_page(
    chrome: Chrome,
    agency: Agency,
    rows: Sequence[Row],
    *,
    incidents: Sequence[Incident],
    announcements: Sequence[Announcement],
    changes: Sequence[Event],
    names: Mapping[str, str],
    gateway_since: float | None,
) -> str:
    lang = chrome.lang
    w = WORDS[lang]
    body = (
        _gateway_note(gateway_since, lang)
        + f'<p class="muted">{escape(AGENCY_KINDS[lang][agency.kind])} · {escape(agency.code)}'
        f" · {escape(_systems(len(rows), lang))} · {_counts(rows, lang)}</p>"
        + systems_table(rows, lang, private=True)
        + f"<h2>{escape(w['incidents'])}</h2>"
        + incidents_table(incidents, lang, names)
        + f"<h2>{escape(w['announcements'])}</h2>"
        + announcements_table(announcements, lang, names)
        + f"<h2>{escape(w['state_changes'])}</h2>"
        + changes_table(changes, lang, names)
    )
    return layout(chrome, agency_name(agency, lang), body)


def _cancel_form(a: Announcement, lang: Lang, csrf: str | None) -> str:
    if csrf is None:
        return ""
    return (
        f'<form method="post" action="{escape(link(f"/announcements/{a.id}/cancel", lang))}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f"<button>{escape(WORDS[lang]['cancel_announcement'])}</button></form>"
    )


def system_page(
    chrome: Chrome,
    row: Row,
    *,
    reason: str,
    parents: Sequence[tuple[str, str, bool]],  # key, name, whether the account may open it
    checks: Sequence[tuple[CheckEntry, CheckStatus | None, Sequence[Sample]]],
    changes: Sequence[Event],
    incidents: Sequence[Incident],
    announcements: Sequence[Announcement],
    gateway_since: float | None,
    cancel_csrf: str | None = None,
) -> str:
    lang = chrome.lang
    w = WORDS[lang]
    entry = row.entry
    facts = [
        (
            w["agency"],
            f'<a href="{escape(agency_href(entry.agency.id, lang))}">'
            f"{escape(agency_name(entry.agency, lang))}</a>",
        ),
        (w["kind"], escape(SYSTEM_KINDS[lang].get(entry.system.kind, entry.system.kind))),
        (w["state"], BADGES[lang][row.state]),
        (w["since"], when(row.since)),
        (w["reason"], escape(reason) if reason else w["none"]),
        (w["last_24h"], bar(row.bar, lang)),
    ]
    if parents:
        facts.append(
            (
                w["depends_on"],
                ", ".join(
                    f'<a href="{escape(system_href(k, lang))}">{escape(n)}</a>'
                    if linked
                    else escape(n)
                    for k, n, linked in parents
                ),
            )
        )
    body = [
        _gateway_note(gateway_since, lang),
        "<table>"
        + "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in facts)
        + "</table>",
        f"<h2>{escape(w['checks'])}</h2>",
        _checks_table(checks, lang),
        f"<h2>{escape(w['recent_results'])}</h2>",
    ]
    for check, _status, samples in checks:
        body.append(f"<h3>{escape(check.check_id)} ({escape(check.kind)})</h3>")
        if not samples:
            body.append(f'<p class="muted">{escape(w["no_results"])}</p>')
            continue
        body.append(
            _table(
                [w["time"], w["vantage"], w["result"], w["reason"], w["duration"]],
                (
                    f'<tr class="result" data-ok="{int(s.result.ok)}">'
                    f"<td>{when(s.time, seconds=True)}</td>"
                    f"<td>{escape(s.vantage)}</td>"
                    f"<td>{escape(_result_word(s.result, lang))}</td>"
                    f"<td>{escape(say(s.result.why, lang, s.result.reason))}</td>"
                    f"<td>{_ms(s.result.duration)}</td></tr>"
                    for s in reversed(samples)
                ),
            )
        )
    names = {entry.key: system_name(entry, lang)}
    body += [
        f"<h2>{escape(w['incidents'])}</h2>",
        incidents_table(incidents, lang, names),
        f"<h2>{escape(w['announcements'])}</h2>",
        announcements_table(announcements, lang, names, cancel_csrf=cancel_csrf),
        f"<h2>{escape(w['state_changes'])}</h2>",
        changes_table(changes, lang, names),
    ]
    return layout(chrome, system_name(entry, lang), "".join(body))


def _result_word(result: ProbeResult, lang: Lang) -> str:
    w = WORDS[lang]
    if not result.ok:
        return w["not_ok"]
    return w["warning"] if result.degraded else w["ok"]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def check_verdict(status: CheckStatus | None, lang: Lang) -> tuple[str, str]:
    """What a check's row says of it: (``ok``, ``warning``, ``failing`` or ``none``, the words).

    Judged on its last result, so that the verdict and the reason beside it agree; a result
    the thresholds have not confirmed yet says so ("failing, not confirmed yet: 1 of 3").
    """
    w = WORDS[lang]
    last = status.last if status is not None else None
    if status is None or last is None:
        return "none", w["no_verdict"]
    if not last.ok:
        if status.healthy is False:
            return "failing", w["failing"]
        n, of = status.failures, status.failure_threshold
        return "failing", w["failing_unconfirmed"].format(n=n, of=of)
    if status.healthy is False:
        n, of = status.successes, status.success_threshold
        return "ok", w["recovering"].format(n=n, of=of)
    if last.degraded:
        return "warning", w["warning"]
    return "ok", w["healthy"]


def _checks_table(
    checks: Sequence[tuple[CheckEntry, CheckStatus | None, Sequence[Sample]]], lang: Lang
) -> str:
    w = WORDS[lang]
    rows = []
    for check, status, _samples in checks:
        verdict, words = check_verdict(status, lang)
        last = status.last if status is not None else None
        rows.append(
            f'<tr class="check" data-verdict="{verdict}">'
            f"<td>{escape(check.check_id)}</td><td>{escape(check.kind)}</td>"
            f"<td>{escape(words)}</td>"
            f"<td>{escape(say(last.why, lang, last.reason)) if last else w['none']}</td>"
            f"<td>{_ms(last.duration) if last else w['none']}</td>"
            f"<td>{when(status.last_time, seconds=True) if status else w['none']}</td></tr>"
        )
    return _table(
        [w["check"], w["kind"], w["state"], w["last_result"], w["duration"], w["time"]], rows
    )


def changes_table(changes: Sequence[Event], lang: Lang, names: Mapping[str, str]) -> str:
    w = WORDS[lang]
    if not changes:
        return f'<p class="muted">{escape(w["no_changes"])}</p>'
    badges = BADGES[lang]
    rows = (
        f"<tr><td>{when(e.time, seconds=True)}</td>"
        f"<td>{escape(names.get(f'{e.agency}/{e.system}', e.system))}</td>"
        f"<td>{badges[e.old]} → {badges[e.new]}</td>"
        f"<td>{escape(say(e.why, lang, e.reason))}</td>"
        f"<td>{escape(e.vantage)}</td></tr>"
        for e in changes
    )
    return _table([w["time"], w["system"], w["change"], w["reason"], w["vantage"]], rows)


def incidents_table(incidents: Sequence[Incident], lang: Lang, names: Mapping[str, str]) -> str:
    w = WORDS[lang]
    if not incidents:
        return f'<p class="muted">{escape(w["no_incidents"])}</p>'
    rows = []
    for i in incidents:
        if i.resolved_at is not None:
            status = f"{w['resolved']} {when(i.resolved_at)}"
        elif i.acknowledged_by:
            status = f"{w['acknowledged_by']} {i.acknowledged_by}"
        else:
            status = w["open"]
        system = names.get(i.key, i.system or "") if i.system else w["none"]
        rows.append(
            f'<tr class="incident"><td>{escape(i.id)}</td><td>{escape(system)}</td>'
            f"<td>{escape(i.summary)}</td><td>{when(i.received)}</td>"
            f"<td>{escape(_due_or_escalation(i, lang))}</td><td>{escape(status)}</td></tr>"
        )
    return _table(
        ["#", w["system"], w["summary"], w["received_since"], w["due_or_escalation"], w["state"]],
        rows,
    )


def _due_or_escalation(i: Incident, lang: Lang) -> str:
    """A request's due time (a complex one's published expected completion); an outage has
    none (it escalates around the clock): the last step of its ladder taken."""
    w = WORDS[lang]
    if i.source == OUTAGE:
        if i.escalated_to is None:
            return w["not_escalated"]
        group = w.get(f"group:{i.escalated_to}", i.escalated_to)
        return w["escalated_to"].format(group=group, at=when(i.escalated_at))
    if i.complex:
        return f"{when(i.due_at)} ({w['complex_request']})"
    return when(i.due_at)


def announcements_table(
    announcements: Sequence[Announcement],
    lang: Lang,
    names: Mapping[str, str],
    *,
    cancel_csrf: str | None = None,
) -> str:
    """The announcements; with ``cancel_csrf`` (an account that may act on the agency), the
    ones still to come get a button that cancels them — where an announcement's confirmation
    ("if this was not you, cancel it") sends people."""
    w = WORDS[lang]
    if not announcements:
        return f'<p class="muted">{escape(w["no_announcements"])}</p>'
    rows = []
    for a in announcements:
        notice = w["notice_days"].format(days=a.working_days, required=a.required)
        verdict = w["compliant"] if a.compliant else w["late"]
        status = (
            w["cancelled"]
            if a.cancelled_at is not None
            else w["applied"]
            if a.applied_at is not None
            else ""
        )
        rows.append(
            f'<tr class="announcement"><td>{escape(a.ref or str(a.id))}</td>'
            f"<td>{escape(names.get(a.key, a.system))}</td>"
            f"<td>{when(a.announced_at)}</td><td>{when(a.effective_at)}</td>"
            f"<td>{escape(a.changes.summary())}</td>"
            f"<td>{escape(notice)} · {escape(verdict)}</td><td>{escape(status)}"
            f"{_cancel_form(a, lang, cancel_csrf) if not status else ''}</td></tr>"
        )
    return _table(
        [
            w["ref"],
            w["system"],
            w["announced"],
            w["effective"],
            w["changes"],
            w["notice"],
            w["state"],
        ],
        rows,
    )


def inbox_page(chrome: Chrome, messages: Sequence[Message], *, csrf: str | None) -> str:
    """The account's messages, newest first; unread ones carry a "mark as read" form."""
    lang = chrome.lang
    w = WORDS[lang]
    unread = sum(1 for m in messages if m.read_at is None)
    parts = [f"<p>{escape(w['unread'].format(n=unread))}</p>"]
    if not messages:
        parts.append(f'<p class="muted">{escape(w["no_messages"])}</p>')
    for m in messages:
        state = "unread" if m.read_at is None else "read"
        action = ""
        if m.read_at is None and csrf is not None:
            action = (
                f'<form method="post" action="{escape(link(f"/inbox/{m.id}/read", lang))}">'
                f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
                f"<button>{escape(w['mark_read'])}</button></form>"
            )
        elif m.read_at is not None:
            action = f'<p class="muted">{escape(w["read"])} {when(m.read_at)}</p>'
        parts.append(
            f'<article class="msg {state}" data-id="{m.id}"><h3>{escape(m.subject)}</h3>'
            f'<p class="muted">{escape(w["received"])} {when(m.created_at)}</p>'
            f"<pre>{escape(m.text)}</pre>{action}</article>"
        )
    return layout(chrome, w["inbox"], "".join(parts))


def status_page(
    chrome: Chrome, groups: Sequence[tuple[Agency, Sequence[Row]]], *, now: float
) -> str:
    """The public page: names, states, last change and bars of the systems marked public;
    never a reason, a host or a link into the private pages."""
    lang = chrome.lang
    w = WORDS[lang]
    badges = BADGES[lang]
    parts = [
        f"<p>{escape(w['public_intro'])}</p>",
        f'<p class="muted">{escape(w["updated"].format(at=when(now, seconds=True)))}</p>',
    ]
    if not groups:
        parts.append(f"<p>{escape(w['no_public'])}</p>")
    bars: dict[tuple[float, tuple[Run, ...]], str] = {}
    for agency, rows in groups:
        out = []
        for row in rows:
            key = (row.bar.start, row.bar.runs)
            drawn = bars.get(key) or bars.setdefault(key, bar(row.bar, lang))
            out.append(
                f'<tr data-state="{row.state.value}">'
                f"<td>{escape(system_name(row.entry, lang))}</td><td>{badges[row.state]}</td>"
                f"<td>{when(row.since)}</td><td>{drawn}</td></tr>"
            )
        parts.append(
            f"<h2>{escape(agency_name(agency, lang))}</h2>"
            + _table([w["system"], w["state"], w["last_change"], w["last_24h"]], out, css="list")
        )
    return layout(chrome, w["status"], "".join(parts))


def login_page(chrome: Chrome, *, next_path: str, error: str | None = None) -> str:
    lang = chrome.lang
    w = WORDS[lang]
    note = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    body = (
        f"{note}<p>{escape(w['login_help'])}</p>"
        f'<form class="login" method="post" action="{escape(link("/login", lang))}">'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        f'<label for="token">{escape(w["token"])}</label>'
        '<input id="token" name="token" type="password" autocomplete="current-password" '
        'required maxlength="256">'
        f"<button>{escape(w['login'])}</button></form>"
    )
    return layout(chrome, w["login"], body)


def message_page(chrome: Chrome, title: str, text: str) -> str:
    """403, 404, 429 and forged-form answers."""
    return layout(chrome, title, f'<p class="err">{escape(text)}</p>')


def _systems(n: int, lang: Lang) -> str:
    """``1 system`` / ``2 systems``."""
    return WORDS[lang]["systems_count_one" if n == 1 else "systems_count"].format(n=n)
