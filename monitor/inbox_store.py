"""Every statement of the portal inbox that the API and the pages run on the ``inbox`` table:
one function per query, each taking the database handle of a transaction
(:meth:`monitor.store.Store.transact` runs them). Dialect details come from
:mod:`monitor.sqldialect`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sqldialect import Handle, sql

_UNREAD = sql("SELECT COUNT(*) FROM inbox WHERE account = ? AND read_at IS NULL")
_MESSAGES = sql(
    "SELECT id, key, subject, text, created_at, read_at FROM inbox WHERE account = ?"
    " ORDER BY created_at DESC, id DESC LIMIT ?"
)
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


__all__ = ["Stored", "mark_read", "messages", "unread"]
