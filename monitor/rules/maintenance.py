"""Maintenance windows, planned by the Government Office for the portal itself or for given
agencies or systems (QĐ 31/2021/QĐ-TTg, Điều 52 khoản 2: at least 5 working days' notice).

* **schedule** (:func:`schedule`, used by the command line): the notice is counted in working
  days by :meth:`WorkCalendar.notice` against ``rules.maintenance_notice``. A late window is
  refused unless overridden with a reason; it is then stored, flagged (``compliant = 0``).
* **notices** (:class:`MaintenanceDesk`): the affected admins and operations hear when a window
  is scheduled, when it starts and when it ends (or that it was cancelled), each exactly once.
  The ``notified_*`` columns record what was told; the notice keys are derived from the window,
  so a crash between queuing a notice and recording it sends nothing twice.
* **mute** (:meth:`MaintenanceDesk.mutes`): alerts of covered systems are held inside a window.
  The alert pipeline keeps a held alert and sends it if it still fires when the window ends.

Windows are rows of the ``maintenance`` table (store migration 4); times are epoch seconds and
``scope`` is a JSON list of ``agency`` or ``agency/system`` refs, empty for the whole portal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from npsp_common.types import Why

from ..alerting.messages import local_time
from ..alerting.model import Alert
from ..alerting.notices import Audience, Notice, everyone
from ..registry import Registry
from ..state import GATEWAY_AGENCY
from ..store import Store
from ..workdays import Rule, WorkCalendar
from .desk import RulesContext

__all__ = [
    "MAX_DURATION",
    "MAX_TEXT",
    "LateNotice",
    "MaintenanceDesk",
    "MaintenanceError",
    "Window",
    "audience",
    "cancel",
    "list_windows",
    "notice_for",
    "prepare",
    "resolve_scope",
    "schedule",
]

log = logging.getLogger(__name__)

#: Longest window: a typo in the year must not mute an agency (or the portal) for a year.
MAX_DURATION = 7 * 86400.0
#: Longest reason, override reason or author name, in characters.
MAX_TEXT = 500
_MAX_AUTHOR = 100

NoticeKind = Literal["scheduled", "started", "ended", "cancelled"]


class MaintenanceError(ValueError):
    """A window cannot be scheduled or cancelled as asked; the message says why and what to do."""


class LateNotice(MaintenanceError):
    """Less notice than the rule requires, and no override reason was given."""

    def __init__(self, message: str, *, working_days: int, rule: Rule) -> None:
        super().__init__(message)
        self.working_days = working_days
        self.required = rule.value
        self.source = rule.source


@dataclass(frozen=True, slots=True)
class Window:
    """One maintenance window, as stored (``id`` is 0 before it is stored)."""

    id: int
    scope: tuple[str, ...]  # "agency" or "agency/system"; empty: the whole portal
    starts: float
    ends: float
    reason: str
    announced_at: float
    working_days: int  # notice, counted strictly between the announcement and the start
    required: int  # the rule's value when it was scheduled
    compliant: bool
    override_reason: str | None  # set only on a late window stored anyway
    author: str
    created_at: float
    cancelled_at: float | None = None
    cancel_reason: str | None = None
    notified_scheduled: float | None = None
    notified_started: float | None = None
    notified_ended: float | None = None

    @property
    def portal_wide(self) -> bool:
        return not self.scope

    def covers(self, agency: str, system: str) -> bool:
        """Whether the window covers this system (our own uplink is never covered)."""
        if agency == GATEWAY_AGENCY:
            return False
        return not self.scope or agency in self.scope or f"{agency}/{system}" in self.scope

    def mutes_at(self, now: float) -> bool:
        """Whether alerts of covered systems are held at ``now``."""
        return self.cancelled_at is None and self.starts <= now < self.ends

    def status(self, now: float) -> Literal["scheduled", "in progress", "ended", "cancelled"]:
        if self.cancelled_at is not None:
            return "cancelled"
        if now >= self.ends:
            return "ended"
        return "in progress" if now >= self.starts else "scheduled"


# ----- scheduling (the command line) -------------------------------------------------------------


def _text(value: str, what: str, limit: int = MAX_TEXT) -> str:
    """One line of text: whitespace (newlines included) collapsed, non-empty, bounded."""
    text = " ".join(value.split())
    if not text:
        raise MaintenanceError(f"{what} must not be empty")
    if len(text) > limit:
        raise MaintenanceError(f"{what} is {len(text)} characters long; at most {limit} allowed")
    return text


def _known(names: Iterable[str], limit: int = 8) -> str:
    ordered = sorted(set(names))
    shown = ", ".join(ordered[:limit])
    return shown + (f", … ({len(ordered)} in all)" if len(ordered) > limit else "")


def resolve_scope(registry: Registry, refs: Iterable[str]) -> tuple[str, ...]:
    """Check each ``agency`` or ``agency/system`` ref against the registry.

    Duplicates are dropped, and so is a system whose whole agency is in scope too. An empty
    result means the whole portal.
    """
    agencies = {e.agency.id for e in registry.systems.values()}
    chosen: list[str] = []
    for raw in refs:
        ref = raw.strip()
        agency, sep, system = ref.partition("/")
        if not agency or (sep and not system) or "/" in system or " " in ref:
            raise MaintenanceError(
                f"invalid scope {raw!r}: write AGENCY or AGENCY/SYSTEM, "
                "e.g. bo-y-te or bo-y-te/secure-server"
            )
        if agency not in agencies:
            raise MaintenanceError(
                f"unknown agency {agency!r} in scope {ref!r} (known: {_known(agencies)})"
            )
        if sep and ref not in registry.systems:
            systems = (e.system.id for e in registry.systems.values() if e.agency.id == agency)
            raise MaintenanceError(f"unknown system {ref!r}: agency {agency} has {_known(systems)}")
        chosen.append(ref)
    whole = {r for r in chosen if "/" not in r}
    kept = (r for r in chosen if "/" not in r or r.partition("/")[0] not in whole)
    return tuple(dict.fromkeys(kept))


def _earliest_start(calendar: WorkCalendar, announced: dt.datetime, rule: Rule) -> dt.date:
    """The first day a window announced at ``announced`` may start with enough notice."""
    day, counted = calendar.local(announced).date(), 0
    while counted < rule.value:
        day += dt.timedelta(days=1)
        counted += calendar.is_working_day(day)
    return day + dt.timedelta(days=1)


def prepare(
    calendar: WorkCalendar,
    registry: Registry,
    *,
    starts: dt.datetime,
    ends: dt.datetime,
    reason: str,
    scope: Iterable[str] = (),
    override_reason: str | None = None,
    author: str,
    now: float,
    announced_at: dt.datetime | None = None,
) -> Window:
    """Validate a window and count its notice; nothing is stored (the result's ``id`` is 0).

    ``starts``, ``ends`` and ``announced_at`` without an offset are the calendar's local time;
    ``announced_at`` defaults to ``now`` (epoch seconds). Raises :class:`MaintenanceError`
    (:class:`LateNotice` when the notice is short and no ``override_reason`` is given).
    """
    reason = _text(reason, "the reason")
    author = _text(author, "the author", _MAX_AUTHOR)
    override = None if override_reason is None else _text(override_reason, "the override reason")
    refs = resolve_scope(registry, scope)
    start_ts, end_ts = calendar.local(starts).timestamp(), calendar.local(ends).timestamp()
    if end_ts <= start_ts:
        raise MaintenanceError(
            f"the window must end after it starts (start {local_time(start_ts)}, "
            f"end {local_time(end_ts)})"
        )
    if end_ts - start_ts > MAX_DURATION:
        raise MaintenanceError(
            f"the window lasts {(end_ts - start_ts) / 86400:.1f} days; at most "
            f"{MAX_DURATION / 86400:g} days are allowed (schedule several windows if needed)"
        )
    if end_ts <= now:
        raise MaintenanceError(f"the window is already over (it ended {local_time(end_ts)})")
    announced_ts = now if announced_at is None else calendar.local(announced_at).timestamp()
    if announced_ts > now:
        raise MaintenanceError(
            f"the announcement ({local_time(announced_ts)}) cannot be in the future"
        )
    rule = calendar.settings.rules.maintenance_notice
    announced = dt.datetime.fromtimestamp(announced_ts, calendar.tz)
    # A window already under way when announced had no notice at all.
    effective = dt.datetime.fromtimestamp(max(start_ts, announced_ts), calendar.tz)
    try:
        notice = calendar.notice(announced, effective)
        compliant = notice.meets(rule)
        earliest = None if compliant else _earliest_start(calendar, announced, rule)
    except ValueError as exc:
        raise MaintenanceError(f"cannot count the notice: {exc}") from None
    if earliest is not None and override is None:
        counted = ", ".join(f"{d:%a %d/%m}" for d in notice.days) or "none"
        raise LateNotice(
            f"late notice: the window starting {local_time(start_ts)} was announced "
            f"{local_time(announced_ts)}, {notice.working_days} working day(s) ahead "
            f"({counted}); at least {rule.value} are required ({rule.source}). "
            f"Start on {earliest:%d/%m/%Y} or later, or give --override REASON "
            "to schedule it anyway (it is then flagged as late)",
            working_days=notice.working_days,
            rule=rule,
        )
    return Window(
        id=0,
        scope=refs,
        starts=start_ts,
        ends=end_ts,
        reason=reason,
        announced_at=announced_ts,
        working_days=notice.working_days,
        required=rule.value,
        compliant=compliant,
        override_reason=None if compliant else override,
        author=author,
        created_at=now,
    )


_COLUMNS = (
    "id, scope, starts, ends, reason, announced_at, working_days, required, compliant,"
    " override_reason, author, created_at, cancelled_at, notified_scheduled, notified_started,"
    " notified_ended, cancel_reason"
)


def _select(db: sqlite3.Connection, where: str, args: Sequence[object] = ()) -> list[Window]:
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM maintenance WHERE {where} ORDER BY starts, id",  # noqa: S608 - constant SQL; values are bound
        args,
    ).fetchall()
    return [_window(row) for row in rows]


def _window(row: Sequence[Any]) -> Window:
    (
        id_,
        scope,
        starts,
        ends,
        reason,
        announced_at,
        working_days,
        required,
        compliant,
        override_reason,
        author,
        created_at,
        cancelled_at,
        scheduled,
        started,
        ended,
        cancel_reason,
    ) = row
    return Window(
        id=int(id_),
        scope=tuple(json.loads(str(scope))),
        starts=float(starts),
        ends=float(ends),
        reason=str(reason),
        announced_at=float(announced_at),
        working_days=int(working_days),
        required=int(required),
        compliant=bool(compliant),
        override_reason=None if override_reason is None else str(override_reason),
        author=str(author),
        created_at=float(created_at),
        cancelled_at=None if cancelled_at is None else float(cancelled_at),
        cancel_reason=None if cancel_reason is None else str(cancel_reason),
        notified_scheduled=None if scheduled is None else float(scheduled),
        notified_started=None if started is None else float(started),
        notified_ended=None if ended is None else float(ended),
    )


async def schedule(
    store: Store,
    calendar: WorkCalendar,
    registry: Registry,
    *,
    starts: dt.datetime,
    ends: dt.datetime,
    reason: str,
    scope: Iterable[str] = (),
    override_reason: str | None = None,
    author: str,
    now: float,
    announced_at: dt.datetime | None = None,
) -> Window:
    """Validate (:func:`prepare`) and store a window; the daemon's desk sends its notices."""
    window = prepare(
        calendar,
        registry,
        starts=starts,
        ends=ends,
        reason=reason,
        scope=scope,
        override_reason=override_reason,
        author=author,
        now=now,
        announced_at=announced_at,
    )

    def insert(db: sqlite3.Connection) -> int:
        row = db.execute(
            "INSERT INTO maintenance (scope, starts, ends, reason, announced_at, working_days,"
            " required, compliant, override_reason, author, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                json.dumps(list(window.scope)),
                window.starts,
                window.ends,
                window.reason,
                window.announced_at,
                window.working_days,
                window.required,
                int(window.compliant),
                window.override_reason,
                window.author,
                window.created_at,
            ),
        ).fetchone()
        return int(row[0])

    window_id = await store.transact(insert)
    stored = dataclasses.replace(window, id=window_id)
    log.info(
        "maintenance scheduled",
        extra={"maintenance": window_id, "compliant": stored.compliant, "author": stored.author},
    )
    return stored


