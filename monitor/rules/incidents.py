"""Incidents and their SLA clock (QĐ 31/2021/QĐ-TTg, Điều 52 khoản 1).

An incident is opened

* **automatically** (source ``outage``) when a system goes DOWN or FLAPPING, with the alert
  pipeline's incident id ``agency/system@<epoch of the failure>``, so that acknowledging it here
  stops the pipeline's escalation (:meth:`IncidentDesk.acknowledged`). FLAPPING counts because the
  pipeline pages it too: every paged outage has an incident someone can take charge of.
  UNREACHABLE does not open one (its parent's incident covers it), and the gateway's own uplink
  is not an agency's incident. When the system is UP again the incident is resolved by
  ``system`` ("connection restored"). A secure server must be connected 24/7: an outage has **no
  working-hours due time** and no SLA reminders; it escalates on wall-clock time
  (``alerting.escalation``, :mod:`monitor.alerting.escalation`), and each step taken is recorded
  on it (:meth:`IncidentDesk.escalated`: ``escalation_step``, ``escalated_to``,
  ``escalated_at``), which is what the pages, the API and the command line show instead;
* **by hand** (source ``request``, ids ``req-1``, ``req-2``…) for a support request (QĐ 31/2021,
  Chương VII, D.1), from the command line or the API. Only a person resolves those. A request
  carries when it was **received** (``received_at``: it may precede when it was entered, never
  the entry itself), and may be **complex**, with the **expected completion** time published
  for it (required for a complex request, not before it was received).

The SLA clock of a request runs in working hours of the agency (8 by default,
``calendar.rules.incident_sla``) from the moment it was received; the due time is fixed when it
is opened. A complex request is due at its published expected completion time instead (the
regulation's exception for requests that cannot be handled in 8 working hours). Acknowledging
does not stop the clock (the SLA is about handling, i.e. resolving), but reminders say who took
charge. Reminders go out once each (the ``reminded`` column goes 0 → 50 → 100):

* at 50 % of the SLA, to the agency's technical admins;
* at 100 %, the breach: to the technical and high-level admins and to the operations team, and
  ``npsp_incident_sla_breaches_total`` counts it (``breached_at`` is when the daemon saw it).

A reminder that fell due while the daemon was stopped goes out at the next tick. If the breach is
already due by then, only the breach notice is sent (it reaches the technical admins too and
says everything the 50 % one would have); a stale "half the time is left" would be false. An
incident resolved late while the daemon was stopped is still counted as a breach, without a
notice (nobody needs an escalation of something already handled).

Notices are sent before the row is marked, under keys derived from the incident
(``incident/<id>/sla-50``): a crash in between re-queues the same key, which the outbox ignores.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from npsp_common.types import plain_line, plain_text

from ..alerting.messages import local_time
from ..alerting.notices import Audience, Notice, everyone
from ..registry import Registry
from ..state import GATEWAY_AGENCY, Event, State
from ..store import Store, StoredState
from ..workdays import WorkCalendar
from .desk import RulesContext

__all__ = [
    "BREACH_COUNTER",
    "OUTAGE",
    "REQUEST",
    "Incident",
    "IncidentDesk",
    "IncidentError",
    "acknowledge",
    "get_incident",
    "list_incidents",
    "open_incident",
    "outage_id",
    "resolve",
]

log = logging.getLogger(__name__)

MAX_TEXT = 2000  # characters of a summary, a resolution or a name given from outside
OUTAGE = "outage"
REQUEST = "request"

BREACH_COUNTER = "incident_sla_breaches"
_FIRING = (State.DOWN, State.FLAPPING)  # what the alert pipeline pages, hence what opens one
# Reachable again (slow or not): an outage is over, whatever warning remains.
_RECOVERED = (State.UP, State.DEGRADED)
_COLUMNS = (
    "id, agency, system, source, summary, opened_at, due_at, acknowledged_at, acknowledged_by,"
    " resolved_at, resolved_by, resolution, reminded, breached_at, received_at, complex,"
    " expected_completion, escalation_step, escalated_to, escalated_at"
)
NO_DUE = float("inf")  # an outage's due_at: it escalates on wall-clock time instead


class IncidentError(Exception):
    """An incident action that cannot be done (unknown id, already resolved, unknown agency…).

    The command line prints it on one line and exits with status 2.
    """


@dataclass(slots=True)
class Incident:
    """One row of the ``incidents`` table (times are epoch seconds)."""

    id: str
    agency: str
    system: str | None
    source: str
    summary: str
    opened_at: float
    due_at: float
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    reminded: int = 0
    breached_at: float | None = None
    received_at: float | None = None  # a request: when it was received (the SLA counts from it)
    complex: bool = False  # a request that cannot be handled within the SLA
    expected_completion: float | None = None  # published for a complex request; its due time
    escalation_step: int = 0  # an outage: the last step of the ladder taken (0: none)
    escalated_to: str | None = None  # ... and to whom
    escalated_at: float | None = None  # ... and when

    @property
    def received(self) -> float:
        """When the clock of this incident starts: a request's receipt, an outage's start."""
        return self.received_at if self.received_at is not None else self.opened_at

    @property
    def key(self) -> str:
        """``agency/system``, or the agency alone when no system is concerned."""
        return f"{self.agency}/{self.system}" if self.system else self.agency

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def outage_id(agency: str, system: str, since: float) -> str:
    """The alert pipeline's incident id of an outage that began at ``since``."""
    return f"{agency}/{system}@{int(since)}"


