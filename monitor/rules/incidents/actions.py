"""What a person does with incidents, from the command line or the API: open a support
request, mark it complex, acknowledge, resolve, look. Each action is one transaction."""

from __future__ import annotations

from ...alerting.messages import local_time
from ...registry import Registry
from ...sqldialect import Handle
from ...store import Store
from ...workdays import WorkCalendar
from . import store as rows
from .model import (
    REQUEST,
    Incident,
    IncidentError,
    check_complexity,
    check_expected,
    check_received,
    checked_system,
    checked_text,
    next_request_id,
    request_due,
    resolved_when_by,
)


def _must_get(db: Handle, incident_id: str) -> Incident:
    incident = rows.get(db, incident_id)
    if incident is None:
        raise IncidentError(f"unknown incident {incident_id!r} (see `npsp-monitor incident list`)")
    return incident


def _must_be_open(incident: Incident, then: str = "") -> None:
    if incident.resolved_at is not None:
        raise IncidentError(
            f"incident {incident.id} is already resolved ({resolved_when_by(incident)}){then}"
        )


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
    summary = checked_text(summary, "the summary")
    received = now if received_at is None else received_at
    check_received(received, now)
    check_complexity(is_complex, expected_completion)
    if expected_completion is not None:
        check_expected(calendar, agency, expected_completion, received)
    system = checked_system(registry, agency, system)
    due = request_due(calendar, agency, received, expected_completion)

    def write(db: Handle) -> Incident:
        incident = Incident(
            next_request_id(rows.request_ids(db)),
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
        rows.add(db, incident)
        return incident

    return await store.transact(write)


async def mark_complex(
    store: Store, calendar: WorkCalendar, incident_id: str, expected_completion: float
) -> Incident:
    """Mark an open support request complex, with the expected completion time published for
    it, which becomes its due time (a breach already counted stays counted). Giving a new
    time for a request already complex moves it."""

    def write(db: Handle) -> Incident:
        incident = _must_get(db, incident_id)
        if incident.source != REQUEST:
            raise IncidentError(
                f"incident {incident_id} is an outage, not a support request: an outage"
                " escalates around the clock and has no expected completion time"
            )
        _must_be_open(incident)
        check_expected(calendar, incident.agency, expected_completion, incident.received)
        rows.set_complex(db, incident_id, expected_completion)
        incident.complex, incident.expected_completion = True, expected_completion
        incident.due_at = expected_completion
        return incident

    return await store.transact(write)


async def acknowledge(store: Store, incident_id: str, by: str, now: float) -> Incident:
    """Record that ``by`` took charge of the incident. Repeating it by the same person is a
    no-op; someone else cannot take over an acknowledged incident silently."""
    by = checked_text(by, "the name of who acknowledges (--by)", lines=False)

    def write(db: Handle) -> Incident:
        incident = _must_get(db, incident_id)
        _must_be_open(incident, "; nothing to acknowledge")
        if incident.acknowledged_at is not None:
            if incident.acknowledged_by == by:
                return incident
            raise IncidentError(
                f"incident {incident_id} is already acknowledged by {incident.acknowledged_by} "
                f"at {local_time(incident.acknowledged_at)}"
            )
        rows.set_acknowledged(db, incident_id, now, by)
        incident.acknowledged_at, incident.acknowledged_by = now, by
        return incident

    return await store.transact(write)


async def resolve(store: Store, incident_id: str, by: str, resolution: str, now: float) -> Incident:
    """Close the incident: its SLA clock stops and no further reminder goes out."""
    by = checked_text(by, "the name of who resolves (--by)", lines=False)
    resolution = checked_text(resolution, "the resolution")

    def write(db: Handle) -> Incident:
        incident = _must_get(db, incident_id)
        _must_be_open(incident)
        rows.set_resolved(db, incident_id, now, by, resolution)
        incident.resolved_at, incident.resolved_by, incident.resolution = now, by, resolution
        return incident

    return await store.transact(write)


async def get_incident(store: Store, incident_id: str) -> Incident | None:
    return await store.transact(lambda db: rows.get(db, incident_id))


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
    found = await store.transact(
        lambda db: rows.select(db, open_only=open_only, agency=agency, system=system, limit=limit)
    )
    return found[::-1]