async def list_windows(store: Store, *, now: float, include_past: bool = False) -> list[Window]:
    """Windows by start time: those not over and not cancelled, or (``include_past``) all."""
    if include_past:
        return await store.transact(lambda db: _select(db, "1 = 1"))
    return await store.transact(lambda db: _select(db, "cancelled_at IS NULL AND ends > ?", (now,)))


async def cancel(store: Store, window_id: int, *, now: float, reason: str | None = None) -> Window:
    """Cancel a window that is not over. Its alerts are no longer held; the desk tells the
    people already told about it (a window cancelled before anyone heard of it stays quiet).

    ``reason`` is kept and told.
    """
    why = None if reason is None else _text(reason, "the cancellation reason")

    def write(db: sqlite3.Connection) -> Window:
        found = _select(db, "id = ?", (window_id,))
        if not found:
            raise MaintenanceError(f"there is no maintenance window #{window_id}")
        (window,) = found
        if window.cancelled_at is not None:
            raise MaintenanceError(
                f"maintenance #{window_id} was already cancelled {local_time(window.cancelled_at)}"
            )
        if window.ends <= now:
            raise MaintenanceError(
                f"maintenance #{window_id} is already over (it ended {local_time(window.ends)})"
            )
        db.execute(
            "UPDATE maintenance SET cancelled_at = ?, cancel_reason = ? WHERE id = ?",
            (now, why, window_id),
        )
        return dataclasses.replace(window, cancelled_at=now, cancel_reason=why)

    cancelled = await store.transact(write)
    log.info("maintenance cancelled", extra={"maintenance": window_id})
    return cancelled


