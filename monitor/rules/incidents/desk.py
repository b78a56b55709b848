"""The incident desk: opens and resolves outage incidents as the engine reports them, runs
every open incident's SLA clock and sends its reminders (see :mod:`monitor.rules.incidents`).

The database is written in :meth:`IncidentDesk.flush`, from a queue filled without I/O by the
engine's events and the alert pipeline's escalation steps."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ...alerting.notices import Audience, Notice
from ...sqldialect import Handle
from ...state import GATEWAY_AGENCY, Event
from ...store import StoredState
from ..desk import RulesContext
from . import notices
from . import store as rows
from .model import (
    BREACH_COUNTER,
    FIRING,
    NO_DUE,
    OUTAGE,
    RECOVERED,
    REQUEST,
    RESOLUTION,
    Incident,
    outage,
    outage_id,
    sla_hours,
)

log = logging.getLogger(__package__)  # the topic's logger, as before the split


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
            if event.new in FIRING:
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
            elif event.new in RECOVERED and self._deferred.pop(key, None) is not None:
                continue  # recovered inside the window: never an incident
            elif event.new in RECOVERED and (ended := self._outages.pop(key, None)) is not None:
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
            if stored.state in FIRING and key not in self._outages:
                # If a person already closed this outage's incident, the insert keeps their row.
                incident_id = outage_id(agency, system, stored.since)
                self._outages[key] = incident_id
                summary = f"{key} {stored.state.value}: {stored.reason}"
                self._queue.append(_Open(incident_id, agency, system, stored.since, summary))
            elif stored.state in RECOVERED and self._outages.pop(key, None) is not None:
                self._queue.append(_Restored(agency, system, stored.since))
        await self.flush()

    # ----- Desk --------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Re-read the incidents: the command line opened, acknowledged or resolved some."""
        self._stale = True
        await self.flush()
        current = set(self._outages.values())

        def read(db: Handle) -> tuple[list[Incident], int]:
            found = rows.unresolved(db)
            seen = {i.id for i in found}
            found += [i for x in sorted(current - seen) if (i := rows.get(db, x)) is not None]
            return found, self._mark_late(db)

        found, late = await self.ctx.store.transact(read)
        self._count(late)
        self._incidents = {i.id: i for i in found}
        self._half = {k: v for k, v in self._half.items() if k[0] in self._incidents}
        if not self._loaded:
            self._loaded = True
            latest: dict[str, str] = {}
            for i in found:
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

    def _mark_late(self, db: Handle) -> int:
        """Mark incidents resolved after their due time that no tick saw breach (the daemon
        was stopped); return how many, for the breach counter."""
        now = self.ctx.clock()
        late = rows.resolved_late(db)
        rows.mark_late(db, late, now)
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
            op.id: outage(op.id, op.agency, op.system, op.opened_at, op.summary)
            for op in ops
            if isinstance(op, _Open)
        }

        def write(db: Handle) -> tuple[list[Incident], int]:
            touched: list[str] = []
            for op in ops:
                if isinstance(op, _Open):
                    rows.add(db, by_id[op.id])
                    touched.append(op.id)
                elif isinstance(op, _Escalated):
                    rows.record_escalation(db, op.id, op.step, op.to, op.at)
                    touched.append(op.id)
                else:
                    touched += rows.open_outages(db, op.agency, op.system, op.at)
                    rows.resolve_outages(db, op.agency, op.system, op.at, RESOLUTION)
            found = [i for x in dict.fromkeys(touched) if (i := rows.get(db, x)) is not None]
            return found, self._mark_late(db)

        try:
            found, late = await self.ctx.store.transact(write)
        except Exception:
            self._queue[:0] = ops
            raise
        self._count(late)
        current = set(self._outages.values())
        for incident in found:
            if incident.open or incident.id in current:
                self._incidents[incident.id] = incident
            else:
                self._incidents.pop(incident.id, None)

    def _half_at(self, incident: Incident) -> float:
        key = (incident.id, incident.due_at)  # a request marked complex later has a new due
        half = self._half.get(key)
        if half is None:
            sla = sla_hours(self.ctx.calendar, incident)
            half = self.ctx.calendar.add_working_hours(incident.received, sla / 2, incident.agency)
            self._half[key] = half
        return half

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

        def check(db: Handle) -> Incident | None:
            return rows.get(db, incident.id)

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
        return notices.digest(self.ctx.calendar, self.ctx.registry(), agency, level, incidents, now)

    async def _mark_reminded(self, incident: Incident, level: int, now: float) -> None:
        store = self.ctx.store
        fresh = incident

        def mark(db: Handle) -> bool:
            if level == 100:
                return rows.mark_breached(db, incident.id, now)
            return rows.mark_reminded(db, incident.id, level)

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

    def _notice(self, incident: Incident, level: int, now: float) -> tuple[Notice, list[Audience]]:
        return notices.reminder(
            self.ctx.calendar,
            self.ctx.registry(),
            incident,
            level,
            now,
            source=self.ctx.rules.incident_sla.source,
        )
