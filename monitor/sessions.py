"""Page sessions: a page login opens one (:func:`open_session`); the cookie holds its random
256-bit id, the database only its SHA-256. A session ends after an idle and an absolute
lifetime, at logout (:func:`end_session`) and when its account is revoked
(:func:`monitor.accounts.revoke` deletes its sessions)."""

from __future__ import annotations

import secrets

from . import sessions_store
from .accounts import Account, get, hash_token, well_formed
from .sqldialect import Handle
from .store import Store

SESSION_PREFIX = "npsps_"
SESSION_TOUCH = 60.0  # seconds: last_seen is written at most this often per session


def _session_hash(session_id: str) -> str | None:
    if not (session_id.startswith(SESSION_PREFIX) and well_formed(session_id)):
        return None
    return hash_token(session_id)


async def open_session(
    store: Store, account: Account, *, now: float, idle: float, lifetime: float
) -> str:
    """A new session of ``account`` (its id, for the cookie; only the hash is stored).

    It ends ``idle`` seconds after its last use, ``lifetime`` seconds after now at the latest.
    Expired sessions of every account are cleared on the way.
    """
    session_id = SESSION_PREFIX + secrets.token_urlsafe(32)  # 256 bits

    def write(db: Handle) -> None:
        sessions_store.delete_expired(db, now)
        sessions_store.add(db, hash_token(session_id), account.id, now, now + lifetime, idle)

    await store.transact(write)
    return session_id


async def by_session(store: Store, session_id: str, now: float) -> Account | None:
    """The active account of a live session, or None (unknown, expired, ended, revoked).

    A use moves its idle deadline (``last_seen`` written at most every :data:`SESSION_TOUCH`
    seconds); an expired session is deleted when met.
    """
    digest = _session_hash(session_id)
    if digest is None:
        return None

    def work(db: Handle) -> Account | None:
        row = sessions_store.get(db, digest)
        if row is None:
            return None
        account_id, last_seen, expires_at, idle = row
        if now >= expires_at or now >= last_seen + idle:
            sessions_store.delete(db, digest)
            return None
        account = get(db, account_id)
        if account is None or not account.active:
            sessions_store.delete(db, digest)
            return None
        if now - last_seen >= min(SESSION_TOUCH, idle / 10):
            sessions_store.touch(db, digest, now)
        return account

    return await store.transact(work)


async def end_session(store: Store, session_id: str) -> bool:
    """Delete a session (logout); whether there was one."""
    digest = _session_hash(session_id)
    if digest is None:
        return False
    return await store.transact(lambda db: sessions_store.delete(db, digest))