# ----- store functions (each runs in one transaction on the store's thread) ---------------------


def _row(row: tuple[Any, ...]) -> Incident:
    incident = Incident(*row)
    incident.complex = bool(incident.complex)
    return incident


def _get(db: sqlite3.Connection, incident_id: str) -> Incident | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM incidents WHERE id = ?", (incident_id,)).fetchone()  # noqa: S608
    return None if row is None else _row(row)


def _must_get(db: sqlite3.Connection, incident_id: str) -> Incident:
    incident = _get(db, incident_id)
    if incident is None:
        raise IncidentError(f"unknown incident {incident_id!r} (see `npsp-monitor incident list`)")
    return incident


def _insert(db: sqlite3.Connection, incident: Incident) -> None:
    """Insert unless the id exists (an outage seen again after a restart keeps its row)."""
    db.execute(
        "INSERT INTO incidents (id, agency, system, source, summary, opened_at, due_at,"
        " received_at, complex, expected_completion)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (
            incident.id,
            incident.agency,
            incident.system,
            incident.source,
            incident.summary,
            incident.opened_at,
            incident.due_at,
            incident.received_at,
            int(incident.complex),
            incident.expected_completion,
        ),
    )


def _next_request_id(db: sqlite3.Connection) -> str:
    numbers = [
        int(suffix)
        for (ident,) in db.execute("SELECT id FROM incidents WHERE source = ?", (REQUEST,))
        if (suffix := str(ident).removeprefix("req-")).isdigit()
    ]
    return f"req-{max(numbers, default=0) + 1}"


def _resolve_when_by(incident: Incident) -> str:
    at = local_time(incident.resolved_at) if incident.resolved_at is not None else "?"
    return f"at {at} by {incident.resolved_by}"


def _text(value: str, what: str, *, lines: bool = True) -> str:
    """``value`` stripped, if it is text a person wrote: not empty, at most
    :data:`MAX_TEXT` characters, no control characters (line feeds and tabs in ``lines``)."""
    value = value.strip()
    if not value:
        raise IncidentError(f"{what} must not be empty")
    if len(value) > MAX_TEXT:
        raise IncidentError(f"{what} is longer than {MAX_TEXT} characters")
    try:
        (plain_text if lines else plain_line)(value)
    except ValueError as exc:
        raise IncidentError(f"{what} {exc}") from None
    return value


def _check_received(received: float, now: float) -> None:
    if received > now:
        raise IncidentError(
            f"the request cannot have been received in the future ({local_time(received)});"
            f" it is {local_time(now)} now"
        )


def _check_expected(calendar: WorkCalendar, agency: str, expected: float, received: float) -> None:
    if expected < received:
        raise IncidentError(
            f"the expected completion time ({local_time(expected)}) is before the request"
            f" was received ({local_time(received)})"
        )
    try:  # the reminders measure this interval in working hours
        calendar.working_hours_between(received, expected, agency)
    except (ValueError, OverflowError) as exc:
        raise IncidentError(f"cannot use that expected completion time: {exc}") from None


