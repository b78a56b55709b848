"""Every statement on the ``inbox`` table (the portal inbox): the outbox delivers to it, the
API and the pages read it and mark it read. One function per query, each taking the database
handle of a transaction (:meth:`monitor.store.Store.transact` runs them). Dialect details come
from :mod:`monitor.sqldialect`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sqldialect import Handle, insert_ignore, sql

_UNREAD = sql("SELECT COUNT(*) FROM inbox WHERE account = ? AND read_at IS NULL")
_MESSAGES = sql(
    "SELECT id, key, subject, text, created_at, read_at FROM inbox WHERE account = ?"
    " ORDER BY created_at DESC, id DESC LIMIT ?"
)
_DELIVER = insert_ignore("inbox", ("account", "key", "subject", "text", "created_at"), key=("key",))
_MARK_READ = sql("UPDATE inbox SET read_at = COALESCE(read_at, ?) WHERE id = ? AND account = ?")


@dataclass(frozen=True, slots=True)
class Stored:
    """A message as stored."""

    id: int
    key: str
    subject: str
    text: str
    created_at: float
    read_at: float | None


def deliver(db: Handle, account: str, key: str, subject: str, text: str, at: float) -> None:
    """Put a message in ``account``'s inbox at ``at``; one with the same ``key`` already there
    stays as it is."""
    db.execute(_DELIVER, (account, key, subject, text, at))


def unread(db: Handle, account: str) -> int:
    """How many messages of ``account``'s inbox are unread."""
    return int(db.execute(_UNREAD, (account,)).fetchone()[0])


def messages(db: Handle, account: str, limit: int) -> list[Stored]:
    """The latest ``limit`` messages of ``account``'s inbox, newest first."""
    return [
        Stored(int(i), k, s, t, c, r)
        for i, k, s, t, c, r in db.execute(_MESSAGES, (account, limit))
    ]


def mark_read(db: Handle, account: str, message: int, at: float) -> bool:
    """Mark a message of ``account`` read (when it was first read stays); whether it was one of
    ``account``'s."""
    return bool(db.execute(_MARK_READ, (at, message, account)).rowcount)


__all__ = ["Stored", "deliver", "mark_read", "messages", "unread"]
