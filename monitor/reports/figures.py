"""The figures of a monthly availability report: pure functions of the rows read from the
``state_changes``, ``maintenance`` and ``incidents`` tables (:mod:`monitor.reports.source`
reads them), with no I/O. The definitions:

* **The period** is the calendar month in Vietnam's time (Asia/Ho_Chi_Minh, UTC+7):
  ``[day 1 00:00 +07:00, day 1 of the next month 00:00 +07:00)``. A change at exactly the first
  instant belongs to the month; one at exactly the last boundary belongs to the next. For the
  current month the period stops at the moment the report is made (``complete`` is false); a
  month that has not begun is refused.
* **The timeline** of a system is rebuilt from its state changes: its state at the start of the
  period is the ``new_state`` of its last change before it (none: *not monitored* until its
  first change); each change holds until the next one (changes at the same instant are taken
  in the order they were stored).
* Every second of the period is in exactly one of these buckets, so they add up to the period:

  - **maintenance**: inside a maintenance window covering the system (the whole portal, its
    agency or the system itself, as :meth:`monitor.rules.maintenance.Window.covers`). A window
    cancelled before it started excludes nothing; one cancelled while in progress excludes the
    time until its cancellation (the daemon held alerts until then). Maintenance wins over
    every state below: what happens inside a window is neither available nor unavailable;
  - **up**: state UP or DEGRADED (reachable, with a warning such as slowness or a
    certificate expiring soon): available. The DEGRADED part is also given on its own
    (``degraded_seconds``, "of which degraded"); it is inside ``up_seconds``, not added to it;
  - **down**: state DOWN or FLAPPING: unavailable;
  - **unreachable**: state UNREACHABLE (a system it depends on is down): unavailable to its
    users too, so it counts against availability, but it is shown apart because the fault is
    the parent's;
  - a MAINTENANCE state recorded outside any window (the moment between a window's end and
    the verdict announced at it) counts as **maintenance** too;
  - **not monitored**: no state yet (before the first change), PENDING or UNKNOWN. Excluded
    from availability, and the report says so.

  *monitored* = up + down + unreachable; **availability** = up / monitored, in percent (shown
  truncated, never rounded up to 100 %), and *none* when nothing was monitored.
* **Outages** are the outages that *began* in the period: a change into DOWN or FLAPPING from
  any other state (DOWN → FLAPPING is the same outage; UNREACHABLE → DOWN is a new one: the
  parent is back, the fault is now the system's own). A change inside a maintenance window is
  not an outage; but a system that went down inside a window and is still down when the window
  ends has an outage beginning at the window's end (the maintenance overran), as an incident
  would be opened then. An outage still going on at the start of the period was counted in
  the month it began; its time in this period counts as down all the same.
* **Incidents**: incidents opened in the period (``opened_at``): for a system those with its
  agency and system; for an agency all of the agency's, support requests with no system
  included.
* **SLA breaches**: incidents that breached their SLA in the period. An incident breached if the
  daemon marked it (``breached_at``, which is then the moment counted), or it was resolved after
  its due time, or it is still open past it (both counted at ``due_at``).
* **An agency's figures** add up its systems' seconds (so its seconds are system-seconds) and
  outages; its availability is its systems' up / monitored. **The portal's totals** add up the
  agencies.

Limits (the history cannot tell): the time the daemon itself was stopped and the time our own
uplink was cut (the ``_gateway/uplink`` changes) count in the state last recorded, because no
state change records when either ended. Only the systems of the registry given are reported
(a system removed from the configuration is left out), in its order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence

from ..registry import SystemEntry
from ..state import State
from .model import (
    TZ,
    AgencyReport,
    Figures,
    History,
    IncidentRow,
    Interval,
    MaintenanceRow,
    MaintenanceSpan,
    Report,
    ReportError,
    Sources,
    SystemReport,
)

__all__ = [
    "assemble",
    "breached",
    "covered",
    "excluded",
    "history_since",
    "measure",
    "merge",
    "month_bounds",
]

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_FAILING = frozenset({State.DOWN, State.FLAPPING})


# ----- the period -------------------------------------------------------------------------------


def month_bounds(month: str) -> tuple[float, float]:
    """``[start, end)`` of a ``YYYY-MM`` month in Vietnam's time, as epoch seconds."""
    found = _MONTH.fullmatch(month)
    if found is None:
        raise ReportError(f"invalid month {month!r}: write YYYY-MM, e.g. 2026-11")
    year, number = int(found[1]), int(found[2])
    try:
        start = dt.datetime(year, number, 1, tzinfo=TZ)
        end = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=TZ)
    except ValueError:
        raise ReportError(f"invalid month {month!r}: write YYYY-MM, e.g. 2026-11") from None
    return start.timestamp(), end.timestamp()


