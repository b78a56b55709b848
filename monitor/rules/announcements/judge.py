"""The one rule for an announcement, whichever way it came (command line, HTTP API, MQTT):
its dates (:func:`judge_times`) and the system it speaks for, checked against the registry and
the calendar (:func:`examine`). No I/O."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from probes.addresspolicy import AddressPolicy

from ...registry import Registry, SystemEntry
from ...workdays import WorkCalendar
from .model import (
    CLOCK_SKEW,
    MAX_AHEAD,
    MAX_BACKDATED,
    Announcement,
    AnnouncementRejected,
    AnnouncementRequest,
    Changes,
    Timing,
)


def _aware(calendar: WorkCalendar, moment: dt.datetime) -> dt.datetime:
    return calendar.local(moment)


def _shown(moment: dt.datetime) -> str:
    """A moment as people write it: to the minute, or to the second when it has seconds."""
    whole = moment.replace(microsecond=0)
    return whole.isoformat(timespec="minutes") if whole.second == 0 else whole.isoformat()


def judge_times(
    announced_at: dt.datetime | None,
    effective_at: dt.datetime,
    *,
    calendar: WorkCalendar,
    now: float,
) -> Timing:
    """The one rule for an announcement's dates, whichever way it came (command line, HTTP API,
    MQTT): :class:`AnnouncementRejected` with a sentence saying why, or its notice.

    * ``announced_at`` (default: ``now``, when it is recorded) is when the agency gave notice.
      A notice given on paper and recorded later keeps its real date, at most
      :data:`MAX_BACKDATED` (a year) ago; a date later than ``now`` by more than
      :data:`CLOCK_SKEW` (5 minutes, for the sender's clock) is refused.
    * ``effective_at`` comes after ``announced_at``, within :data:`MAX_AHEAD` of it.
    * The notice is counted against the real ``announced_at`` (working days strictly between
      the two days, :meth:`monitor.workdays.WorkCalendar.notice`): at least the rule's
      3 working days is compliant.
    * ``effective_at`` at or before ``now``: the change is already in effect (``in_effect``).
    """
    announced, effective, recorded = _moments(announced_at, effective_at, calendar, now)
    _check_order(announced, effective, recorded, now)
    rule = calendar.settings.rules.secure_server_change_notice
    try:
        notice = calendar.notice(announced, effective)
    except (OverflowError, ValueError) as exc:
        raise AnnouncementRejected(f"The notice cannot be counted: {exc}.") from None
    effective_ts = effective.timestamp()
    return Timing(
        announced_at=announced.timestamp(),
        effective_at=effective_ts,
        working_days=notice.working_days,
        required=rule.value,
        compliant=notice.meets(rule),
        in_effect=effective_ts <= now,
    )


def _moments(
    announced_at: dt.datetime | None,
    effective_at: dt.datetime,
    calendar: WorkCalendar,
    now: float,
) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """The announced, effective and recorded moments in the calendar's zone, or
    :class:`AnnouncementRejected` when one is out of range."""
    try:
        announced = (
            _aware(calendar, announced_at)
            if announced_at is not None
            else dt.datetime.fromtimestamp(now, calendar.tz)
        )
        effective = _aware(calendar, effective_at)
        for moment in (announced, effective):
            moment.timestamp()  # a moment out of range raises here
        recorded = dt.datetime.fromtimestamp(now, calendar.tz)
    except (OverflowError, ValueError):
        raise AnnouncementRejected(
            "A date is out of range: give dates such as 2026-12-14T08:00+07:00."
        ) from None
    return announced, effective, recorded


def _check_order(
    announced: dt.datetime, effective: dt.datetime, recorded: dt.datetime, now: float
) -> None:
    """:class:`AnnouncementRejected` unless the notice was given by now (clock skew aside),
    within a year, and the change takes effect after it, within :data:`MAX_AHEAD`."""
    announced_ts = announced.timestamp()
    if announced_ts > now + CLOCK_SKEW:
        raise AnnouncementRejected(
            f"announced_at {_shown(announced)} is in the future (the monitor's clock says "
            f"{_shown(recorded)}; up to {int(CLOCK_SKEW // 60)} minutes ahead is allowed for "
            "clock differences): give the date the notice was actually given, or leave "
            "announced_at out to use the time it is recorded."
        )
    if announced_ts < now - MAX_BACKDATED.total_seconds():
        raise AnnouncementRejected(
            f"announced_at {_shown(announced)} is more than a year ({MAX_BACKDATED.days} days) "
            "ago: a notice that old is not recorded; announce the change again with today's "
            "date."
        )
    if effective <= announced:
        raise AnnouncementRejected(
            f"effective_at {_shown(effective)} is not after announced_at {_shown(announced)}: "
            "a change takes effect after it is announced."
        )
    if effective - announced > MAX_AHEAD:
        raise AnnouncementRejected(
            f"effective_at {_shown(effective)} is more than {MAX_AHEAD.days} days ahead of "
            "announced_at: announce it nearer the time."
        )


def examine(
    request: AnnouncementRequest,
    agency: str,
    *,
    registry: Registry,
    calendar: WorkCalendar,
    now: float,
    source: str,
) -> Announcement:
    """Check an announcement against the registry and the calendar; compute its notice."""
    entry = _system_of(request, agency, registry)
    problem = _inward(request.changes, registry.address_policy)
    if problem is not None:
        raise AnnouncementRejected(problem)
    times = judge_times(request.announced_at, request.effective_at, calendar=calendar, now=now)
    return Announcement(
        id=0,
        agency=agency,
        system=entry.system.id,
        ref=_ref(request, entry, times),
        announced_at=times.announced_at,
        effective_at=times.effective_at,
        changes=request.changes,
        source=source,
        author=request.author or source,
        working_days=times.working_days,
        required=times.required,
        compliant=times.compliant,
        created_at=now,
    )


def _system_of(request: AnnouncementRequest, agency: str, registry: Registry) -> SystemEntry:
    """The secure server the request speaks for: the one it names, or the agency's only one."""
    systems = [e for e in registry.systems.values() if e.agency.id == agency]
    if not systems:
        raise AnnouncementRejected(f"unknown agency {agency!r}")
    if request.system is None:
        secure = [e for e in systems if e.system.kind == "secure-server"]
        if len(secure) != 1:
            raise AnnouncementRejected(
                f"agency {agency} has {len(secure)} secure servers: name the system"
            )
        entry = secure[0]
    else:
        found = registry.systems.get(f"{agency}/{request.system}")
        if found is None:
            raise AnnouncementRejected(f"agency {agency} has no system {request.system!r}")
        if found.system.kind != "secure-server":
            raise AnnouncementRejected(
                f"{found.key} is a {found.system.kind}, not a secure server: change "
                "announcements are for secure servers only (regulation C.2)"
            )
        entry = found
    return entry


def _ref(request: AnnouncementRequest, entry: SystemEntry, times: Timing) -> str:
    """The sender's ref, or one made of the content."""
    # Without the sender's own ref, the content is the identity: a message delivered twice
    # (MQTT QoS 1) is stored, and alerted, once.
    return (
        request.ref
        or "auto-"
        + hashlib.sha256(
            json.dumps(
                [entry.system.id, times.effective_at, request.changes.model_dump(mode="json")],
                sort_keys=True,
            ).encode()
        ).hexdigest()[:24]
    )


def _inward(changes: Changes, policy: AddressPolicy) -> str | None:
    """Why announced values would point the probes inside the gateway's networks, if they do.
    A host name is judged here only when it always means this host (``localhost``); others are
    judged on every connection, after they are resolved (``probes.addresspolicy``)."""
    if changes.host is not None:
        why = policy.host_refusal(changes.host)
        if why is not None:
            return f"changes.host: {why}"
    for address in changes.addresses or ():
        why = policy.refusal(address)
        if why is not None:
            return f"changes.addresses: {why}"
    return None
