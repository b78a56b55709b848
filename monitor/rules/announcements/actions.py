"""What is done with announcements from outside the daemon's desk (the command line, the API,
the pages, and the desk's own intake): store one, read them all, cancel one."""

from __future__ import annotations

from dataclasses import replace

from ...sqldialect import Handle
from ...store import Store
from . import store as rows
from .model import Announcement, AnnouncementRejected


async def save(store: Store, a: Announcement) -> tuple[Announcement, bool]:
    """Store ``a``; return the stored row and whether it is new (False: same ``ref`` again)."""

    def write(db: Handle) -> tuple[Announcement, bool]:
        if a.ref is not None:
            old = rows.by_ref(db, a.agency, a.ref)
            if old is not None:
                return old, False
        return replace(a, id=rows.add(db, a)), True

    return await store.transact(write)


async def load_all(store: Store) -> list[Announcement]:
    """Every announcement, oldest effective first."""
    return await store.transact(rows.every)


async def cancel(store: Store, announcement_id: int, now: float) -> Announcement:
    """Withdraw an announcement — also one already in effect: "if this was not you, cancel it"
    must work when the notice came late and the change took effect before anyone read the
    confirmation. Its values are then no longer expected: the checks return to what the
    registry (and the announcements still standing) say, and a value it had whitelisted that
    is still being served raises the unannounced-change alarm (see ``ChangeWatch``)."""

    def write(db: Handle) -> Announcement:
        a = rows.get(db, announcement_id)
        if a is None:
            raise AnnouncementRejected(f"no announcement #{announcement_id}")
        if a.cancelled_at is not None:
            raise AnnouncementRejected(f"announcement #{announcement_id} is already cancelled")
        rows.set_cancelled(db, a.id, now)
        return replace(a, cancelled_at=now)

    return await store.transact(write)
