"""A duty roster, no I/O: an agency's weekly shifts and dated overrides, who is on duty at a
moment, and the uncovered stretches of a span.

Times of day are ``HH:MM`` in the calendar's time zone (Asia/Ho_Chi_Minh); a shift belongs to
the weekday it starts on and ends past midnight when its end is before its start. An override
(a swap, a holiday watch, or ``nobody``) covers ``[starts, ends)`` in epoch seconds and, where
it covers a moment, wins over the weekly shifts.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

#: ``HH:MM``, 00:00 to 23:59.
CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
#: ISO weekdays: 1 is Monday, 7 is Sunday (bit ``day - 1`` of the stored mask).
WEEKDAYS = range(1, 8)
MAX_SHIFTS = 100
MAX_OVERRIDE = 31 * 86400.0  # seconds: a longer absence is a change of the weekly pattern


class RosterError(ValueError):
    """A refusal, with the HTTP status that says it (400, 403, 404, 409)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def minutes(clock: str) -> int:
    """``"17:30"`` → 1050."""
    if not CLOCK.match(clock):
        raise RosterError(f"{clock!r} is not a time of day HH:MM (00:00 to 23:59)")
    return int(clock[:2]) * 60 + int(clock[3:])


def mask_of(days: Iterable[int]) -> int:
    mask = 0
    for day in days:
        if day not in WEEKDAYS:
            raise RosterError(f"weekday {day!r}: 1 (Monday) to 7 (Sunday)")
        mask |= 1 << (day - 1)
    return mask


def days_of(mask: int) -> list[int]:
    return [d for d in WEEKDAYS if mask & (1 << (d - 1))]


@dataclass(frozen=True, slots=True)
class Shift:
    """A weekly shift: on ``weekdays`` (mask, bit 0 Monday) from ``starts`` to ``ends``."""

    agency: str
    weekdays: int
    starts: str
    ends: str
    contact_id: str
    note: str = ""
    id: int = 0
    created_by: str = ""
    created_at: float = 0.0
    updated_by: str = ""
    updated_at: float = 0.0

    @property
    def crosses_midnight(self) -> bool:
        return minutes(self.ends) < minutes(self.starts)

    def covers(self, local: dt.datetime) -> bool:
        """Whether the shift holds the local moment ``local`` (start included, end not)."""
        t = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
        s, e = minutes(self.starts), minutes(self.ends)
        day = local.isoweekday()
        on = bool(self.weekdays & (1 << (day - 1)))
        if s < e:
            return on and s <= t < e
        before = day - 1 if day > 1 else 7  # the day the night began
        return (on and t >= s) or (bool(self.weekdays & (1 << (before - 1))) and t < e)


@dataclass(frozen=True, slots=True)
class Override:
    """A dated override: ``contact_id`` on duty in ``[starts, ends)``; None: nobody."""

    agency: str
    starts: float
    ends: float
    contact_id: str | None
    note: str = ""
    id: int = 0
    created_by: str = ""
    created_at: float = 0.0
    updated_by: str = ""
    updated_at: float = 0.0

    def covers(self, ts: float) -> bool:
        return self.starts <= ts < self.ends


@dataclass(frozen=True, slots=True)
class Roster:
    """One agency's roster."""

    agency: str
    shifts: tuple[Shift, ...] = ()
    overrides: tuple[Override, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.shifts and not self.overrides

    def held(self, now: float) -> bool:
        """Whether the agency has a roster at ``now``: weekly shifts, or an override not yet
        over (one swap long past does not make every night a gap)."""
        return bool(self.shifts) or any(o.ends > now for o in self.overrides)

    def on_duty(self, ts: float, tz: ZoneInfo) -> list[str]:
        """The contact ids on duty at ``ts``: those of the overrides covering it if any (a
        ``nobody`` override leaves no one), else those of the weekly shifts holding it."""
        covering = [o for o in self.overrides if o.covers(ts)]
        if covering:
            ids = [o.contact_id for o in sorted(covering, key=lambda o: (o.starts, o.id))]
            return list(dict.fromkeys(i for i in ids if i is not None))
        local = dt.datetime.fromtimestamp(ts, tz)
        return list(dict.fromkeys(s.contact_id for s in self.shifts if s.covers(local)))

    def boundaries(
        self, start: float, end: float, tz: ZoneInfo, clocks: Iterable[dt.time] = ()
    ) -> list[float]:
        """Every moment in ``[start, end]`` at which who is on duty (or, with ``clocks``, the
        working hours) may change: midnights, shift ends, override ends."""
        times = {dt.time(int(c[:2]), int(c[3:])) for s in self.shifts for c in (s.starts, s.ends)}
        times |= set(clocks) | {dt.time(0, 0)}
        points = {start, end}
        day = dt.datetime.fromtimestamp(start, tz).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(end, tz).date() + dt.timedelta(days=1)
        while day <= last:
            for t in times:
                points.add(dt.datetime.combine(day, t, tzinfo=tz).timestamp())
            day += dt.timedelta(days=1)
        for o in self.overrides:
            points |= {o.starts, o.ends}
        return sorted(p for p in points if start <= p <= end)

    def gaps(
        self,
        start: float,
        end: float,
        tz: ZoneInfo,
        working: Callable[[float], bool],
        clocks: Iterable[dt.time] = (),
    ) -> list[tuple[float, float]]:
        """The stretches of ``[start, end)`` outside working hours (``working``, a moment →
        bool; ``clocks``: the times of day its spans begin and end) with nobody on duty,
        adjacent ones merged."""
        points = self.boundaries(start, end, tz, clocks)
        out: list[tuple[float, float]] = []
        for a, b in itertools.pairwise(points):
            middle = (a + b) / 2
            if working(middle) or self.on_duty(middle, tz):
                continue
            if out and out[-1][1] == a:
                out[-1] = (out[-1][0], b)
            else:
                out.append((a, b))
        return out


def roster_of(agency: str, shifts: Sequence[Shift], overrides: Sequence[Override]) -> Roster:
    return Roster(
        agency,
        tuple(s for s in shifts if s.agency == agency),
        tuple(o for o in overrides if o.agency == agency),
    )


__all__ = [
    "CLOCK",
    "MAX_OVERRIDE",
    "MAX_SHIFTS",
    "WEEKDAYS",
    "Override",
    "Roster",
    "RosterError",
    "Shift",
    "days_of",
    "mask_of",
    "minutes",
    "roster_of",
]
