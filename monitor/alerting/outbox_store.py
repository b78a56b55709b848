"""Every statement on the ``outbox`` table, and on ``alert_notices`` (who was told of which
incident, written with the notices in one transaction): one function per query, each taking
the database handle of a transaction (:meth:`monitor.store.Store.transact` runs them, several
in one transaction when they must go together). Dialect details come from
:mod:`monitor.sqldialect`. When to claim, retry or give up is :class:`.outbox.Outbox`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .. import inbox_store
from ..sqldialect import SKIP_LOCKED, Handle, insert_ignore, placeholders, sql
from .outbox_items import COLUMNS, OutboxItem, item_of_row, row_values

Due = tuple[int, int, float | None, OutboxItem]  # id, attempts so far, claimed_at, the notice

_TOLD = sql("SELECT incident, address_key FROM alert_notices")
_ADD_TOLD = insert_ignore(
    "alert_notices", ("incident", "address_key"), key=("incident", "address_key")
)
_FORGET_TOLD = sql("DELETE FROM alert_notices WHERE incident = ?")

_RECOVER = sql("UPDATE outbox SET status = 'pending' WHERE status = 'sending'")
_QUEUE = sql(
    f"INSERT INTO outbox ({COLUMNS}, status, next_attempt_at, created_at)"  # noqa: S608 - constant columns; values are bound
    f" VALUES ({', '.join('?' * len(COLUMNS.split(',')))}, 'pending', ?, ?)"
    " ON CONFLICT (key) DO NOTHING"
)
_DUE_ONE = sql(
    f"SELECT id, attempts, claimed_at, {COLUMNS} FROM outbox"  # noqa: S608 - constant columns; values are bound
    " WHERE channel = ? AND status = 'pending' AND next_attempt_at <= ?"
    " ORDER BY next_attempt_at, id LIMIT 1" + SKIP_LOCKED
)
_NEXT_SMS_ADDRESS = sql(
    "SELECT address FROM outbox WHERE channel = 'sms' AND status = 'pending'"
    " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1"
)
_DUE_SMS = sql(
    f"SELECT id, attempts, claimed_at, {COLUMNS} FROM outbox"  # noqa: S608 - constant columns; values are bound
    " WHERE channel = 'sms' AND address = ? AND status = 'pending'"
    " AND next_attempt_at <= ? ORDER BY created_at DESC, id DESC" + SKIP_LOCKED
)
_POSTPONE_SMS = sql(
    "UPDATE outbox SET next_attempt_at = ? WHERE channel = 'sms'"
    " AND address = ? AND status = 'pending' AND next_attempt_at < ?"
    " AND claimed_at IS NULL"  # a retry of one on the wire keeps its time
)
_LAST_SMS = sql(
    "SELECT MAX(CASE WHEN status = 'sent' THEN sent_at ELSE claimed_at END)"
    " FROM outbox WHERE channel = 'sms' AND address = ?"
    " AND (status = 'sent' OR claimed_at IS NOT NULL)"
)
_MARK_SENDING = sql(
    "UPDATE outbox SET status = 'sending', attempts = attempts + 1, claimed_at = ? WHERE id = ?"
)
_MARK_SENT = sql(
    "UPDATE outbox SET status = 'sent', sent_at = ?, provider_id = ?, last_error = NULL"
    " WHERE id = ?"
)
# An attempt that may have reached the phone keeps counting against its budget.
_RETRY = sql(
    "UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = ?,"
    " claimed_at = CASE WHEN ? = 1 THEN claimed_at END, first_failed_at = ?"
    " WHERE id = ?"
)
_GIVE_UP = sql(
    "UPDATE outbox SET status = 'failed', last_error = ?, claimed_at = NULL,"
    " first_failed_at = ? WHERE id = ?"
)
_NEXT_DUE = sql("SELECT MIN(next_attempt_at) FROM outbox WHERE channel = ? AND status = 'pending'")
_PENDING = sql(
    "SELECT channel, COUNT(*), MIN(created_at) FROM outbox"
    " WHERE status IN ('pending', 'sending') GROUP BY channel"
)


# ----- alert_notices ------------------------------------------------------------------------


def told(db: Handle) -> set[tuple[str, str]]:
    """Every (incident, address key) already told."""
    return {(incident, key) for incident, key in db.execute(_TOLD)}


def add_told(db: Handle, pairs: Iterable[tuple[str, str]]) -> None:
    """Record (incident, address key) pairs as told (one already recorded stays)."""
    db.executemany(_ADD_TOLD, pairs)


def forget_told(db: Handle, incidents: Iterable[str]) -> None:
    """Forget who was told of ``incidents`` (resolved)."""
    db.executemany(_FORGET_TOLD, [(i,) for i in incidents])


# ----- outbox -------------------------------------------------------------------------------


def queue(db: Handle, items: Iterable[OutboxItem], now: float) -> int:
    """Queue ``items``, due ``now``, and deliver the portal-inbox copies to the inbox; a key
    already queued is ignored. How many were added."""
    added = 0
    for item in items:
        count = db.execute(_QUEUE, (*row_values(item), now, now)).rowcount
        added += count
        if count and item.channel == "inbox":
            inbox_store.deliver(db, item.address, item.key, item.subject, item.text, now)
    return added


def recover(db: Handle) -> int:
    """Rows caught mid-send (``sending``) back to ``pending``; how many."""
    return db.execute(_RECOVER).rowcount


def _due(row: Sequence[Any]) -> Due:
    row_id, attempts, claimed_at, *columns = row
    claimed = None if claimed_at is None else float(claimed_at)
    return int(row_id), int(attempts), claimed, item_of_row(tuple(columns))


def due_one(db: Handle, channel: str, now: float) -> Due | None:
    """The oldest row of ``channel`` due at ``now``, if any."""
    row = db.execute(_DUE_ONE, (channel, now)).fetchone()
    return None if row is None else _due(row)


def next_sms_address(db: Handle, now: float) -> str | None:
    """The number of the oldest SMS due at ``now``, if any."""
    row = db.execute(_NEXT_SMS_ADDRESS, (now,)).fetchone()
    return None if row is None else str(row[0])


def due_sms(db: Handle, address: str, now: float) -> list[Due]:
    """Every SMS to ``address`` due at ``now``, newest first."""
    return [_due(row) for row in db.execute(_DUE_SMS, (address, now))]


def postpone_sms(db: Handle, address: str, until: float) -> None:
    """Every SMS pending to ``address`` and due before ``until`` waits until then (one that was
    on the wire keeps its time)."""
    db.execute(_POSTPONE_SMS, (until, address, until))


def last_sms(db: Handle, address: str) -> float | None:
    """When the provider accepted the last SMS to ``address``, or when one that may have reached
    the phone went on the wire; None if none did."""
    last = db.execute(_LAST_SMS, (address,)).fetchone()[0]
    return None if last is None else float(last)


def mark_sending(db: Handle, ids: Sequence[int], now: float) -> None:
    """The rows ``ids`` are on the wire from ``now`` (one more attempt each)."""
    db.executemany(_MARK_SENDING, [(now, row_id) for row_id in ids])


def mark_sent(db: Handle, ids: Sequence[int], now: float, provider_id: str | None) -> None:
    """The provider accepted the rows ``ids`` at ``now``."""
    db.executemany(_MARK_SENT, [(now, provider_id, row_id) for row_id in ids])


def first_failures(db: Handle, ids: Sequence[int]) -> dict[int, float | None]:
    """When each of the rows ``ids`` first failed (None: not yet)."""
    marks = placeholders(len(ids))
    statement = sql(f"SELECT id, first_failed_at FROM outbox WHERE id IN ({marks})")  # noqa: S608 - placeholders only
    return dict(db.execute(statement, ids).fetchall())


def retry(
    db: Handle,
    row_id: int,
    at: float,
    reason: str,
    *,
    maybe_delivered: bool,
    first_failed_at: float,
) -> None:
    """A failed row goes again at ``at`` (if it ``maybe_delivered``, it keeps counting against
    its number's SMS budget)."""
    db.execute(_RETRY, (at, reason, int(maybe_delivered), first_failed_at, row_id))


def give_up(db: Handle, row_id: int, reason: str, *, first_failed_at: float) -> None:
    """A failed row is not sent again."""
    db.execute(_GIVE_UP, (reason, first_failed_at, row_id))


def next_due(db: Handle, channel: str) -> float | None:
    """When the next pending row of ``channel`` is due, if there is one."""
    due = db.execute(_NEXT_DUE, (channel,)).fetchone()[0]
    return None if due is None else float(due)


def pending(db: Handle) -> dict[str, tuple[int, float | None]]:
    """Per channel: rows pending or on the wire, and the creation time of the oldest."""
    return {channel: (count, oldest) for channel, count, oldest in db.execute(_PENDING)}


__all__ = [
    "Due",
    "add_told",
    "due_one",
    "due_sms",
    "first_failures",
    "forget_told",
    "give_up",
    "last_sms",
    "mark_sending",
    "mark_sent",
    "next_due",
    "next_sms_address",
    "pending",
    "postpone_sms",
    "queue",
    "recover",
    "retry",
    "told",
]