# ----- maintenance and incidents ----------------------------------------------------------------


def excluded(row: MaintenanceRow) -> MaintenanceSpan | None:
    """The time a stored window excludes; None if nothing (cancelled before it started)."""
    # A window entered after the fact must not erase an outage: it counts from when it was
    # announced.
    starts = max(row.starts, row.announced_at)
    stop = row.ends if row.cancelled_at is None else min(row.ends, row.cancelled_at)
    return MaintenanceSpan(row.scope, starts, stop) if stop > starts else None


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Overlapping or touching intervals joined, in order."""
    merged: list[Interval] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def covered(spans: Iterable[MaintenanceSpan], agency: str, system: str) -> list[Interval]:
    """The maintenance covering one system, merged."""
    return merge((s.starts, s.ends) for s in spans if s.covers(agency, system))


def history_since(covered: Sequence[Interval], start: float) -> float:
    """Where a system's history must begin: at ``start``, or at the start of a window holding
    (or ending at) it, to know whether an outage began inside that window."""
    return min((a for a, b in covered if a <= start <= b), default=start)


def _covering(intervals: Sequence[Interval], t: float) -> Interval | None:
    """The interval ``[a, b)`` holding ``t``, if any (``intervals`` merged)."""
    i = bisect_right(intervals, (t, math.inf)) - 1
    if i >= 0 and intervals[i][0] <= t < intervals[i][1]:
        return intervals[i]
    return None


def breached(incident: IncidentRow, now: float) -> float | None:
    """When an incident breached its SLA: when the daemon marked it, else at its due time if
    it was resolved after it or is still open at ``now`` past it; None if it did not."""
    if incident.breached_at is not None:
        return incident.breached_at
    if incident.resolved_at is not None:
        late = incident.resolved_at > incident.due_at
    else:
        late = now > incident.due_at
    return incident.due_at if late else None


def _count(
    incidents: Iterable[IncidentRow], start: float, end: float, now: float
) -> tuple[int, int]:
    """Incidents opened in ``[start, end)``, and SLA breaches in it."""
    opened = late = 0
    for incident in incidents:
        opened += start <= incident.opened_at < end
        when = breached(incident, now)
        late += when is not None and start <= when < end
    return opened, late


# ----- the figures of one system ----------------------------------------------------------------


def _bucket(state: State | None, in_window: bool) -> str:
    if in_window or state is State.MAINTENANCE:
        return "maintenance"
    if state is State.UP:
        return "up"
    if state is State.DEGRADED:
        return "degraded"  # up, and counted apart too
    if state in _FAILING:
        return "down"
    if state is State.UNREACHABLE:
        return "unreachable"
    return "unmonitored"


def _seconds(
    history: History, covered: Sequence[Interval], start: float, end: float
) -> dict[str, float]:
    """Seconds per bucket in ``[start, end)``."""
    times, states = history.times, history.states
    seconds = dict.fromkeys(
        ("up", "down", "unreachable", "unmonitored", "maintenance", "degraded"), 0.0
    )
    cuts = {start, end}
    cuts.update(t for t in times if start < t < end)
    cuts.update(x for interval in covered for x in interval if start < x < end)
    for a, b in itertools.pairwise(sorted(cuts)):
        bucket = _bucket(states[bisect_right(times, a) - 1], _covering(covered, a) is not None)
        if bucket == "degraded":
            seconds["degraded"] += b - a
            bucket = "up"
        seconds[bucket] += b - a
    return seconds


def _run_starts(history: History) -> list[float | None]:
    """When the current run of DOWN/FLAPPING began at each step (-inf: before the history)."""
    run_starts: list[float | None] = []
    run: float | None = None
    for i, (t, state) in enumerate(zip(history.times, history.states, strict=True)):
        if state in _FAILING:
            if run is None:
                run = t if i > 0 else -math.inf
        else:
            run = None
        run_starts.append(run)
    return run_starts


def _outages(history: History, covered: Sequence[Interval], start: float, end: float) -> int:
    """Outages begun in ``[start, end)``: changes into DOWN/FLAPPING outside maintenance, and
    systems down inside a window that are still down when it ends (it overran)."""
    times, states = history.times, history.states
    outages = sum(
        1
        for i in range(1, len(times))
        if start <= times[i] < end
        and states[i] in _FAILING
        and states[i - 1] not in _FAILING
        and _covering(covered, times[i]) is None
    )
    run_starts = _run_starts(history)
    for a, b in covered:
        if start <= b < end:
            i = bisect_right(times, b) - 1
            began = run_starts[i]
            if states[i] in _FAILING and began is not None and a <= began < b:
                outages += 1
    return outages


def measure(history: History, covered: Sequence[Interval], start: float, end: float) -> Figures:
    """Seconds per bucket and outages begun in ``[start, end)`` (see the module's docstring).

    ``history`` must begin at or before ``start``, and at or before the start of any
    maintenance interval holding ``start`` or ending at it (to know whether an outage began
    inside it: :func:`history_since`).
    """
    seconds = _seconds(history, covered, start, end)
    return Figures(
        up_seconds=seconds["up"],
        down_seconds=seconds["down"],
        unreachable_seconds=seconds["unreachable"],
        not_monitored_seconds=seconds["unmonitored"],
        maintenance_seconds=seconds["maintenance"],
        degraded_seconds=seconds["degraded"],
        outages=_outages(history, covered, start, end),
    )


# ----- the report -------------------------------------------------------------------------------


def _system(
    entry: SystemEntry,
    sources: Sources,
    incidents: Iterable[IncidentRow],
    start: float,
    end: float,
    now: float,
) -> SystemReport:
    figures = sources.stored.get(entry.key)
    if figures is None:
        figures = measure(sources.histories[entry.key], sources.covered[entry.key], start, end)
    opened, late = _count(incidents, start, end, now)
    return SystemReport(
        agency=entry.agency.id,
        system=entry.system.id,
        name=entry.system.name,
        name_en=entry.system.name_en,
        kind=entry.system.kind,
        figures=dataclasses.replace(figures, incidents=opened, sla_breaches=late),
    )


def _agency(
    members: Sequence[SystemEntry], sources: Sources, start: float, end: float, now: float
) -> AgencyReport:
    info = members[0].agency
    mine = [i for i in sources.incidents if i.agency == info.id]
    systems = tuple(
        _system(entry, sources, (i for i in mine if i.system == entry.system.id), start, end, now)
        for entry in members
    )
    opened, late = _count(mine, start, end, now)
    total = sum((s.figures for s in systems), Figures())
    return AgencyReport(
        id=info.id,
        name_vi=info.name_vi,
        name_en=info.name_en,
        code=info.code,
        kind=info.kind,
        systems=systems,
        figures=dataclasses.replace(total, incidents=opened, sla_breaches=late),
    )


def assemble(
    month: str,
    bounds: tuple[float, float],
    until: float,
    now: float,
    entries: Sequence[SystemEntry],
    sources: Sources,
) -> Report:
    """The report of ``entries`` (in their order, grouped by agency) over
    ``[bounds[0], until)``, ``until`` being the month's end or ``now`` if it is sooner."""
    starts, ends = bounds
    by_agency: dict[str, list[SystemEntry]] = {}
    for entry in entries:
        by_agency.setdefault(entry.agency.id, []).append(entry)
    agencies = tuple(
        _agency(members, sources, starts, until, now) for members in by_agency.values()
    )
    return Report(
        month=month,
        starts=starts,
        ends=ends,
        until=until,
        generated_at=now,
        agencies=agencies,
        totals=sum((a.figures for a in agencies), Figures()),
    )