async def open_incident(
    store: Store,
    registry: Registry,
    calendar: WorkCalendar,
    *,
    agency: str,
    summary: str,
    now: float,
    system: str | None = None,
    received_at: float | None = None,
    is_complex: bool = False,
    expected_completion: float | None = None,
) -> Incident:
    """Open a support request for ``agency`` (optionally about one of its systems), entered at
    ``now`` and received at ``received_at`` (default: ``now``; never later).

    Its id is ``req-<n>``, one more than the highest so far (the store's write lock makes two
    command lines opening at once get different numbers). The SLA is due ``incident_sla``
    working hours after it was received, in the agency's working hours; a complex request
    (``is_complex``) needs its published ``expected_completion``, which is then its due time.
    """
    summary = _text(summary, "the summary")
    received = now if received_at is None else received_at
    _check_received(received, now)
    if is_complex and expected_completion is None:
        raise IncidentError(
            "a complex request needs the expected completion time published for it"
            " (--expected-completion; QĐ 31/2021, Chương VII, D.1)"
        )
    if not is_complex and expected_completion is not None:
        raise IncidentError(
            "only a complex request has a published expected completion time:"
            " mark it complex, or leave the time out (it is then due in the SLA's working hours)"
        )
    if expected_completion is not None:
        _check_expected(calendar, agency, expected_completion, received)
    agencies = {entry.agency.id for entry in registry.systems.values()}
    if agency not in agencies:
        known = ", ".join(sorted(agencies)[:5]) or "none configured"
        raise IncidentError(f"unknown agency {agency!r} (known: {known})")
    if system is not None:
        system = system.removeprefix(f"{agency}/")
        if f"{agency}/{system}" not in registry.systems:
            raise IncidentError(f"agency {agency!r} has no system {system!r}")
    try:  # also for a complex request: its receipt must lie within the calendar's years
        due = calendar.add_working_hours(
            received, calendar.settings.rules.incident_sla.value, agency
        )
    except (ValueError, OverflowError) as exc:
        raise IncidentError(f"cannot compute the SLA due time: {exc}") from None
    if expected_completion is not None:
        due = expected_completion

    def write(db: sqlite3.Connection) -> Incident:
        incident = Incident(
            _next_request_id(db),
            agency,
            system,
            REQUEST,
            summary,
            now,
            due,
            received_at=received,
            complex=is_complex,
            expected_completion=expected_completion,
        )
        _insert(db, incident)
        return incident

    return await store.transact(write)


async def mark_complex(
    store: Store, calendar: WorkCalendar, incident_id: str, expected_completion: float
) -> Incident:
    """Mark an open support request complex, with the expected completion time published for
    it, which becomes its due time (a breach already counted stays counted). Giving a new
    time for a request already complex moves it."""

    def write(db: sqlite3.Connection) -> Incident:
        incident = _must_get(db, incident_id)
        if incident.source != REQUEST:
            raise IncidentError(
                f"incident {incident_id} is an outage, not a support request: an outage"
                " escalates around the clock and has no expected completion time"
            )
        if incident.resolved_at is not None:
            raise IncidentError(
                f"incident {incident_id} is already resolved ({_resolve_when_by(incident)})"
            )
        _check_expected(calendar, incident.agency, expected_completion, incident.received)
        db.execute(
            "UPDATE incidents SET complex = 1, expected_completion = ?, due_at = ? WHERE id = ?",
            (expected_completion, expected_completion, incident_id),
        )
        incident.complex, incident.expected_completion = True, expected_completion
        incident.due_at = expected_completion
        return incident

    return await store.transact(write)


async def acknowledge(store: Store, incident_id: str, by: str, now: float) -> Incident:
    """Record that ``by`` took charge of the incident. Repeating it by the same person is a
    no-op; someone else cannot take over an acknowledged incident silently."""
    by = _text(by, "the name of who acknowledges (--by)", lines=False)

    def write(db: sqlite3.Connection) -> Incident:
        incident = _must_get(db, incident_id)
        if incident.resolved_at is not None:
            raise IncidentError(
                f"incident {incident_id} is already resolved ({_resolve_when_by(incident)}); "
                "nothing to acknowledge"
            )
        if incident.acknowledged_at is not None:
            if incident.acknowledged_by == by:
                return incident
            raise IncidentError(
                f"incident {incident_id} is already acknowledged by {incident.acknowledged_by} "
                f"at {local_time(incident.acknowledged_at)}"
            )
        db.execute(
            "UPDATE incidents SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ?",
            (now, by, incident_id),
        )
        incident.acknowledged_at, incident.acknowledged_by = now, by
        return incident

    return await store.transact(write)


async def resolve(store: Store, incident_id: str, by: str, resolution: str, now: float) -> Incident:
    """Close the incident: its SLA clock stops and no further reminder goes out."""
    by = _text(by, "the name of who resolves (--by)", lines=False)
    resolution = _text(resolution, "the resolution")

    def write(db: sqlite3.Connection) -> Incident:
        incident = _must_get(db, incident_id)
        if incident.resolved_at is not None:
            raise IncidentError(
                f"incident {incident_id} is already resolved ({_resolve_when_by(incident)})"
            )
        db.execute(
            "UPDATE incidents SET resolved_at = ?, resolved_by = ?, resolution = ? WHERE id = ?",
            (now, by, resolution, incident_id),
        )
        incident.resolved_at, incident.resolved_by, incident.resolution = now, by, resolution
        return incident

    return await store.transact(write)


async def get_incident(store: Store, incident_id: str) -> Incident | None:
    return await store.transact(lambda db: _get(db, incident_id))


