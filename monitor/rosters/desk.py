"""The rosters in memory (:class:`Rosters`: who is on duty, whom an off-hours outage pages) and
the leader's gap desk (:class:`GapDesk`: once a day, tells each agency with a roster of the
uncovered off-hours stretches starting a day ahead)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..alerting.notices import NoticeSink
from ..contacts.directory import Directory
from ..registry import Registry
from ..sqldialect import Handle
from ..store import Store
from ..workdays import WorkCalendar
from . import store as rows
from .actions import KEPT
from .model import Override, Roster, Shift, roster_of
from .notices import audience, notice_for

log = logging.getLogger(__package__)

DAY = 86400.0
#: How far the gap desk looks for where a stretch ends (a Tết holiday is nine days).
SCAN = 12 * DAY
GAP_LOG_EVERY = 900.0  # seconds between two log lines of one agency's gap


class Rosters:
    """Every agency's roster, in memory; a rules desk (refreshed when the database changes,
    and on a tick when a roster row was written by this process, which the database's
    data_version does not show)."""

    def __init__(
        self,
        store: Store,
        calendar: Callable[[], WorkCalendar],
        *,
        directory: Callable[[], Directory] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.calendar = calendar
        self.directory = directory
        self.clock = clock
        self._rosters: dict[str, Roster] = {}
        self._stamp: tuple[Any, ...] | None = None
        self._gap_logged: dict[str, float] = {}

    async def refresh(self) -> None:
        after = self.clock() - KEPT

        def read(db: Handle) -> tuple[tuple[Any, ...], list[Shift], list[Override]]:
            return rows.stamp(db), rows.shifts(db), rows.overrides(db, after)

        self._stamp, shifts, overrides = await self.store.transact(read)
        agencies = sorted({s.agency for s in shifts} | {o.agency for o in overrides})
        self._rosters = {a: roster_of(a, shifts, overrides) for a in agencies}

    def watch(self, db: Handle) -> tuple[Any, ...]:
        """The rosters' stamp: this process's own writes do not move the data version."""
        return rows.stamp(db)

    async def act(self, now: float, seen: tuple[Any, ...]) -> None:
        if seen != self._stamp:
            await self.refresh()

    async def tick(self, now: float) -> None:
        await self.act(now, await self.store.transact(self.watch))

    def agencies(self) -> list[str]:
        """The agencies that have a roster now."""
        now = self.clock()
        return sorted(a for a, r in self._rosters.items() if r.held(now))

    def roster(self, agency: str, at: float | None = None) -> Roster | None:
        """``agency``'s roster, None when it has none at ``at`` (default: now)."""
        found = self._rosters.get(agency)
        held = found is not None and found.held(self.clock() if at is None else at)
        return found if held else None

    def on_duty(self, agency: str, ts: float) -> list[str] | None:
        """The contact ids on duty at ``ts`` (possibly none); None when ``agency`` has no
        roster at all."""
        roster = self.roster(agency, ts)
        return None if roster is None else roster.on_duty(ts, self.calendar().tz)

    def duty_targets(self, agency: str, ts: float, calendar: WorkCalendar) -> list[str] | None:
        """Whom an outage alert to ``agency``'s technical-admins at ``ts`` pages: None for the
        normal routing (working hours of the agency, no roster, or nobody on duty: then the
        whole team, and the gap is logged), else the contact ids on duty."""
        roster = self.roster(agency, ts)
        if roster is None or calendar.is_working_time(ts, agency):
            return None
        ids = roster.on_duty(ts, calendar.tz)
        if not ids:
            # Said once per agency and quarter of an hour, not once per alert of a storm.
            if ts - self._gap_logged.get(agency, float("-inf")) >= GAP_LOG_EVERY:
                self._gap_logged[agency] = ts
                log.warning(
                    "nobody on duty off hours: the whole technical team is paged",
                    extra={"agency": agency},
                )
            return None
        return ids

    def on_duty_now(self, agency: str) -> list[str] | None:
        """The names of who is on duty now (an unlisted contact by its id); None: no roster."""
        ids = self.on_duty(agency, self.clock())
        if ids is None:
            return None
        directory = None if self.directory is None else self.directory()
        return names_of(agency, ids, directory)


