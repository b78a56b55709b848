"""The audit log: who did what, to what, for which agency, from where (``api``, ``page``,
``web``, ``cli``). Grants, revocations, certificate mappings, acknowledgements, announcements,
maintenance, silences, logins and failed logins are written here; :func:`audit_write` inside a
transaction that does the act, :func:`audit` and :func:`audited` on their own. Its statements
are written through :mod:`monitor.sqldialect`, like the topics' stores.

The log is append-only and hash-chained (:mod:`monitor.audit_chain`): each entry is appended to
the chain by :func:`audit_write`, which takes the chain's turn until the acting transaction
ends, and ``npsp-monitor audit verify`` walks it."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .audit_chain import append
from .sqldialect import Handle, sql
from .store import Store

T = TypeVar("T")
_SELECT = "SELECT id, ts, actor, action, target, agency, detail, source FROM audit"
_ALL = sql(_SELECT + " ORDER BY id DESC LIMIT ?")
_OF_AGENCY = sql(_SELECT + " WHERE agency = ? ORDER BY id DESC LIMIT ?")


def audit_write(
    db: Handle,
    ts: float,
    actor: str,
    action: str,
    target: str,
    agency: str | None,
    detail: dict[str, Any],
    source: str,
) -> int:
    """Append an entry to the audit log inside ``db``'s transaction; its id."""
    return append(
        db, ts, actor, action, target, agency, json.dumps(detail, ensure_ascii=False), source
    )


async def audit(
    store: Store,
    *,
    ts: float,
    actor: str,
    action: str,
    target: str,
    agency: str | None = None,
    detail: dict[str, Any] | None = None,
    source: str = "api",
) -> None:
    await store.transact(
        lambda db: audit_write(db, ts, actor, action, target, agency, detail or {}, source)
    )


async def audited(
    store: Store,
    work: Awaitable[T],
    *,
    actor: str,
    action: str,
    target: Callable[[T], str],
    agency: Callable[[T], str | None],
    source: str = "cli",
) -> T:
    """Await ``work`` (an action on the store) and record it in the audit log."""
    result = await work
    await audit(
        store,
        ts=time.time(),
        actor=actor,
        action=action,
        target=target(result),
        agency=agency(result),
        source=source,
    )
    return result


async def audit_log(
    store: Store, *, agency: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    def read(db: Handle) -> list[tuple[Any, ...]]:
        if agency is None:
            return db.execute(_ALL, (limit,)).fetchall()
        return db.execute(_OF_AGENCY, (agency, limit)).fetchall()

    return [
        {
            "id": i,
            "ts": ts,
            "actor": actor,
            "action": action,
            "target": target,
            "agency": agency_,
            "detail": json.loads(detail),
            "source": source,
        }
        for i, ts, actor, action, target, agency_, detail, source in await store.transact(read)
    ]


__all__ = ["audit", "audit_log", "audit_write", "audited"]
