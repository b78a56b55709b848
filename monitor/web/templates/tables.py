"""The pages' tables: systems, the overview's problems, checks, recent results, state
changes, incidents and announcements (with the cancel button of one still to come)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from npsp_common.types import ProbeResult

from ...engine import Sample
from ...reasons import say
from ...registry import CheckEntry
from ...rules.announcements import Announcement
from ...rules.incidents import OUTAGE, Incident
from ...state import CheckStatus, Event
from .frame import (
    BADGES,
    Problem,
    Row,
    Run,
    agency_href,
    agency_name,
    bar,
    link,
    since_cell,
    system_href,
    system_name,
    table,
    when,
)
from .words import SYSTEM_KINDS, WORDS, Lang


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
    return table(headers, out, css="list")


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
    return table(headers, out, css="problems")


def result_word(result: ProbeResult, lang: Lang) -> str:
    w = WORDS[lang]
    if not result.ok:
        return w["not_ok"]
    return w["warning"] if result.degraded else w["ok"]


def ms(seconds: float) -> str:
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


#: Per check, on several gateway hosts: the voting vantages that see it failing, degraded and
#: passing (:meth:`monitor.cluster.votes.VoteBoard.tally`).
VantageViews = Mapping[str, tuple[list[str], list[str], list[str]]]


def checks_table(
    checks: Sequence[tuple[CheckEntry, CheckStatus | None, Sequence[Sample]]],
    lang: Lang,
    views: VantageViews | None = None,
) -> str:
    w = WORDS[lang]
    rows = []
    for check, status, _samples in checks:
        verdict, words = check_verdict(status, lang)
        last = status.last if status is not None else None
        seen = "" if views is None else f"<td>{_vantage_view(views.get(check.key), lang)}</td>"
        rows.append(
            f'<tr class="check" data-verdict="{verdict}">'
            f"<td>{escape(check.check_id)}</td><td>{escape(check.kind)}</td>"
            f"<td>{escape(words)}</td>"
            f"<td>{escape(say(last.why, lang, last.reason)) if last else w['none']}</td>"
            f"<td>{ms(last.duration) if last else w['none']}</td>"
            f"<td>{when(status.last_time, seconds=True) if status else w['none']}</td>{seen}</tr>"
        )
    heads = [w["check"], w["kind"], w["state"], w["last_result"], w["duration"], w["time"]]
    return table(heads if views is None else [*heads, w["vantage"]], rows)


def _vantage_view(view: tuple[list[str], list[str], list[str]] | None, lang: Lang) -> str:
    """ "gw-2 ✗ · gw-1, gw-3 ✓": who sees the check how (the failing first)."""
    if view is None or not any(view):
        return escape(WORDS[lang]["none"])
    parts = [
        f'<span class="{cls}">{escape(", ".join(names))} {mark}</span>'
        for names, mark, cls in zip(view, ("✗", "~", "✓"), ("down", "degraded", "up"), strict=True)
        if names
    ]
    return " · ".join(parts)


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
    return table([w["time"], w["system"], w["change"], w["reason"], w["vantage"]], rows)


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
    return table(
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


def _cancel_form(a: Announcement, lang: Lang, csrf: str | None) -> str:
    if csrf is None:
        return ""
    return (
        f'<form method="post" action="{escape(link(f"/announcements/{a.id}/cancel", lang))}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f"<button>{escape(WORDS[lang]['cancel_announcement'])}</button></form>"
    )


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
    return table(
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