def names_of(agency: str, ids: list[str], directory: Directory | None) -> list[str]:
    """Contact ids as the people's names (an id the directory does not list stays an id)."""
    out = []
    for cid in ids:
        person = None if directory is None else directory.find(agency, cid)
        out.append(cid if person is None else person.contact.name)
    return out


class Context(Protocol):
    """What the gap desk needs of the rules desks' context
    (:class:`monitor.rules.desk.RulesContext`, which sits above this package)."""

    @property
    def calendar(self) -> WorkCalendar: ...

    @property
    def notices(self) -> NoticeSink: ...

    @property
    def registry(self) -> Callable[[], Registry]: ...

    def count(self, name: str) -> None: ...


class GapDesk:
    """On the leader: once a day, for each agency with a roster, every stretch outside its
    working hours (:meth:`WorkCalendar.is_working_time`: weekends, holidays and swapped
    Saturdays understood; a working day's lunch break is not a gap) with nobody on duty that
    starts in ``[now + 24 h, now + 48 h)`` is told to the agency's technical and high-level
    admins, one notice per stretch, keyed by (agency, start): told once, across restarts and
    leaders."""

    def __init__(self, ctx: Context, rosters: Rosters) -> None:
        self.ctx = ctx
        self.rosters = rosters
        self.checked: float | None = None

    async def refresh(self) -> None:
        """The rosters are their own desk's."""

    async def tick(self, now: float) -> None:
        if self.checked is not None and now - self.checked < DAY:
            return
        for agency in self.rosters.agencies():
            try:
                await self._check(agency, now)
            except Exception:
                log.exception("roster of %s: cannot tell its gaps; retrying", agency)
                return  # looked at again next tick
        self.checked = now

    def gaps(self, agency: str, now: float) -> list[tuple[float, float]]:
        """The uncovered off-hours stretches of ``agency`` starting a day ahead of ``now``."""
        roster = self.rosters.roster(agency, now)
        if roster is None:
            return []
        calendar = self.ctx.calendar
        settings = calendar.settings
        spans = settings.agency_working_hours.get(agency, settings.working_hours)
        clocks = [t for span in spans for t in span]
        first = min((s for s, _ in spans), default=None)
        last = max((e for _, e in spans), default=None)

        def working(ts: float) -> bool:
            """Working time, a break between two spans of a working day (lunch) included:
            a gap there is not worth a notice (an outage then still pages the whole team)."""
            if calendar.is_working_time(ts, agency):
                return True
            local = dt.datetime.fromtimestamp(ts, calendar.tz)
            return (
                first is not None
                and last is not None
                and first <= local.time() < last
                and calendar.is_working_day(local.date())
            )

        found = roster.gaps(now, now + SCAN, calendar.tz, working, clocks)
        return [(a, b) for a, b in found if now + DAY <= a < now + 2 * DAY]

    async def _check(self, agency: str, now: float) -> None:
        entry = next(
            (e for e in self.ctx.registry().systems.values() if e.agency.id == agency), None
        )
        names = {} if entry is None else {"vi": entry.agency.name_vi, "en": entry.agency.name_en}
        code = agency if entry is None else entry.agency.code
        for starts, ends in self.gaps(agency, now):
            notice = notice_for(
                agency, names, code, starts, ends, self.ctx.calendar.tz, f"/agency/{agency}/roster"
            )
            queued = await self.ctx.notices.send_notice(notice, audience(agency))
            log.info(
                "roster gap notice",
                extra={"agency": agency, "starts": starts, "ends": ends, "queued": queued},
            )
            if queued:
                self.ctx.count("roster_gaps")
