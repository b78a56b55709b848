"""Every statement on the ``incidents`` and ``incident_comments`` tables: one function per
query, each taking the database handle of a transaction (:meth:`monitor.store.Store.transact`
runs them, several in one transaction when they must go together). Dialect details come from
:mod:`monitor.sqldialect`.
"""

from __future__ import annotations

from typing import Any

from ...sqldialect import Handle, insert, insert_ignore, sql
from .model import OUTAGE, REQUEST, Incident

COLUMNS = (
    "id, agency, system, source, summary, opened_at, due_at, acknowledged_at, acknowledged_by,"
    " resolved_at, resolved_by, resolution, reminded, breached_at, received_at, complex,"
    " expected_completion, escalation_step, escalated_to, escalated_at"
)
_SELECT = f"SELECT {COLUMNS} FROM incidents"  # noqa: S608 - constant columns; values are bound
_GET = sql(_SELECT + " WHERE id = ?")
_UNRESOLVED = sql(_SELECT + " WHERE resolved_at IS NULL ORDER BY opened_at, id")
_INSERT = insert_ignore(
    "incidents",
    (
        "id",
        "agency",
        "system",
        "source",
        "summary",
        "opened_at",
        "due_at",
        "received_at",
        "complex",
        "expected_completion",
    ),
    key=("id",),
)
_IDS_OF_SOURCE = sql("SELECT id FROM incidents WHERE source = ?")
_SET_COMPLEX = sql(
    "UPDATE incidents SET complex = 1, expected_completion = ?, due_at = ? WHERE id = ?"
)
_SET_ACKNOWLEDGED = sql(
    "UPDATE incidents SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ?"
)
_SET_RESOLVED = sql(
    "UPDATE incidents SET resolved_at = ?, resolved_by = ?, resolution = ? WHERE id = ?"
)
# Every open outage incident of the system up to the recovery: also strays left by an earlier
# crash, so that none waits forever for a recovery already seen.
_OPEN_OUTAGES = sql(
    "SELECT id FROM incidents WHERE agency = ? AND system = ? AND source = ?"
    " AND resolved_at IS NULL AND opened_at <= ?"
)
_RESOLVE_OUTAGES = sql(
    "UPDATE incidents SET resolved_at = ?, resolved_by = 'system', resolution = ?"
    " WHERE agency = ? AND system = ? AND source = ? AND resolved_at IS NULL AND opened_at <= ?"
)
# A step of the ladder is recorded once (a restart that takes it again keeps the first time).
_ESCALATED = sql(
    "UPDATE incidents SET escalation_step = ?, escalated_to = ?, escalated_at = ?"
    " WHERE id = ? AND escalation_step < ?"
)
_RESOLVED_LATE = sql(
    "SELECT id FROM incidents"
    " WHERE breached_at IS NULL AND resolved_at IS NOT NULL AND resolved_at > due_at"
)
_MARK_LATE = sql("UPDATE incidents SET breached_at = ?, reminded = 100 WHERE id = ?")
_MARK_BREACHED = sql(
    "UPDATE incidents SET reminded = 100, breached_at = ? WHERE id = ? AND breached_at IS NULL"
)
_MARK_REMINDED = sql("UPDATE incidents SET reminded = ? WHERE id = ? AND reminded < ?")
_TOUCHING = sql(
    "SELECT agency, system, opened_at, due_at, resolved_at, breached_at FROM incidents"
    " WHERE (opened_at >= ? AND opened_at < ?) OR (breached_at >= ? AND breached_at < ?)"
    " OR (due_at >= ? AND due_at < ?)"
)
_COMMENTS = sql("SELECT ts, author, text FROM incident_comments WHERE incident = ? ORDER BY id")
_ADD_COMMENT = insert("incident_comments", ("incident", "ts", "author", "text"))


def _incident(row: tuple[Any, ...]) -> Incident:
    incident = Incident(*row)
    incident.complex = bool(incident.complex)
    return incident


def get(db: Handle, incident_id: str) -> Incident | None:
    row = db.execute(_GET, (incident_id,)).fetchone()
    return None if row is None else _incident(row)


def unresolved(db: Handle) -> list[Incident]:
    """Every unresolved incident, oldest first."""
    return [_incident(r) for r in db.execute(_UNRESOLVED)]