# ----- notices -----------------------------------------------------------------------------------

_WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "portal": "toàn bộ Cổng Dịch vụ công quốc gia (mọi hệ thống)",
        "portal_short": "toàn cổng",
        "agency": "mọi hệ thống của {agency} ({ref})",
        "system": "{system} của {agency} ({ref})",
        "subject_scheduled": "[NPSP] Lịch bảo trì #{id}: {when}",
        "subject_started": "[NPSP] Bắt đầu bảo trì #{id} (đến {ends})",
        "subject_ended": "[NPSP] Kết thúc bảo trì #{id}",
        "subject_cancelled": "[NPSP] Hủy bảo trì #{id}",
        "lead_scheduled": "Đã lên lịch bảo trì #{id}.",
        "lead_started": "Bảo trì #{id} đã bắt đầu lúc {starts}; dự kiến kết thúc lúc {ends}.",
        "lead_ended": "Bảo trì #{id} đã kết thúc lúc {ends}.",
        "lead_cancelled": "Bảo trì #{id} ({when}) đã bị hủy lúc {at}.",
        "lead_stopped": "Bảo trì #{id} đã dừng sớm lúc {at} (dự kiến đến {ends}).",
        "muted": "Trong thời gian bảo trì, cảnh báo mất kết nối của các hệ thống này tạm dừng.",
        "resumed": (
            "Cảnh báo mất kết nối hoạt động trở lại: hệ thống nào vẫn mất kết nối sẽ được báo."
        ),
        "scope": "Phạm vi",
        "time": "Thời gian",
        "reason": "Lý do",
        "cancel_reason": "Lý do hủy",
        "notice": "Thông báo trước {n} ngày làm việc (yêu cầu ít nhất {required}; {source}).",
        "late": (
            "THÔNG BÁO MUỘN: chỉ trước {n} ngày làm việc, ít hơn {required} ngày làm việc "
            "theo quy định ({source}). Lý do vẫn thực hiện: {override}"
        ),
        "sms_scheduled": "NPSP: lịch bảo trì #{id} {scope} {when}{late}",
        "sms_late": " (BÁO MUỘN)",
        "sms_started": "NPSP: bắt đầu bảo trì #{id} {scope} đến {ends}; tạm dừng cảnh báo",
        "sms_ended": "NPSP: kết thúc bảo trì #{id} {scope}; cảnh báo hoạt động lại",
        "sms_cancelled": "NPSP: hủy bảo trì #{id} {scope} ({when})",
    },
    "en": {
        "portal": "the whole National Public Service Portal (every system)",
        "portal_short": "whole portal",
        "agency": "every system of {agency} ({ref})",
        "system": "{system} of {agency} ({ref})",
        "subject_scheduled": "[NPSP] Maintenance #{id} scheduled: {when}",
        "subject_started": "[NPSP] Maintenance #{id} started (until {ends})",
        "subject_ended": "[NPSP] Maintenance #{id} ended",
        "subject_cancelled": "[NPSP] Maintenance #{id} cancelled",
        "lead_scheduled": "Maintenance #{id} is scheduled.",
        "lead_started": "Maintenance #{id} started at {starts}; it is planned to end at {ends}.",
        "lead_ended": "Maintenance #{id} ended at {ends}.",
        "lead_cancelled": "Maintenance #{id} ({when}) was cancelled at {at}.",
        "lead_stopped": "Maintenance #{id} was stopped early at {at} (planned until {ends}).",
        "muted": "During the maintenance, connection alerts for these systems are held.",
        "resumed": "Connection alerts are back on: any system still down will be reported.",
        "scope": "Scope",
        "time": "Time",
        "reason": "Reason",
        "cancel_reason": "Cancellation reason",
        "notice": "Announced {n} working days ahead (at least {required} required; {source}).",
        "late": (
            "LATE NOTICE: announced only {n} working days ahead, fewer than the {required} "
            "working days required ({source}). Reason for going ahead: {override}"
        ),
        "sms_scheduled": "NPSP: maintenance #{id} {scope} {when}{late}",
        "sms_late": " (LATE NOTICE)",
        "sms_started": "NPSP: maintenance #{id} {scope} started, until {ends}; alerts held",
        "sms_ended": "NPSP: maintenance #{id} {scope} ended; alerts back on",
        "sms_cancelled": "NPSP: maintenance #{id} {scope} ({when}) cancelled",
    },
}


