"""Every statement on the ``sessions`` table but the revocation's (in
:mod:`monitor.accounts_store`): one function per query, each taking the database handle of a
transaction, written through :mod:`monitor.sqldialect`. Sessions are stored by the SHA-256 of
their id, never the id itself."""

from __future__ import annotations

from .sqldialect import Handle, insert, sql

_DELETE_EXPIRED = sql("DELETE FROM sessions WHERE expires_at <= ?")
_INSERT = insert(
    "sessions", ("id_hash", "account", "created_at", "last_seen", "expires_at", "idle")
)
_GET = sql("SELECT account, last_seen, expires_at, idle FROM sessions WHERE id_hash = ?")
_DELETE = sql("DELETE FROM sessions WHERE id_hash = ?")
_TOUCH = sql("UPDATE sessions SET last_seen = ? WHERE id_hash = ?")


def delete_expired(db: Handle, now: float) -> None:
    db.execute(_DELETE_EXPIRED, (now,))


def add(db: Handle, digest: str, account: str, now: float, expires: float, idle: float) -> None:
    db.execute(_INSERT, (digest, account, now, now, expires, idle))


def get(db: Handle, digest: str) -> tuple[str, float, float, float] | None:
    """(account, last_seen, expires_at, idle) of a session, or None."""
    row = db.execute(_GET, (digest,)).fetchone()
    return None if row is None else (str(row[0]), float(row[1]), float(row[2]), float(row[3]))


def delete(db: Handle, digest: str) -> bool:
    """Delete a session; whether there was one."""
    return db.execute(_DELETE, (digest,)).rowcount > 0


def touch(db: Handle, digest: str, now: float) -> None:
    db.execute(_TOUCH, (now, digest))


__all__ = ["add", "delete", "delete_expired", "get", "touch"]
