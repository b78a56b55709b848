"""A maintenance window, and the rules about it that need neither the database nor the
network: what a scope may name, how much notice a window had (QĐ 31/2021/QĐ-TTg, Điều 52
khoản 2: at least 5 working days), what it covers and when."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ...alerting.messages import local_time
from ...registry import Registry
from ...state import GATEWAY_AGENCY
from ...workdays import Notice, Rule, WorkCalendar

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


# ----- what a window may be ---------------------------------------------------------------------


def checked_text(value: str, what: str, limit: int = MAX_TEXT) -> str:
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


def _times(
    calendar: WorkCalendar, starts: dt.datetime, ends: dt.datetime, now: float
) -> tuple[float, float]:
    """The window's start and end (epoch seconds), if it ends after it starts, within
    :data:`MAX_DURATION`, and is not over at ``now``."""
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
    return start_ts, end_ts


def _notice(
    calendar: WorkCalendar, rule: Rule, start_ts: float, announced_ts: float, late_ok: bool
) -> tuple[Notice, bool]:
    """The notice a window starting at ``start_ts`` had when announced at ``announced_ts``,
    and whether it meets ``rule``; :class:`LateNotice` if it does not and not ``late_ok``."""
    announced = dt.datetime.fromtimestamp(announced_ts, calendar.tz)
    # A window already under way when announced had no notice at all.
    effective = dt.datetime.fromtimestamp(max(start_ts, announced_ts), calendar.tz)
    try:
        notice = calendar.notice(announced, effective)
        compliant = notice.meets(rule)
        earliest = None if compliant else _earliest_start(calendar, announced, rule)
    except ValueError as exc:
        raise MaintenanceError(f"cannot count the notice: {exc}") from None
    if earliest is not None and not late_ok:
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
    return notice, compliant


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
    reason = checked_text(reason, "the reason")
    author = checked_text(author, "the author", _MAX_AUTHOR)
    override = (
        None if override_reason is None else checked_text(override_reason, "the override reason")
    )
    refs = resolve_scope(registry, scope)
    start_ts, end_ts = _times(calendar, starts, ends, now)
    announced_ts = now if announced_at is None else calendar.local(announced_at).timestamp()
    if announced_ts > now:
        raise MaintenanceError(
            f"the announcement ({local_time(announced_ts)}) cannot be in the future"
        )
    rule = calendar.settings.rules.maintenance_notice
    notice, compliant = _notice(calendar, rule, start_ts, announced_ts, override is not None)
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


def owed(window: Window, now: float) -> bool:
    """Whether a notice of the window is owed at ``now``."""
    return (
        window.notified_scheduled is None
        or window.cancelled_at is not None
        or (now >= window.starts and window.notified_started is None)
        or now >= window.ends
    )