def _span(starts: float, ends: float) -> str:
    """``20:00–22:00 15/12/2026``, or both moments in full when the days differ."""
    a, b = local_time(starts), local_time(ends)
    if a[6:] == b[6:]:
        return f"{a[:5]}–{b}"
    return f"{a} – {b}"


def _scope_lines(window: Window, registry: Registry, lang: str) -> list[str]:
    w = _WORDS[lang]
    if window.portal_wide:
        return [w["portal"]]
    agencies = {e.agency.id: e.agency for e in registry.systems.values()}
    lines = []
    for ref in window.scope:
        agency_id = ref.partition("/")[0]
        agency = agencies.get(agency_id)
        agency_name = (
            agency_id if agency is None else (agency.name_vi if lang == "vi" else agency.name_en)
        )
        entry = registry.systems.get(ref)
        if "/" not in ref:
            lines.append(w["agency"].format(agency=agency_name, ref=ref))
        else:
            system = ref if entry is None else entry.system.name
            if entry is not None and lang == "en" and entry.system.name_en:
                system = entry.system.name_en
            lines.append(w["system"].format(system=system, agency=agency_name, ref=ref))
    return lines


def _scope_short(window: Window, lang: str) -> str:
    if window.portal_wide:
        return _WORDS[lang]["portal_short"]
    first, more = window.scope[0], len(window.scope) - 1
    return first if not more else f"{first} +{more}"


