"""Every statement on the ``silences`` table (silences made through the API; the config's own
live in :mod:`monitor.config.alerting`): one function per query, each taking the database
handle of a transaction (:meth:`monitor.store.Store.transact` runs them). Dialect details come
from :mod:`monitor.sqldialect`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ...sqldialect import Handle, insert, sql

_COLUMNS = ("agency", "system", "starts", "ends", "reason", "created_by", "created_at")
_ACTIVE = sql(
    "SELECT id, agency, system, starts, ends, reason, created_by, created_at FROM silences"
    " WHERE cancelled_at IS NULL AND ends > ? ORDER BY ends"
)
_INSERT = insert("silences", _COLUMNS, returning="id")
_STATE = sql("SELECT agency, cancelled_at FROM silences WHERE id = ?")
_CANCEL = sql("UPDATE silences SET cancelled_at = ? WHERE id = ?")


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence as stored (not cancelled)."""

    id: int
    agency: str
    system: str | None
    starts: float
    ends: float
    reason: str
    created_by: str
    created_at: float

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def active(db: Handle, now: float) -> list[Silence]:
    """The silences not cancelled and not over at ``now``, the soonest to end first."""
    return [Silence(*row) for row in db.execute(_ACTIVE, (now,))]


def add(
    db: Handle,
    *,
    agency: str,
    system: str | None,
    starts: float,
    ends: float,
    reason: str,
    created_by: str,
    created_at: float,
) -> int:
    """Store a new silence; its id."""
    row = db.execute(
        _INSERT, (agency, system, starts, ends, reason, created_by, created_at)
    ).fetchone()
    return int(row[0])


def state(db: Handle, silence_id: int) -> tuple[str, float | None] | None:
    """A silence's agency and when it was cancelled (None: it was not), or None when unknown."""
    row = db.execute(_STATE, (silence_id,)).fetchone()
    return None if row is None else (str(row[0]), row[1])


def cancel(db: Handle, silence_id: int, at: float) -> None:
    db.execute(_CANCEL, (at, silence_id))


__all__ = ["Silence", "active", "add", "cancel", "state"]