def select(
    db: Handle, *, open_only: bool, agency: str | None, system: str | None, limit: int | None
) -> list[Incident]:
    """Incidents, newest first; only the unresolved ones if ``open_only``; optionally of one
    agency or system, and only the ``limit`` most recent."""
    where, args = [], []
    if open_only:
        where.append("resolved_at IS NULL")
    if agency is not None:
        where.append("agency = ?")
        args.append(agency)
    if system is not None:
        where.append("system = ?")
        args.append(system)
    statement = _SELECT
    if where:
        statement += " WHERE " + " AND ".join(where)
    statement += " ORDER BY opened_at DESC, id DESC"
    if limit is not None:
        statement += f" LIMIT {int(limit)}"
    return [_incident(r) for r in db.execute(sql(statement), args)]


def add(db: Handle, incident: Incident) -> None:
    """Insert unless the id exists (an outage seen again after a restart keeps its row)."""
    db.execute(
        _INSERT,
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


def request_ids(db: Handle) -> list[str]:
    """The ids of every support request."""
    return [str(ident) for (ident,) in db.execute(_IDS_OF_SOURCE, (REQUEST,))]


def set_complex(db: Handle, incident_id: str, expected_completion: float) -> None:
    """Mark a request complex; its expected completion becomes its due time."""
    db.execute(_SET_COMPLEX, (expected_completion, expected_completion, incident_id))


def set_acknowledged(db: Handle, incident_id: str, at: float, by: str) -> None:
    db.execute(_SET_ACKNOWLEDGED, (at, by, incident_id))


def set_resolved(db: Handle, incident_id: str, at: float, by: str, resolution: str) -> None:
    db.execute(_SET_RESOLVED, (at, by, resolution, incident_id))


def open_outages(db: Handle, agency: str, system: str, until: float) -> list[str]:
    """The ids of the system's unresolved outage incidents opened up to ``until``."""
    return [r[0] for r in db.execute(_OPEN_OUTAGES, (agency, system, OUTAGE, until))]


def resolve_outages(db: Handle, agency: str, system: str, at: float, resolution: str) -> None:
    """Resolve (by ``system``) the system's outage incidents opened up to ``at``."""
    db.execute(_RESOLVE_OUTAGES, (at, resolution, agency, system, OUTAGE, at))


def record_escalation(db: Handle, incident_id: str, step: int, to: str, at: float) -> None:
    """Record step ``step`` of the ladder, unless that step (or a later one) already was."""
    db.execute(_ESCALATED, (step, to, at, incident_id, step))


def resolved_late(db: Handle) -> list[str]:
    """The ids of incidents resolved after their due time whose breach was never marked."""
    return [ident for (ident,) in db.execute(_RESOLVED_LATE)]


def mark_late(db: Handle, incident_ids: list[str], at: float) -> None:
    """Mark those incidents breached (seen ``at``), with no reminder left to send."""
    db.executemany(_MARK_LATE, [(at, ident) for ident in incident_ids])


def mark_breached(db: Handle, incident_id: str, at: float) -> bool:
    """Mark the breach (its notice went out); False if it was marked already."""
    return db.execute(_MARK_BREACHED, (at, incident_id)).rowcount == 1


def mark_reminded(db: Handle, incident_id: str, level: int) -> bool:
    """Record that the ``level`` % reminder went out; False if it was recorded already."""
    return db.execute(_MARK_REMINDED, (level, incident_id, level)).rowcount == 1


def comments(db: Handle, incident_id: str) -> list[tuple[float, str, str]]:
    """The comments on an incident, oldest first: (time, author, text)."""
    return [(float(ts), str(a), str(t)) for ts, a, t in db.execute(_COMMENTS, (incident_id,))]


def add_comment(db: Handle, incident_id: str, at: float, author: str, text: str) -> None:
    db.execute(_ADD_COMMENT, (incident_id, at, author, text))


def touching(
    db: Handle, start: float, end: float
) -> list[tuple[str, str, float, float, float | None, float | None]]:
    """For a report of ``[start, end)``: the incidents opened, breached or due in it, as
    (agency, system, opened_at, due_at, resolved_at, breached_at)."""
    return [tuple(row) for row in db.execute(_TOUCHING, (start, end, start, end, start, end))]
