"""The pages' HTML: pure functions from what a handler gathered to one string. The frame and
the small pieces are :mod:`.frame`, the tables :mod:`.tables`; this module composes the pages
(and offers the names the handlers use from all three).

No JavaScript: links, forms and a 24-hour bar drawn with CSS flexbox. The stylesheet is inline
and allowed by its hash in the Content-Security-Policy (``CSP``), so the pages need no
``'unsafe-inline'`` and run no script at all. Every value that comes from the config, the
store or a probe passes through :func:`html.escape` here, and nowhere else builds HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from ...config import Agency
from ...engine import Sample
from ...reasons import say
from ...registry import CheckEntry
from ...rules.announcements import Announcement
from ...rules.incidents import Incident
from ...state import CheckStatus, Event, State
from .contacts import contacts_link
from .frame import (
    BADGES,
    CSP,
    PROBLEMS,
    SLOTS,
    Bar,
    Chrome,
    InboxItem,
    Problem,
    Row,
    Run,
    agency_heading,
    agency_href,
    agency_name,
    bar,
    counts,
    gateway_note,
    layout,
    link,
    since_cell,
    system_href,
    system_name,
    systems_count,
    table,
    when,
)
from .reports import reports_link
from .tables import (
    VantageViews,
    announcements_table,
    changes_table,
    check_verdict,
    checks_table,
    incidents_table,
    ms,
    problems_table,
    result_word,
    systems_table,
)
from .words import AGENCY_KINDS, SYSTEM_KINDS, WORDS, Lang


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
    duty: str = "",
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
        gateway_note(gateway_since, lang),
        f"<p>{escape(systems_count(total, lang))} · {counts(all_rows, lang)} · {toggle}</p>",
        *_problem_sections(problems, lang, now=now, gateway_cut=gateway_since is not None),
        duty,  # who is on duty now, per agency with a roster (rosters.duty_section)
        *_agency_sections(groups, lang, problems_only=problems_only),
    ]
    return layout(chrome, w["overview"], "".join(parts))


def _problem_sections(
    problems: Sequence[Problem], lang: Lang, *, now: float, gateway_cut: bool
) -> list[str]:
    """The overview's top: the problems, then those in maintenance apart."""
    w = WORDS[lang]
    parts = []
    urgent = [p for p in problems if p.row.state is not State.MAINTENANCE]
    planned = [p for p in problems if p.row.state is State.MAINTENANCE]
    parts.append(
        f'<section id="problems"><h2>{escape(w["problems_now"].format(n=len(urgent)))}</h2>'
    )
    if urgent:
        parts.append(problems_table(urgent, lang, now=now))
    elif not gateway_cut:  # while cut off, nobody's state is known: say nothing
        parts.append(f'<p class="ok">{escape(w["no_problems"])}</p>')
    parts.append("</section>")
    if planned:
        parts.append(
            f'<section id="maintenance">'
            f"<h2>{escape(w['in_maintenance'].format(n=len(planned)))}</h2>"
            f"{problems_table(planned, lang, now=now)}</section>"
        )
    return parts