async def list_incidents(
    store: Store,
    *,
    open_only: bool = True,
    agency: str | None = None,
    system: str | None = None,
    limit: int | None = None,
) -> list[Incident]:
    """Incidents, oldest first; only the unresolved ones unless ``open_only`` is false;
    optionally of one agency or system, and only the ``limit`` most recent."""
    where, args = [], []
    if open_only:
        where.append("resolved_at IS NULL")
    if agency is not None:
        where.append("agency = ?")
        args.append(agency)
    if system is not None:
        where.append("system = ?")
        args.append(system)
    sql = f"SELECT {_COLUMNS} FROM incidents"  # noqa: S608 - constant columns; values are bound
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY opened_at DESC, id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = await store.transact(lambda db: [_row(r) for r in db.execute(sql, args)])
    return rows[::-1]


# ----- the desk ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Open:
    id: str
    agency: str
    system: str
    opened_at: float
    summary: str


@dataclass(frozen=True, slots=True)
class _Restored:
    agency: str
    system: str
    at: float


@dataclass(frozen=True, slots=True)
class _Escalated:
    id: str
    step: int
    to: str
    at: float


_Op = _Open | _Restored | _Escalated

_RESOLUTION = "connection restored"
# Every open outage incident of the system up to the recovery: also strays left by an earlier
# crash, so that none waits forever for a recovery already seen.
_SELECT_OUTAGES = (
    "SELECT id FROM incidents WHERE agency = ? AND system = ? AND source = ?"
    " AND resolved_at IS NULL AND opened_at <= ?"
)
_RESOLVE_OUTAGES = (
    "UPDATE incidents SET resolved_at = ?, resolved_by = 'system', resolution = ?"
    " WHERE agency = ? AND system = ? AND source = ? AND resolved_at IS NULL AND opened_at <= ?"
)
# A step of the ladder is recorded once (a restart that takes it again keeps the first time).
_ESCALATED = (
    "UPDATE incidents SET escalation_step = ?, escalated_to = ?, escalated_at = ?"
    " WHERE id = ? AND escalation_step < ?"
)