def notice_for(window: Window, kind: NoticeKind, registry: Registry, rule: Rule) -> Notice:
    """The notice of one event of a window, in Vietnamese and English."""
    subject, text, sms = {}, {}, {}
    when = _span(window.starts, window.ends)
    for lang, w in _WORDS.items():
        values = {
            "id": window.id,
            "when": when,
            "starts": local_time(window.starts),
            "ends": local_time(window.ends),
            "at": local_time(window.cancelled_at or window.ends),
            "scope": _scope_short(window, lang),
        }
        lines = []
        if kind == "cancelled":
            stopped = window.cancelled_at is not None and window.cancelled_at > window.starts
            lines.append(w["lead_stopped" if stopped else "lead_cancelled"].format(**values))
            if stopped:
                lines.append(w["resumed"])
        else:
            lines.append(w[f"lead_{kind}"].format(**values))
            lines.append(w["resumed" if kind == "ended" else "muted"])
        lines.append("")
        lines.append(f"{w['scope']}:")
        lines += [f"- {line}" for line in _scope_lines(window, registry, lang)]
        lines.append(f"{w['time']}: {when}")
        lines.append(f"{w['reason']}: {window.reason}")
        if kind == "cancelled" and window.cancel_reason:
            lines.append(f"{w['cancel_reason']}: {window.cancel_reason}")
        rule_values = {"n": window.working_days, "required": window.required, "source": rule.source}
        if window.compliant:
            lines.append(w["notice"].format(**rule_values))
        else:
            override = window.override_reason or "—"
            lines.append(w["late"].format(**rule_values, override=override))
        subject[lang] = w[f"subject_{kind}"].format(**values)
        text[lang] = "\n".join(lines)
        late = w["sms_late"] if kind == "scheduled" and not window.compliant else ""
        sms[lang] = w[f"sms_{kind}"].format(**values, late=late)
    return Notice(
        key=f"maintenance/{window.id}/{kind}",
        subject=subject,
        text=text,
        sms=sms,
        thread_key=f"maintenance/{window.id}",
    )


def audience(window: Window, registry: Registry) -> list[Audience]:
    """Who hears of a window: the technical and high-level admins of each agency in scope and
    operations; for the whole portal, operations and every agency's technical admins."""
    operations: Audience = ("", "operations")
    if window.portal_wide:
        agencies = sorted({e.agency.id for e in registry.systems.values()})
        return [operations, *everyone(agencies, "technical-admins")]
    agencies = [ref.partition("/")[0] for ref in window.scope]
    return [*everyone(agencies, "technical-admins", "high-level-admins"), operations]


