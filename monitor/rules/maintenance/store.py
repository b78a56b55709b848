"""Every statement on the ``maintenance`` table: one function per query, each taking the
database handle of a transaction (:meth:`monitor.store.Store.transact` runs them). Dialect
details come from :mod:`monitor.sqldialect`. ``scope`` is stored as a JSON list."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from ...sqldialect import Handle, insert, sql
from .model import Window

COLUMNS = (
    "id, scope, starts, ends, reason, announced_at, working_days, required, compliant,"
    " override_reason, author, created_at, cancelled_at, notified_scheduled, notified_started,"
    " notified_ended, cancel_reason"
)
_SELECT = f"SELECT {COLUMNS} FROM maintenance"  # noqa: S608 - constant columns; values are bound
_ORDER = " ORDER BY starts, id"
_ALL = sql(_SELECT + _ORDER)
_CURRENT = sql(_SELECT + " WHERE cancelled_at IS NULL AND ends > ?" + _ORDER)
_BY_ID = sql(_SELECT + " WHERE id = ?" + _ORDER)
# Skipped: windows finished with, and those cancelled before anyone heard of them.
_OWED = sql(
    _SELECT + " WHERE notified_ended IS NULL"
    " AND (cancelled_at IS NULL OR notified_scheduled IS NOT NULL)" + _ORDER
)
_INSERT = insert(
    "maintenance",
    (
        "scope",
        "starts",
        "ends",
        "reason",
        "announced_at",
        "working_days",
        "required",
        "compliant",
        "override_reason",
        "author",
        "created_at",
    ),
    returning="id",
)
_STARTING_BEFORE = sql(
    "SELECT scope, starts, ends, cancelled_at, announced_at FROM maintenance"
    " WHERE starts < ? ORDER BY starts, id"
)
_CANCEL = sql("UPDATE maintenance SET cancelled_at = ?, cancel_reason = ? WHERE id = ?")
NotifiedColumn = Literal["notified_scheduled", "notified_started", "notified_ended"]
_NOTIFIED: dict[str, str] = {
    column: sql(f"UPDATE maintenance SET {column} = ? WHERE id = ? AND {column} IS NULL")  # noqa: S608 - column from a fixed set
    for column in ("notified_scheduled", "notified_started", "notified_ended")
}


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


def _windows(db: Handle, statement: str, args: Sequence[object] = ()) -> list[Window]:
    return [_window(row) for row in db.execute(statement, args).fetchall()]


def every(db: Handle) -> list[Window]:
    """Every window, by start time."""
    return _windows(db, _ALL)


def current(db: Handle, now: float) -> list[Window]:
    """The windows neither over at ``now`` nor cancelled, by start time."""
    return _windows(db, _CURRENT, (now,))


def get(db: Handle, window_id: int) -> Window | None:
    found = _windows(db, _BY_ID, (window_id,))
    return found[0] if found else None


def owed(db: Handle) -> list[Window]:
    """The windows that may still owe a notice, by start time."""
    return _windows(db, _OWED)


def add(db: Handle, window: Window) -> int:
    """Store a window; its new id."""
    row = db.execute(
        _INSERT,
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


def set_cancelled(db: Handle, window_id: int, at: float, reason: str | None) -> None:
    db.execute(_CANCEL, (at, reason, window_id))


def mark_notified(db: Handle, window_id: int, column: NotifiedColumn, at: float) -> bool:
    """Record that a notice went out; False if it was recorded already (another process)."""
    return db.execute(_NOTIFIED[column], (at, window_id)).rowcount == 1


def starting_before(
    db: Handle, end: float
) -> list[tuple[tuple[str, ...], float, float, float | None, float]]:
    """For a report ending at ``end``: every window that began before it, cancelled or not, as
    (scope, starts, ends, cancelled_at, announced_at), in order."""
    return [
        (tuple(json.loads(scope)), starts, ends, cancelled, announced)
        for scope, starts, ends, cancelled, announced in db.execute(_STARTING_BEFORE, (end,))
    ]