class IncidentDesk:
    """Opens and resolves outage incidents, runs every open incident's SLA clock.

    Plugs in three ways: :meth:`on_events` is an engine subscriber, :meth:`acknowledged` and
    :meth:`escalated` make it the alert pipeline's ``acks``
    (:class:`monitor.alerting.escalation.Acknowledgements`), and
    :meth:`refresh` / :meth:`tick` make it a :class:`monitor.rules.desk.Desk`. Call
    :meth:`restore` once at start-up, before subscribing it to the engine.
    """

    def __init__(
        self,
        ctx: RulesContext,
        *,
        maintenance: Callable[[str, str, float], str | None] | None = None,
    ) -> None:
        self.ctx = ctx
        # Why a system is under planned maintenance now, or None: an outage inside a window is
        # expected, not an incident; one still going on when the window ends becomes one then.
        self.maintenance = maintenance or (lambda _agency, _system, _now: None)
        self._deferred: dict[str, Event] = {}
        # Unresolved incidents, plus resolved ones that are still a system's current outage
        # (a person closed it while the system is down: the pipeline must not escalate it).
        self._incidents: dict[str, Incident] = {}
        # System key → id of its ongoing outage's incident, set and cleared exactly when the
        # alert pipeline creates and drops its alert, so the two ids stay the same.
        self._outages: dict[str, str] = {}
        self._queue: list[_Op] = []
        self._half: dict[tuple[str, float], float] = {}  # (id, due) → 50 % of the SLA
        self._loaded = False
        self._stale = True  # until a refresh succeeds (a failed one is retried by the tick)

    # ----- Acknowledgements ---------------------------------------------------------------------

    def acknowledged(self, incident: str) -> bool:
        """Whether someone took charge of (or closed) the incident; from memory, no I/O.

        An unknown id of the form ``agency/system@t`` falls back to that system's current
        outage: after a restart the pipeline rebuilds its id from the stored state's ``since``,
        which moves if the system went DOWN → UNREACHABLE → DOWN meanwhile.
        """
        found = self._incidents.get(self._outage_of(incident))
        return found is not None and (
            found.acknowledged_at is not None or found.resolved_at is not None
        )

    def escalated(self, incident: str, step: int, target: str, at: float) -> None:
        """The pipeline took step ``step`` of the ladder, to ``target``: record it on the
        incident (written at the next flush; no I/O here)."""
        ident = self._outage_of(incident)
        found = self._incidents.get(ident)
        if found is not None and found.escalation_step < step:
            found.escalation_step, found.escalated_to, found.escalated_at = step, target, at
        self._queue.append(_Escalated(ident, step, target, at))

    def steps_taken(self, incident: str) -> tuple[int, float | None]:
        """The last escalation step recorded on the incident (0: none) and when it was
        opened (the outage began); from memory."""
        found = self._incidents.get(self._outage_of(incident))
        return (0, None) if found is None else (found.escalation_step, found.opened_at)

    def _outage_of(self, incident: str) -> str:
        """The id of the pipeline's incident here: itself when known, else (after a restart
        moved the pipeline's id) that system's current outage."""
        if incident in self._incidents:
            return incident
        return self._outages.get(incident.rpartition("@")[0], incident)

    # ----- events in (synchronous and cheap: the database is written in tick) -----------------

    def on_events(self, events: list[Event]) -> None:
        """Engine subscriber: queue an incident for each new outage, a resolution for each
        recovery."""
        systems = self.ctx.registry().systems
        for event in events:
            if event.agency == GATEWAY_AGENCY:
                continue
            key = f"{event.agency}/{event.system}"
            if event.new in _FIRING:
                if key in self._outages or key not in systems:
                    continue
                if self.maintenance(event.agency, event.system, event.time) is not None:
                    self._deferred.setdefault(key, event)
                    continue
                incident_id = outage_id(event.agency, event.system, event.time)
                self._outages[key] = incident_id
                summary = f"{key} {event.new.value}: {event.reason}"
                self._queue.append(
                    _Open(incident_id, event.agency, event.system, event.time, summary)
                )
            elif event.new in _RECOVERED and self._deferred.pop(key, None) is not None:
                continue  # recovered inside the window: never an incident
            elif event.new in _RECOVERED and (ended := self._outages.pop(key, None)) is not None:
                self._queue.append(_Restored(event.agency, event.system, event.time))
                closed = self._incidents.get(ended)
                if closed is not None and not closed.open:  # closed by a person: forget it
                    del self._incidents[ended]

    async def restore(self, states: Mapping[str, StoredState]) -> None:
        """At start-up, from the systems' stored states: open the incident of an outage whose
        incident was never written (the daemon stopped in between), and resolve those of
        systems that came back while the daemon was not listening."""
        await self.refresh()
        systems = self.ctx.registry().systems
        for key, stored in states.items():
            agency, _, system = key.partition("/")
            if agency == GATEWAY_AGENCY or key not in systems:
                continue
            if stored.state in _FIRING and key not in self._outages:
                # If a person already closed this outage's incident, the insert keeps their row.
                incident_id = outage_id(agency, system, stored.since)
                self._outages[key] = incident_id
                summary = f"{key} {stored.state.value}: {stored.reason}"
                self._queue.append(_Open(incident_id, agency, system, stored.since, summary))
            elif stored.state in _RECOVERED and self._outages.pop(key, None) is not None:
                self._queue.append(_Restored(agency, system, stored.since))
        await self.flush()

    # ----- Desk --------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Re-read the incidents: the command line opened, acknowledged or resolved some."""
        self._stale = True
        await self.flush()
        current = set(self._outages.values())

        def read(db: sqlite3.Connection) -> tuple[list[Incident], int]:
            rows = [
                _row(r)
                for r in db.execute(
                    f"SELECT {_COLUMNS} FROM incidents WHERE resolved_at IS NULL"  # noqa: S608
                    " ORDER BY opened_at, id"
                )
            ]
            seen = {i.id for i in rows}
            rows += [i for x in sorted(current - seen) if (i := _get(db, x)) is not None]
            return rows, self._mark_late(db)

        rows, late = await self.ctx.store.transact(read)
        self._count(late)
        self._incidents = {i.id: i for i in rows}
        self._half = {k: v for k, v in self._half.items() if k[0] in self._incidents}
        if not self._loaded:
            self._loaded = True
            latest: dict[str, str] = {}
            for i in rows:
                if i.source == OUTAGE and i.open and i.system:
                    latest[i.key] = i.id  # oldest first: the newest outage wins
            for key, incident_id in latest.items():
                self._outages.setdefault(key, incident_id)
        self._stale = False

    async def tick(self, now: float) -> None:
        """Write queued outage changes, then send the SLA reminders that are due."""
        if self._stale:
            await self.refresh()
        for key, event in list(self._deferred.items()):
            if self.maintenance(event.agency, event.system, now) is None:
                # The window is over and the system is still down: the incident (with the
                # alert's id) starts now, and so does its SLA clock.
                del self._deferred[key]
                incident_id = outage_id(event.agency, event.system, event.time)
                self._outages[key] = incident_id
                summary = f"{key} {event.new.value} after maintenance: {event.reason}"
                self._queue.append(_Open(incident_id, event.agency, event.system, now, summary))
        await self.flush()
        due: list[tuple[Incident, int]] = []
        for incident in list(self._incidents.values()):
            if not incident.open or incident.reminded >= 100:
                continue
            try:
                found = await self._due_reminder(incident, now)
            except Exception:
                log.exception("SLA reminder of incident %s failed; retrying", incident.id)
                continue
            if found is not None:
                due.append(found)
        if due:
            await self._send_reminders(due, now)

    # ----- internals ----------------------------------------------------------------------------

    def _count(self, breaches: int) -> None:
        for _ in range(breaches):
            self.ctx.count(BREACH_COUNTER)

    def _mark_late(self, db: sqlite3.Connection) -> int:
        """Mark incidents resolved after their due time that no tick saw breach (the daemon
        was stopped); return how many, for the breach counter."""
        now = self.ctx.clock()
        late = [
            ident
            for (ident,) in db.execute(
                "SELECT id FROM incidents"
                " WHERE breached_at IS NULL AND resolved_at IS NOT NULL AND resolved_at > due_at"
            )
        ]
        db.executemany(
            "UPDATE incidents SET breached_at = ?, reminded = 100 WHERE id = ?",
            [(now, ident) for ident in late],
        )
        return len(late)

    async def flush(self) -> None:
        """Persist the queued openings and resolutions (on failure they wait for the next try).

        Every tick does it; the daemon calls it once more at shutdown, after the engine's last
        events."""
        if not self._queue:
            return
        ops, self._queue = self._queue, []
        # An outage has no working-hours due time: it escalates on wall-clock time.
        by_id = {
            op.id: Incident(op.id, op.agency, op.system, OUTAGE, op.summary, op.opened_at, NO_DUE)
            for op in ops
            if isinstance(op, _Open)
        }

        def write(db: sqlite3.Connection) -> tuple[list[Incident], int]:
            touched: list[str] = []
            for op in ops:
                if isinstance(op, _Open):
                    _insert(db, by_id[op.id])
                    touched.append(op.id)
                    continue
                if isinstance(op, _Escalated):
                    db.execute(_ESCALATED, (op.step, op.to, op.at, op.id, op.step))
                    touched.append(op.id)
                    continue
                args = (op.agency, op.system, OUTAGE, op.at)
                touched += [r[0] for r in db.execute(_SELECT_OUTAGES, args)]
                db.execute(_RESOLVE_OUTAGES, (op.at, _RESOLUTION, *args))
            rows = [i for x in dict.fromkeys(touched) if (i := _get(db, x)) is not None]
            return rows, self._mark_late(db)

        try:
            rows, late = await self.ctx.store.transact(write)
        except Exception:
            self._queue[:0] = ops
            raise
        self._count(late)
        current = set(self._outages.values())
        for incident in rows:
            if incident.open or incident.id in current:
                self._incidents[incident.id] = incident
            else:
                self._incidents.pop(incident.id, None)

    def _half_at(self, incident: Incident) -> float:
        key = (incident.id, incident.due_at)  # a request marked complex later has a new due
        half = self._half.get(key)
        if half is None:
            sla = self._sla_hours(incident)
            half = self.ctx.calendar.add_working_hours(incident.received, sla / 2, incident.agency)
            self._half[key] = half
        return half

    def _sla_hours(self, incident: Incident) -> float:
        """The working hours from receipt to the due time this request was given (the rule
        may have changed since; a complex one's ends at its expected completion)."""
        if incident.due_at == NO_DUE:
            return NO_DUE
        return self.ctx.calendar.working_hours_between(
            incident.received, incident.due_at, incident.agency
        )

    async def _due_reminder(self, incident: Incident, now: float) -> tuple[Incident, int] | None:
        """The incident (as the database has it now) and the reminder level due, if any."""
        if incident.source != REQUEST or incident.due_at == NO_DUE:
            return None  # an outage escalates on wall-clock time instead (the pipeline)
        if now >= incident.due_at:
            level = 100
        elif incident.reminded < 50 and now >= self._half_at(incident):
            level = 50
        else:
            return None

        def check(db: sqlite3.Connection) -> Incident | None:
            return _get(db, incident.id)

        # The command line may have resolved it since the last refresh: the database decides.
        fresh = await self.ctx.store.transact(check)
        if fresh is None or not fresh.open or fresh.reminded >= level:
            if fresh is not None:
                self._incidents[incident.id] = fresh
            return None
        return fresh, level

    async def _send_reminders(self, due: list[tuple[Incident, int]], now: float) -> None:
        """Send the reminders due in this tick, one message per agency and level rather than
        one per incident: a cut cable that took 40 systems down must not become 40 reminders
        per person (and, at the breach, 40 for the operations team: they get one list)."""
        groups: dict[tuple[str, int], list[Incident]] = {}
        for incident, level in due:
            groups.setdefault((incident.agency, level), []).append(incident)
        breached = [incident for incident, level in due if level == 100]
        ops_apart = len(breached) > 1
        sent: list[tuple[Incident, int]] = []
        for (agency, level), incidents in groups.items():
            try:
                if len(incidents) == 1:
                    notice, audience = self._notice(incidents[0], level, now)
                else:
                    notice, audience = self._digest(agency, level, incidents, now)
                if ops_apart:
                    audience = [a for a in audience if a[1] != "operations"]
                await self.ctx.notices.send_notice(notice, audience)
            except Exception:
                log.exception("SLA reminders of %s failed; retrying", agency)
                continue
            sent += [(i, level) for i in incidents]
        if ops_apart:
            try:
                notice, audience = self._digest("", 100, breached, now)
                await self.ctx.notices.send_notice(notice, [("", "operations")])
            except Exception:
                log.exception("SLA breach list for operations failed; retrying")
                sent = [(i, level) for i, level in sent if level != 100]
        for incident, level in sent:
            try:
                await self._mark_reminded(incident, level, now)
            except Exception:
                log.exception("cannot record the reminder of incident %s", incident.id)

    def _digest(
        self, agency: str, level: int, incidents: list[Incident], now: float
    ) -> tuple[Notice, list[Audience]]:
        """One message about several incidents of one agency (or, with ``agency`` empty, of
        every agency, for operations)."""
        cal = self.ctx.calendar
        incidents = sorted(incidents, key=lambda i: (i.agency, i.due_at, i.id))
        lines = []
        for i in incidents[:200]:
            left = cal.working_hours_between(now, i.due_at, i.agency) if now < i.due_at else 0.0
            what = i.key if i.system else i.agency
            ack = f"; tiếp nhận / ack: {i.acknowledged_by}" if i.acknowledged_by else ""
            lines.append(
                f"- {i.id} ({what}): {i.summary}; hạn / due {local_time(i.due_at)}"
                + (f", {left:.1f} h" if level == 50 else "")
                + ack
            )
        if len(incidents) > 200:
            lines.append(f"… (+{len(incidents) - 200})")
        names = (
            self._names(incidents[0])[0]
            if agency
            else {"vi": "nhiều đơn vị", "en": "several agencies"}
        )
        n = len(incidents)
        if level == 50:
            subject = {
                "vi": f"[NPSP] {n} sự cố của {names['vi']}: đã dùng một nửa thời hạn xử lý",
                "en": f"[NPSP] {n} incidents of {names['en']}: half of the SLA used",
            }
            head = {
                "vi": f"{n} sự cố chưa được xử lý xong đã dùng một nửa thời hạn:",
                "en": f"{n} incidents not resolved yet have used half of their SLA:",
            }
            audience = everyone([agency], "technical-admins")
        else:
            subject = {
                "vi": f"[NPSP] {n} sự cố của {names['vi']} quá hạn xử lý",
                "en": f"[NPSP] {n} incidents of {names['en']} breached their SLA",
            }
            head = {
                "vi": f"{n} sự cố chưa được xử lý xong khi hết thời hạn:",
                "en": f"{n} incidents were not resolved within their SLA:",
            }
            audience = everyone([agency], "technical-admins", "high-level-admins", "operations")
        body = "\n".join(lines)
        state = (
            {"vi": "quá hạn xử lý", "en": "breached their SLA"}
            if level == 100
            else {"vi": "đã dùng nửa thời hạn", "en": "at half SLA"}
        )
        # A short list fits an SMS; a long one is a count and the first few.
        ids_text = ", ".join(i.id for i in incidents[:3]) + (", ..." if n > 3 else "")
        ids = hashlib.sha256("|".join(sorted(i.id for i in incidents)).encode()).hexdigest()[:24]
        notice = Notice(
            key=f"incidents/{agency or 'all'}/sla-{level}/{ids}",
            subject=subject,
            text={lang: f"{head[lang]}\n\n{body}" for lang in ("vi", "en")},
            sms={
                "vi": f"NPSP: {n} sự cố {state['vi']} ({ids_text}).",
                "en": f"NPSP: {n} incidents {state['en']} ({ids_text}).",
            },
        )
        return notice, audience

    async def _mark_reminded(self, incident: Incident, level: int, now: float) -> None:
        store = self.ctx.store
        fresh = incident

        def mark(db: sqlite3.Connection) -> bool:
            if level == 100:
                cursor = db.execute(
                    "UPDATE incidents SET reminded = 100, breached_at = ?"
                    " WHERE id = ? AND breached_at IS NULL",
                    (now, incident.id),
                )
            else:
                cursor = db.execute(
                    "UPDATE incidents SET reminded = ? WHERE id = ? AND reminded < ?",
                    (level, incident.id, level),
                )
            return cursor.rowcount == 1

        first = await store.transact(mark)
        fresh.reminded = level
        if level == 100:
            fresh.breached_at = fresh.breached_at or now
            if first:
                self._count(1)
        self._incidents[incident.id] = fresh
        log.info(
            "incident SLA %s",
            "breached" if level == 100 else "half used",
            extra={"incident": incident.id, "agency": incident.agency},
        )

    # ----- texts -------------------------------------------------------------------------------

    def _names(self, incident: Incident) -> tuple[dict[str, str], str]:
        """The agency's names by language, and the system concerned (name and id)."""
        names = {"vi": incident.agency, "en": incident.agency}
        registry = self.ctx.registry()
        for entry in registry.systems.values():
            if entry.agency.id == incident.agency:
                names = {"vi": entry.agency.name_vi, "en": entry.agency.name_en}
                break
        system = ""
        if incident.system:
            found = registry.systems.get(incident.key)
            system = f"{found.system.name} ({incident.key})" if found else incident.key
        return names, system

    def _notice(self, incident: Incident, level: int, now: float) -> tuple[Notice, list[Audience]]:
        cal, i = self.ctx.calendar, incident
        names, system = self._names(i)
        sla = self._sla_hours(i)
        left = cal.working_hours_between(now, i.due_at, i.agency) if now < i.due_at else 0.0
        due, received = local_time(i.due_at), local_time(i.received)
        source = self.ctx.rules.incident_sla.source
        if i.complex:
            basis_vi = f"yêu cầu phức tạp: thời gian hoàn thành dự kiến đã công bố, {source}"
            basis_en = f"a complex request: the published expected completion time, {source}"
        else:
            basis_vi = f"{sla:g} giờ làm việc, {source}"
            basis_en = f"{sla:g} working hours, {source}"
        entered_vi = entered_en = ""
        if i.opened_at != i.received:
            entered_vi = f" (nhập lúc {local_time(i.opened_at)})"
            entered_en = f" (entered {local_time(i.opened_at)})"
        acked_vi = acked_en = None
        if i.acknowledged_at is not None:
            at = local_time(i.acknowledged_at)
            acked_vi = f"Đã tiếp nhận: {i.acknowledged_by} lúc {at}."
            acked_en = f"Acknowledged by {i.acknowledged_by} at {at}."
        about_vi = f"Hệ thống: {system}\n" if system else ""
        about_en = f"System: {system}\n" if system else ""
        facts_vi = (
            f"Đơn vị: {names['vi']}\n{about_vi}Nội dung: {i.summary}\n"
            f"Tiếp nhận lúc: {received}{entered_vi}\nHạn xử lý: {due} ({basis_vi})\n"
        )
        facts_en = (
            f"Agency: {names['en']}\n{about_en}Summary: {i.summary}\n"
            f"Received: {received}{entered_en}\nDue: {due} ({basis_en})\n"
        )
        if level == 50:
            subject = {
                "vi": f"[NPSP] Sự cố {i.id}: đã dùng một nửa thời hạn xử lý",
                "en": f"[NPSP] Incident {i.id}: half of the SLA used",
            }
            text = {
                "vi": f"Sự cố {i.id} chưa được xử lý xong; còn {left:.1f} giờ làm việc.\n\n"
                + facts_vi
                + (acked_vi or "Chưa ai tiếp nhận sự cố này."),
                "en": f"Incident {i.id} is not resolved yet; {left:.1f} working hours left.\n\n"
                + facts_en
                + (acked_en or "Nobody has acknowledged it yet."),
            }
            sms = {
                "vi": f"NPSP: sự cố {i.id} còn {left:.1f} giờ làm việc, hạn {due}."
                + (f" Đã tiếp nhận: {i.acknowledged_by}." if acked_vi else " Chưa ai tiếp nhận."),
                "en": f"NPSP: incident {i.id} has {left:.1f} working h left, due {due}."
                + (f" Ack: {i.acknowledged_by}." if acked_en else " Not acknowledged."),
            }
            audience = everyone([i.agency], "technical-admins")
        else:
            subject = {
                "vi": f"[NPSP] Sự cố {i.id} quá hạn xử lý",
                "en": f"[NPSP] Incident {i.id} breached its SLA",
            }
            text = {
                "vi": f"Sự cố {i.id} chưa được xử lý xong khi hết thời hạn; chuyển lên lãnh đạo "
                "đơn vị và bộ phận vận hành (VPCP).\n\n"
                + facts_vi
                + (acked_vi or "Chưa ai tiếp nhận sự cố này."),
                "en": f"Incident {i.id} was not resolved within its SLA; escalated to the "
                "agency's high-level admins and the operations team.\n\n"
                + facts_en
                + (acked_en or "Nobody acknowledged it."),
            }
            sms = {
                "vi": f"NPSP: !! sự cố {i.id} ({i.key}) quá hạn xử lý từ {due}."
                + (f" Đã tiếp nhận: {i.acknowledged_by}." if acked_vi else " Chưa ai tiếp nhận."),
                "en": f"NPSP: !! incident {i.id} ({i.key}) breached its SLA, due {due}."
                + (f" Ack: {i.acknowledged_by}." if acked_en else " Not acknowledged."),
            }
            audience = everyone([i.agency], "technical-admins", "high-level-admins", "operations")
        notice = Notice(
            key=f"incident/{i.id}/sla-{level}",
            subject=subject,
            text=text,
            sms=sms,
            thread_key=f"incident/{i.id}",
        )
        return notice, audience
