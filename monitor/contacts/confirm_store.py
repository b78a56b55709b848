"""Every statement on ``contact_confirmations`` (a stored contact's confirmation reminders and
their links' tokens, hashed) and the confirmation's own write on ``contacts``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..sqldialect import Handle, sql

__all__ = ["Confirmation", "add", "by_hash", "confirm", "use"]

Confirmation = tuple[int, str, float, float, float | None]  # id, contact, period, expires, used

_ADD = sql(
    "INSERT INTO contact_confirmations"
    " (contact_id, period_start, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (contact_id, period_start) DO NOTHING"
)
_BY_HASH = sql(
    "SELECT id, contact_id, period_start, expires_at, used_at FROM contact_confirmations"
    " WHERE token_hash = ?"
)
# Used once: the update finds the row only while it is unused and not expired.
_USE = sql(
    "UPDATE contact_confirmations SET used_at = ?"
    " WHERE id = ? AND used_at IS NULL AND expires_at > ?"
)
_CONFIRM = sql(
    "UPDATE contacts SET confirmed_at = ?, updated_at = ? WHERE id = ? AND removed_at IS NULL"
)


def add(
    db: Handle, contact_id: str, period_start: float, token_hash: str, now: float, expires: float
) -> bool:
    """Record the reminder of ``contact_id`` for the period starting at ``period_start``
    (False: already sent for that period)."""
    values = (contact_id, period_start, token_hash, now, expires)
    return bool(db.execute(_ADD, values).rowcount)


def _row(row: Sequence[Any]) -> Confirmation:
    id_, contact, period, expires, used = row
    return (
        int(id_),
        str(contact),
        float(period),
        float(expires),
        None if used is None else float(used),
    )


def by_hash(db: Handle, token_hash: str) -> Confirmation | None:
    row = db.execute(_BY_HASH, (token_hash,)).fetchone()
    return None if row is None else _row(row)


def use(db: Handle, confirmation_id: int, now: float) -> bool:
    """Spend a link (False: used already, or expired)."""
    return db.execute(_USE, (now, confirmation_id, now)).rowcount == 1


def confirm(db: Handle, contact_id: str, now: float) -> bool:
    """Record that a contact's details are confirmed (False: the contact was removed)."""
    return db.execute(_CONFIRM, (now, now, contact_id)).rowcount == 1