def _agency_sections(
    groups: Sequence[tuple[Agency, Sequence[Row]]], lang: Lang, *, problems_only: bool
) -> list[str]:
    """The agencies with a problem, open; the others one line each that opens on its table."""
    w = WORDS[lang]
    parts = []
    loud: list[tuple[Agency, Sequence[Row]]] = []
    quiet: list[tuple[Agency, Sequence[Row]]] = []
    for agency, rows in groups:
        if rows:
            wrong = problems_only or any(r.state in PROBLEMS for r in rows)
            (loud if wrong else quiet).append((agency, rows))
    for agency, rows in loud:
        parts.append(
            f'<h2 id="agency-{escape(agency.id)}">{agency_heading(agency, lang)}</h2>'
            f'<p class="muted">{escape(AGENCY_KINDS[lang][agency.kind])} · '
            f"{escape(agency.code)} · {counts(rows, lang)}</p>"
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
                f"<b>{agency_heading(agency, lang)}</b> "
                f'<span class="muted">· {escape(AGENCY_KINDS[lang][agency.kind])} · '
                f"{escape(agency.code)} ·</span> {counts(rows, lang)}</summary>"
                + systems_table(rows, lang, private=True)
                + "</details>"
            )
    return parts


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
    duty: str = "",
) -> str:
    """``duty``: the "on duty now" line (:func:`~.rosters.duty_line`; empty: no roster)."""
    lang = chrome.lang
    w = WORDS[lang]
    body = (
        gateway_note(gateway_since, lang)
        + f'<p class="muted">{escape(AGENCY_KINDS[lang][agency.kind])} · {escape(agency.code)}'
        f" · {escape(systems_count(len(rows), lang))} · {counts(rows, lang)}</p>"
        + duty
        + systems_table(rows, lang, private=True)
        + f"<h2>{escape(w['incidents'])}</h2>"
        + incidents_table(incidents, lang, names)
        + f"<h2>{escape(w['announcements'])}</h2>"
        + announcements_table(announcements, lang, names)
        + f"<h2>{escape(w['state_changes'])}</h2>"
        + changes_table(changes, lang, names)
        + reports_link(agency.id, lang)
        + contacts_link(agency.id, lang)
    )
    return layout(chrome, agency_name(agency, lang), body)


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
    views: VantageViews | None = None,
) -> str:
    lang = chrome.lang
    w = WORDS[lang]
    entry = row.entry
    body = [
        gateway_note(gateway_since, lang),
        _facts(row, reason, parents, lang),
        f"<h2>{escape(w['checks'])}</h2>",
        checks_table(checks, lang, views),
        f"<h2>{escape(w['recent_results'])}</h2>",
        *_recent_results(checks, lang),
    ]
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


def _facts(row: Row, reason: str, parents: Sequence[tuple[str, str, bool]], lang: Lang) -> str:
    """A system's facts: agency, kind, state, since, reason, bar, what it depends on."""
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
    return (
        "<table>"
        + "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in facts)
        + "</table>"
    )


def _recent_results(
    checks: Sequence[tuple[CheckEntry, CheckStatus | None, Sequence[Sample]]], lang: Lang
) -> list[str]:
    """Each check's recent results, newest first."""
    w = WORDS[lang]
    body = []
    for check, _status, samples in checks:
        body.append(f"<h3>{escape(check.check_id)} ({escape(check.kind)})</h3>")
        if not samples:
            body.append(f'<p class="muted">{escape(w["no_results"])}</p>')
            continue
        body.append(
            table(
                [w["time"], w["vantage"], w["result"], w["reason"], w["duration"]],
                (
                    f'<tr class="result" data-ok="{int(s.result.ok)}">'
                    f"<td>{when(s.time, seconds=True)}</td>"
                    f"<td>{escape(s.vantage)}</td>"
                    f"<td>{escape(result_word(s.result, lang))}</td>"
                    f"<td>{escape(say(s.result.why, lang, s.result.reason))}</td>"
                    f"<td>{ms(s.result.duration)}</td></tr>"
                    for s in reversed(samples)
                ),
            )
        )
    return body


def inbox_page(chrome: Chrome, messages: Sequence[InboxItem], *, csrf: str | None) -> str:
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
            + table([w["system"], w["state"], w["last_change"], w["last_24h"]], out, css="list")
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


__all__ = [
    "CSP",
    "PROBLEMS",
    "SLOTS",
    "Bar",
    "Chrome",
    "InboxItem",
    "Problem",
    "Row",
    "Run",
    "agency_page",
    "check_verdict",
    "inbox_page",
    "incidents_table",
    "link",
    "login_page",
    "message_page",
    "overview",
    "since_cell",
    "status_page",
    "system_name",
    "system_page",
    "when",
]