class MaintenanceDesk:
    """Tells people about windows and holds the alerts of covered systems inside them.

    A :class:`~monitor.rules.desk.Desk` (driven by :func:`~monitor.rules.desk.run_desks`) and
    a :class:`~monitor.alerting.mute.Muter` (one of the alert pipeline's muters). It keeps in
    memory the windows still owed a notice; :meth:`mutes` reads only that.
    """

    def __init__(self, ctx: RulesContext) -> None:
        self.ctx = ctx
        self.windows: dict[int, Window] = {}

    async def refresh(self) -> None:
        # Skipped: windows finished with, and those cancelled before anyone heard of them.
        self.windows = {
            w.id: w
            for w in await self.ctx.store.transact(
                lambda db: _select(
                    db,
                    "notified_ended IS NULL"
                    " AND (cancelled_at IS NULL OR notified_scheduled IS NOT NULL)",
                )
            )
        }

    def mutes(self, alert: Alert, now: float) -> str | None:
        return self.covering(alert.agency, alert.system, now)

    def covering(self, agency: str, system: str, now: float) -> str | None:
        """Why a system is under maintenance at ``now`` ("maintenance #3: …"), or None."""
        for window in self.windows.values():
            if window.mutes_at(now) and window.covers(agency, system):
                return f"maintenance #{window.id}: {window.reason}"
        return None

    def covered(self, now: float) -> dict[str, Why]:
        """Every system inside a window at ``now`` (key → why), for the state machine."""
        active = sorted(
            (w for w in self.windows.values() if w.mutes_at(now)), key=lambda w: (w.starts, w.id)
        )
        if not active:
            return {}
        out: dict[str, Why] = {}
        for key, entry in self.ctx.registry().systems.items():
            # Overlapping windows: it is in maintenance until the last of them ends.
            ends = [w.ends for w in active if w.covers(entry.agency.id, entry.system.id)]
            if ends:
                out[key] = Why("system.maintenance", {"until": max(ends)})
        return out

    async def tick(self, now: float) -> None:
        for window in sorted(self.windows.values(), key=lambda w: (w.starts, w.id)):
            if not _due(window, now):
                continue
            try:
                await self._advance(window, now)
            except Exception:
                # One window's trouble (a locked database) must not hold the others' notices.
                log.exception("maintenance #%d: cannot send its notices; retrying", window.id)

    async def _advance(self, window: Window, now: float) -> None:
        """Send what is owed, in order; a window missed while the daemon was down gets all."""
        if window.notified_scheduled is None:
            window, marked = await self._tell(window, "scheduled", now)
            if marked and not window.compliant:
                self.ctx.count("maintenance_late")
        if window.cancelled_at is not None:
            await self._tell(window, "cancelled", now)
            return
        if now >= window.starts and window.notified_started is None:
            window, _ = await self._tell(window, "started", now)
        if now >= window.ends:
            await self._tell(window, "ended", now)

    async def _tell(self, window: Window, kind: NoticeKind, now: float) -> tuple[Window, bool]:
        """Queue one notice, then record it; return the window updated and whether this desk
        recorded it (False when another process did first)."""
        notice = notice_for(window, kind, self.ctx.registry(), self.ctx.rules.maintenance_notice)
        queued = await self.ctx.notices.send_notice(notice, audience(window, self.ctx.registry()))
        column = "notified_ended" if kind in ("ended", "cancelled") else f"notified_{kind}"
        marked = await self.ctx.store.transact(
            lambda db: (
                db.execute(
                    f"UPDATE maintenance SET {column} = ? WHERE id = ? AND {column} IS NULL",  # noqa: S608 - column from a fixed set
                    (now, window.id),
                ).rowcount
                == 1
            )
        )
        log.info(
            "maintenance notice",
            extra={"maintenance": window.id, "notice": kind, "queued": queued},
        )
        if column == "notified_ended":
            self.windows.pop(window.id, None)
            return dataclasses.replace(window, notified_ended=now), marked
        if kind == "scheduled":
            window = dataclasses.replace(window, notified_scheduled=now)
        else:
            window = dataclasses.replace(window, notified_started=now)
        self.windows[window.id] = window
        return window, marked


def _due(window: Window, now: float) -> bool:
    return (
        window.notified_scheduled is None
        or window.cancelled_at is not None
        or (now >= window.starts and window.notified_started is None)
        or now >= window.ends
    )
