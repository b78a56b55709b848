"""What every rules desk offers the daemon, and the loop that drives them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

from ..alerting.notices import NoticeSink
from ..registry import Registry
from ..sqldialect import Handle
from ..store import Store, StoreError
from ..workdays import Rules, WorkCalendar

log = logging.getLogger(__name__)

TICK = 1.0  # seconds between two looks at the clock and at the database


class Desk(Protocol):
    """One kind of rule-driven work."""

    async def refresh(self) -> None:
        """Re-read this desk's rows: another process (the command line) may have written."""

    async def tick(self, now: float) -> None:
        """Do what is due at ``now`` (epoch seconds): notices, switches, reminders."""


@runtime_checkable
class Watching(Protocol):
    """A desk whose tick starts with a small read (a stamp that moves when its rows are
    written, the rows owed a notice): :func:`run_desks` makes that read for every such desk
    in one call on the store's thread, rather than one transaction per desk every second."""

    def watch(self, db: Handle) -> Any:
        """The small read (on the store's thread; reads only)."""

    async def act(self, now: float, seen: Any) -> None:
        """The tick, given what :meth:`watch` read (``tick`` is ``act`` after its own read)."""


@dataclass
class RulesContext:
    """What the desks share; built once by the daemon (or by a test)."""

    store: Store
    calendar: WorkCalendar
    notices: NoticeSink
    registry: Callable[[], Registry]  # the running registry (it changes on reload)
    clock: Callable[[], float] = time.time
    counters: dict[str, Callable[[], None]] = field(default_factory=dict)

    @property
    def rules(self) -> Rules:
        return self.calendar.settings.rules

    def count(self, name: str) -> None:
        """Increment the named counter metric, if the daemon registered one."""
        counter = self.counters.get(name)
        if counter is not None:
            counter()


async def run_desks(
    store: Store,
    desks: Sequence[Desk],
    clock: Callable[[], float],
    ticking: Callable[[], bool] = lambda: True,
) -> None:
    """Forever: refresh every desk when the database changed under us, then tick them all
    while ``ticking()`` (on several hosts, only the leader does the desks' timed work; every
    host keeps them fresh for its pages and API)."""
    watchers = [d for d in desks if isinstance(d, Watching)]
    version: int | None = None
    while True:
        # The database's version and, on the leader, the watchers' reads: one call.
        reads = [w.watch for w in watchers] if ticking() else []
        seen: dict[int, Any] = {}  # id(desk) -> what its watch read
        current, away = version, False
        try:
            current, found = await store.watch(reads)
            seen = dict(zip(map(id, watchers), found, strict=False))
        except StoreError as exc:  # the database is away: said once a second, not a bug
            log.warning("cannot read the database's version (will retry): %s", exc)
            away = True  # the watchers' own reads would fail the same way: skipped
        except Exception:  # a bug in one watch: each watcher reads for itself this time
            log.exception("a desk's look at the database failed; each reads for itself")
            try:  # and the other desks still refresh when the database changed
                current = await store.data_version()
            except StoreError as exc:
                log.warning("cannot read the database's version (will retry): %s", exc)
        changed = current != version
        refreshed = True
        now = clock()
        for desk in desks:
            # One desk's failure (a bug, a locked database) must not stop the others.
            try:
                if changed:
                    await desk.refresh()
            except Exception:
                refreshed = False  # look again next time round
                log.exception("%s could not refresh; retrying", type(desk).__name__)
            if not ticking():
                continue
            try:
                if id(desk) in seen:
                    await cast(Watching, desk).act(now, seen[id(desk)])
                elif not (away and isinstance(desk, Watching)):
                    await desk.tick(now)
            except Exception:
                log.exception("%s failed; retrying", type(desk).__name__)
        if refreshed:
            version = current
        await asyncio.sleep(TICK)
