"""Monthly availability reports, per system and per agency, from the stored state changes.

``npsp-monitor report -c FILE --month 2026-11`` (see :mod:`monitor.report_cli`) renders them as
HTML (Vietnamese or English), CSV or JSON. The figures are computed here, from the
``state_changes``, ``maintenance`` and ``incidents`` tables, with these definitions:

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

import csv
import dataclasses
import datetime as dt
import html
import io
import itertools
import json
import math
import re
import sqlite3
import time
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from .registry import Registry, SystemEntry
from .state import GATEWAY_AGENCY, State
from .store import Store

__all__ = [
    "TZ",
    "AgencyReport",
    "Figures",
    "Report",
    "ReportError",
    "SystemReport",
    "build_report",
    "format_availability",
    "format_hmm",
    "month_bounds",
    "render_csv",
    "render_html",
    "render_json",
    "report_as_dict",
]

#: The time zone of the report's months and of the times it shows.
TZ = ZoneInfo("Asia/Ho_Chi_Minh")

Language = Literal["vi", "en"]

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_FAILING = frozenset({State.DOWN, State.FLAPPING})


class ReportError(ValueError):
    """The report cannot be made as asked (a malformed month, a month not begun yet)."""


# ----- figures ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one system, one agency or the whole portal over the period."""

    up_seconds: float = 0.0
    down_seconds: float = 0.0  # DOWN or FLAPPING
    unreachable_seconds: float = 0.0  # UNREACHABLE: a parent is down
    not_monitored_seconds: float = 0.0  # no state yet, PENDING, UNKNOWN
    maintenance_seconds: float = 0.0
    degraded_seconds: float = 0.0  # the part of up_seconds in DEGRADED
    outages: int = 0
    incidents: int = 0
    sla_breaches: int = 0

    @property
    def unavailable_seconds(self) -> float:
        return self.down_seconds + self.unreachable_seconds

    @property
    def monitored_seconds(self) -> float:
        return self.up_seconds + self.unavailable_seconds

    @property
    def availability(self) -> float | None:
        """Up time over monitored time, in percent; None when nothing was monitored."""
        monitored = self.monitored_seconds
        return None if monitored <= 0 else 100.0 * self.up_seconds / monitored

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            *(getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(Figures))
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "monitored_seconds": self.monitored_seconds,
            "unavailable_seconds": self.unavailable_seconds,
            "availability_percent": self.availability,
        }


@dataclass(frozen=True, slots=True)
class SystemReport:
    """One system's line of the report."""

    agency: str
    system: str
    name: str  # as configured (Vietnamese)
    name_en: str | None
    kind: str
    figures: Figures

    @property
    def key(self) -> str:
        return f"{self.agency}/{self.system}"


@dataclass(frozen=True, slots=True)
class AgencyReport:
    """One agency: its systems and their aggregate (incidents include those with no system)."""

    id: str
    name_vi: str
    name_en: str
    code: str
    kind: str
    systems: tuple[SystemReport, ...]
    figures: Figures


@dataclass(frozen=True, slots=True)
class Report:
    """A month's report. Times are epoch seconds; ``until`` < ``ends`` for a month in progress."""

    month: str  # YYYY-MM
    starts: float
    ends: float
    until: float
    generated_at: float
    agencies: tuple[AgencyReport, ...]
    totals: Figures

    @property
    def complete(self) -> bool:
        return self.until >= self.ends


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


# ----- reading the store (on the store's thread) ------------------------------------------------

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class _Window:
    scope: tuple[str, ...]
    starts: float
    ends: float  # the cancellation when it was cancelled in progress

    def covers(self, agency: str, system: str) -> bool:
        # As monitor.rules.maintenance.Window.covers.
        if agency == GATEWAY_AGENCY:
            return False
        return not self.scope or agency in self.scope or f"{agency}/{system}" in self.scope


@dataclass(frozen=True, slots=True)
class _Incident:
    agency: str
    system: str | None
    opened_at: float
    breached: float | None  # when it breached its SLA, if it did


@dataclass(frozen=True, slots=True)
class _History:
    """A system's states from ``since``: ``states[i]`` holds from ``times[i]`` on."""

    times: list[float]
    states: list[State | None]


def _windows(db: sqlite3.Connection, end: float) -> list[_Window]:
    rows = db.execute(
        "SELECT scope, starts, ends, cancelled_at, announced_at FROM maintenance WHERE starts < ?"
        " ORDER BY starts, id",
        (end,),
    ).fetchall()
    out = []
    for scope, planned, ends, cancelled_at, announced_at in rows:
        # A window entered after the fact must not erase an outage: it counts from when it
        # was announced.
        starts = max(planned, announced_at)
        stop = ends if cancelled_at is None else min(ends, cancelled_at)
        if stop > starts:
            out.append(_Window(tuple(json.loads(scope)), starts, stop))
    return out


def _incidents(db: sqlite3.Connection, start: float, end: float, now: float) -> list[_Incident]:
    rows = db.execute(
        "SELECT agency, system, opened_at, due_at, resolved_at, breached_at FROM incidents"
        " WHERE (opened_at >= ? AND opened_at < ?) OR (breached_at >= ? AND breached_at < ?)"
        " OR (due_at >= ? AND due_at < ?)",
        (start, end, start, end, start, end),
    ).fetchall()
    out = []
    for agency, system, opened_at, due_at, resolved_at, breached_at in rows:
        breached: float | None = breached_at
        if breached is None:
            late = resolved_at > due_at if resolved_at is not None else now > due_at
            breached = due_at if late else None
        out.append(_Incident(agency, system, opened_at, breached))
    return out


def _state(value: str) -> State | None:
    try:
        return State(value)
    except ValueError:
        return None  # written by a newer version: not monitored as far as we can tell


def _history(
    db: sqlite3.Connection, agency: str, system: str, since: float, end: float
) -> _History:
    before = db.execute(
        "SELECT new_state FROM state_changes WHERE agency = ? AND system = ? AND ts < ?"
        " ORDER BY ts DESC, id DESC LIMIT 1",
        (agency, system, since),
    ).fetchone()
    times: list[float] = [since]
    states: list[State | None] = [None if before is None else _state(before[0])]
    for ts, new_state in db.execute(
        "SELECT ts, new_state FROM state_changes WHERE agency = ? AND system = ?"
        " AND ts >= ? AND ts < ? ORDER BY ts, id",
        (agency, system, since, end),
    ):
        times.append(ts)
        states.append(_state(new_state))
    return _History(times, states)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Overlapping or touching intervals joined, in order."""
    merged: list[Interval] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _covering(intervals: Sequence[Interval], t: float) -> Interval | None:
    """The interval ``[a, b)`` holding ``t``, if any (``intervals`` merged)."""
    i = bisect_right(intervals, (t, math.inf)) - 1
    if i >= 0 and intervals[i][0] <= t < intervals[i][1]:
        return intervals[i]
    return None


# ----- the figures of one system (pure) ---------------------------------------------------------


def _measure(history: _History, covered: Sequence[Interval], start: float, end: float) -> Figures:
    """Seconds per bucket and outages begun in ``[start, end)`` (see the module's docstring).

    ``history`` must begin at or before ``start``, and at or before the start of any
    maintenance interval holding ``start`` or ending at it (to know whether an outage began
    inside it).
    """
    times, states = history.times, history.states
    # When the current run of DOWN/FLAPPING began at each step (-inf: before the history).
    run_starts: list[float | None] = []
    run: float | None = None
    for i, (t, state) in enumerate(zip(times, states, strict=True)):
        if state in _FAILING:
            if run is None:
                run = t if i > 0 else -math.inf
        else:
            run = None
        run_starts.append(run)

    def at(t: float) -> int:
        return bisect_right(times, t) - 1

    seconds = dict.fromkeys(
        ("up", "down", "unreachable", "unmonitored", "maintenance", "degraded"), 0.0
    )
    cuts = {start, end}
    cuts.update(t for t in times if start < t < end)
    cuts.update(x for interval in covered for x in interval if start < x < end)
    edges = sorted(cuts)
    for a, b in itertools.pairwise(edges):
        state = states[at(a)]
        if _covering(covered, a) is not None or state is State.MAINTENANCE:
            bucket = "maintenance"
        elif state is State.UP:
            bucket = "up"
        elif state is State.DEGRADED:
            bucket = "up"
            seconds["degraded"] += b - a
        elif state in _FAILING:
            bucket = "down"
        elif state is State.UNREACHABLE:
            bucket = "unreachable"
        else:
            bucket = "unmonitored"
        seconds[bucket] += b - a

    outages = sum(
        1
        for i in range(1, len(times))
        if start <= times[i] < end
        and states[i] in _FAILING
        and states[i - 1] not in _FAILING
        and _covering(covered, times[i]) is None
    )
    for a, b in covered:  # down inside a window and still down when it ends: it overran
        if start <= b < end:
            i = at(b)
            began = run_starts[i]
            if states[i] in _FAILING and began is not None and a <= began < b:
                outages += 1
    return Figures(
        up_seconds=seconds["up"],
        down_seconds=seconds["down"],
        unreachable_seconds=seconds["unreachable"],
        not_monitored_seconds=seconds["unmonitored"],
        maintenance_seconds=seconds["maintenance"],
        degraded_seconds=seconds["degraded"],
        outages=outages,
    )


# ----- building -------------------------------------------------------------------------------


def _count(incidents: Iterable[_Incident], start: float, end: float) -> tuple[int, int]:
    opened = breached = 0
    for incident in incidents:
        opened += start <= incident.opened_at < end
        breached += incident.breached is not None and start <= incident.breached < end
    return opened, breached


def _gather(
    db: sqlite3.Connection, entries: Sequence[SystemEntry], start: float, end: float, now: float
) -> tuple[dict[str, Figures], list[_Incident]]:
    windows = _windows(db, end)
    figures: dict[str, Figures] = {}
    for entry in entries:
        agency, system = entry.agency.id, entry.system.id
        covered = _merge((w.starts, w.ends) for w in windows if w.covers(agency, system))
        # From the start of a window holding (or ending at) the start: did an outage begin in it?
        since = min((a for a, b in covered if a <= start <= b), default=start)
        history = _history(db, agency, system, since, end)
        figures[entry.key] = _measure(history, covered, start, end)
    return figures, _incidents(db, start, end, now)


async def build_report(
    store: Store, registry: Registry, month: str, *, now: float | None = None
) -> Report:
    """The report of ``month`` (``YYYY-MM``) for the systems of ``registry``.

    ``now`` (epoch seconds, default the clock) ends the period of a month in progress and
    decides whether an open incident is past its due time. Raises :class:`ReportError` for a
    malformed month or one that has not begun.
    """
    now = time.time() if now is None else now
    starts, ends = month_bounds(month)
    if starts >= now:
        raise ReportError(f"month {month} has not begun yet: nothing to report")
    until = min(ends, now)
    entries = list(registry.systems.values())
    figures, incidents = await store.transact(lambda db: _gather(db, entries, starts, until, now))

    by_agency: dict[str, list[SystemEntry]] = {}
    for entry in entries:
        by_agency.setdefault(entry.agency.id, []).append(entry)
    agencies = []
    for agency_id, members in by_agency.items():
        mine = [i for i in incidents if i.agency == agency_id]
        systems = []
        for entry in members:
            opened, breached = _count(
                (i for i in mine if i.system == entry.system.id), starts, until
            )
            systems.append(
                SystemReport(
                    agency=agency_id,
                    system=entry.system.id,
                    name=entry.system.name,
                    name_en=entry.system.name_en,
                    kind=entry.system.kind,
                    figures=dataclasses.replace(
                        figures[entry.key], incidents=opened, sla_breaches=breached
                    ),
                )
            )
        opened, breached = _count(mine, starts, until)
        total = sum((s.figures for s in systems), Figures())
        info = members[0].agency
        agencies.append(
            AgencyReport(
                id=agency_id,
                name_vi=info.name_vi,
                name_en=info.name_en,
                code=info.code,
                kind=info.kind,
                systems=tuple(systems),
                figures=dataclasses.replace(total, incidents=opened, sla_breaches=breached),
            )
        )
    return Report(
        month=month,
        starts=starts,
        ends=ends,
        until=until,
        generated_at=now,
        agencies=tuple(agencies),
        totals=sum((a.figures for a in agencies), Figures()),
    )


# ----- formatting -------------------------------------------------------------------------------


def format_hmm(seconds: float) -> str:
    """``h:mm``, to the nearest minute (hours go past 24): 5400 → ``1:30``."""
    minutes = math.floor(seconds / 60 + 0.5)
    return f"{minutes // 60}:{minutes % 60:02d}"


def format_availability(value: float | None, language: Language = "en") -> str:
    """Three decimals, truncated (99.9996 is ``99.999``, not ``100.000``); ``""`` for None.

    Vietnamese writes a decimal comma.
    """
    if value is None:
        return ""
    truncated = math.floor(round(value * 1000, 6)) / 1000
    text = f"{truncated:.3f}"
    return text.replace(".", ",") if language == "vi" else text


def _moment(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, TZ)


def _iso(ts: float) -> str:
    return _moment(ts).isoformat(timespec="seconds")


def report_as_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-able data (seconds unrounded, availability in percent)."""
    return {
        "month": report.month,
        "starts": _iso(report.starts),
        "ends": _iso(report.ends),
        "until": _iso(report.until),
        "complete": report.complete,
        "generated_at": _iso(report.generated_at),
        "time_zone": "Asia/Ho_Chi_Minh",
        "totals": report.totals.as_dict(),
        "agencies": [
            {
                "id": a.id,
                "name_vi": a.name_vi,
                "name_en": a.name_en,
                "code": a.code,
                "kind": a.kind,
                **a.figures.as_dict(),
                "systems": [
                    {
                        "system": s.system,
                        "key": s.key,
                        "name": s.name,
                        "name_en": s.name_en,
                        "kind": s.kind,
                        **s.figures.as_dict(),
                    }
                    for s in a.systems
                ],
            }
            for a in report.agencies
        ],
    }


def render_json(report: Report) -> str:
    return json.dumps(report_as_dict(report), ensure_ascii=False, indent=1) + "\n"


CSV_HEADER = (
    "month",
    "scope",
    "agency",
    "agency_name",
    "agency_code",
    "system",
    "system_name",
    "system_kind",
    "availability_percent",
    "up_seconds",
    "down_seconds",
    "down_hmm",
    "unreachable_seconds",
    "unreachable_hmm",
    "monitored_seconds",
    "not_monitored_seconds",
    "maintenance_seconds",
    "degraded_seconds",
    "outages",
    "incidents",
    "sla_breaches",
)


def _csv_figures(f: Figures) -> list[str]:
    return [
        format_availability(f.availability, "en"),
        f"{f.up_seconds:.0f}",
        f"{f.down_seconds:.0f}",
        format_hmm(f.down_seconds),
        f"{f.unreachable_seconds:.0f}",
        format_hmm(f.unreachable_seconds),
        f"{f.monitored_seconds:.0f}",
        f"{f.not_monitored_seconds:.0f}",
        f"{f.maintenance_seconds:.0f}",
        f"{f.degraded_seconds:.0f}",
        str(f.outages),
        str(f.incidents),
        str(f.sla_breaches),
    ]


def render_csv(report: Report) -> str:
    """A header, then per agency one row per system (scope ``system``) and one for the agency
    (scope ``agency``), then the portal's totals (scope ``portal``). Vietnamese names; write it
    as UTF-8. Seconds are rounded to whole seconds; an empty availability: not measured."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for a in report.agencies:
        for s in a.systems:
            writer.writerow(
                [
                    report.month,
                    "system",
                    a.id,
                    a.name_vi,
                    a.code,
                    s.system,
                    s.name,
                    s.kind,
                    *_csv_figures(s.figures),
                ]
            )
        writer.writerow(
            [report.month, "agency", a.id, a.name_vi, a.code, "", "", "", *_csv_figures(a.figures)]
        )
    writer.writerow([report.month, "portal", "", "", "", "", "", "", *_csv_figures(report.totals)])
    return out.getvalue()


_WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Báo cáo khả dụng tháng {month} — Cổng Dịch vụ công quốc gia",
        "period": "Kỳ báo cáo: {start} – {end} (giờ Việt Nam, UTC+07:00).",
        "partial": "Tháng chưa kết thúc: số liệu tính đến {until}.",
        "generated": "Lập lúc {at}.",
        "summary": "Tổng hợp theo cơ quan",
        "agency": "Cơ quan",
        "system": "Hệ thống",
        "kind": "Loại",
        "availability": "Khả dụng (%)",
        "down": "Mất kết nối (h:mm)",
        "outages": "Số lần mất kết nối",
        "unreachable": "Không truy cập được do hệ thống phụ thuộc (h:mm)",
        "monitored": "Thời gian giám sát (h:mm)",
        "not_monitored": "Không giám sát (h:mm)",
        "maintenance": "Bảo trì (h:mm)",
        "degraded": "Trong đó suy giảm (h:mm)",
        "incidents": "Sự cố",
        "breaches": "Quá hạn xử lý",
        "total": "Cộng",
        "portal": "Toàn Cổng",
        "none": "không đo được",
        "note": (
            "Thời gian bảo trì và thời gian không giám sát (chưa có trạng thái hoặc trạng thái "
            "chưa xác định) không được tính vào tỷ lệ khả dụng."
        ),
        "definitions": "Cách tính",
        "def_availability": (
            "Khả dụng = thời gian hoạt động / thời gian giám sát. Thời gian giám sát gồm thời "
            "gian hoạt động (UP), mất kết nối (DOWN hoặc chập chờn) và không truy cập được do "
            "hệ thống phụ thuộc bị mất kết nối (UNREACHABLE, tính là không khả dụng nhưng ghi "
            "riêng)."
        ),
        "def_maintenance": (
            "Thời gian trong các đợt bảo trì đã thông báo (không bị hủy) áp dụng cho hệ thống "
            "không được tính vào thời gian khả dụng lẫn không khả dụng."
        ),
        "def_not_monitored": (
            "Thời gian chưa có trạng thái hoặc trạng thái chưa xác định (không giám sát) "
            "không được tính."
        ),
        "def_outages": (
            "Số lần mất kết nối: số lần hệ thống chuyển sang DOWN hoặc chập chờn trong tháng, "
            "ngoài thời gian bảo trì."
        ),
        "def_incidents": (
            "Sự cố: số sự cố mở trong tháng (của cơ quan: kể cả yêu cầu hỗ trợ không gắn với "
            "hệ thống); quá hạn xử lý: số sự cố vượt thời hạn xử lý trong tháng."
        ),
        "def_agency": (
            "Số liệu của cơ quan là tổng các hệ thống của cơ quan (thời gian tính theo "
            "hệ thống × giờ)."
        ),
    },
    "en": {
        "title": "Availability report {month} — National Public Service Portal",
        "period": "Period: {start} – {end} (Vietnam time, UTC+07:00).",
        "partial": "The month is not over: figures up to {until}.",
        "generated": "Generated {at}.",
        "summary": "Summary by agency",
        "agency": "Agency",
        "system": "System",
        "kind": "Kind",
        "availability": "Availability (%)",
        "down": "Down (h:mm)",
        "outages": "Outages",
        "unreachable": "Unreachable, parent down (h:mm)",
        "monitored": "Monitored (h:mm)",
        "not_monitored": "Not monitored (h:mm)",
        "maintenance": "Maintenance (h:mm)",
        "degraded": "Of which degraded (h:mm)",
        "incidents": "Incidents",
        "breaches": "SLA breaches",
        "total": "Total",
        "portal": "Whole portal",
        "none": "not measured",
        "note": (
            "Maintenance time and time not monitored (no state yet, or an unknown state) are "
            "left out of the availability."
        ),
        "definitions": "Definitions",
        "def_availability": (
            "Availability = up time / monitored time. Monitored time is the time UP, DOWN or "
            "FLAPPING, and UNREACHABLE (a system it depends on is down: unavailable, but shown "
            "apart)."
        ),
        "def_maintenance": (
            "Time inside announced maintenance windows (not cancelled) covering the system counts "
            "neither as available nor as unavailable."
        ),
        "def_not_monitored": (
            "Time with no state yet or an unknown state (not monitored) is left out."
        ),
        "def_outages": (
            "Outages: changes into DOWN or FLAPPING during the month, outside maintenance."
        ),
        "def_incidents": (
            "Incidents opened during the month (an agency's include support requests about no "
            "particular system); SLA breaches: incidents that went past their due time during "
            "the month."
        ),
        "def_agency": ("An agency's figures add up its systems (times are system-hours)."),
    },
}

_KINDS: dict[str, dict[str, str]] = {
    "vi": {
        "secure-server": "Máy chủ bảo mật",
        "one-stop": "Một cửa điện tử",
        "public-service-portal": "Cổng dịch vụ công",
        "integration": "Tích hợp",
        "other": "Khác",
    },
    "en": {
        "secure-server": "Secure server",
        "one-stop": "One-stop system",
        "public-service-portal": "Public service portal",
        "integration": "Integration",
        "other": "Other",
    },
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:0 0 2em}"
    "th,td{border:1px solid #aaa;padding:.25em .5em;vertical-align:top}"
    "th{background:#eee;text-align:left}td.n{text-align:right;white-space:nowrap}"
    "tr.total td{font-weight:bold;background:#f6f6f6}.bad{color:#a00}"
)


def _local(ts: float) -> str:
    return _moment(ts).strftime("%H:%M %d/%m/%Y")


def render_html(report: Report, language: Language = "vi") -> str:
    """A complete HTML page (no JavaScript, no external resources): a summary table of the
    agencies, then one table per agency, then the definitions."""
    w = _WORDS[language]
    e = html.escape
    year, number = report.month.split("-")
    month_text = f"{number}/{year}" if language == "vi" else report.month

    def availability(f: Figures) -> str:
        value = f.availability
        return e(w["none"]) if value is None else format_availability(value, language)

    def cells(f: Figures) -> str:
        numbers = [
            availability(f),
            format_hmm(f.down_seconds),
            str(f.outages),
            format_hmm(f.unreachable_seconds),
            format_hmm(f.monitored_seconds),
            format_hmm(f.not_monitored_seconds),
            format_hmm(f.maintenance_seconds),
            format_hmm(f.degraded_seconds),
            str(f.incidents),
            f'<span class="bad">{f.sla_breaches}</span>' if f.sla_breaches else "0",
        ]
        return "".join(f'<td class="n">{n}</td>' for n in numbers)

    figure_heads = "".join(
        f"<th>{e(w[k])}</th>"
        for k in (
            "availability",
            "down",
            "outages",
            "unreachable",
            "monitored",
            "not_monitored",
            "maintenance",
            "degraded",
            "incidents",
            "breaches",
        )
    )

    def agency_name(a: AgencyReport) -> str:
        return a.name_vi if language == "vi" else a.name_en

    def system_name(s: SystemReport) -> str:
        return s.name if language == "vi" or not s.name_en else s.name_en

    title = w["title"].format(month=month_text)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{language}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(w['period'].format(start=_local(report.starts), end=_local(report.ends)))}</p>",
    ]
    if not report.complete:
        parts.append(
            f"<p><strong>{e(w['partial'].format(until=_local(report.until)))}</strong></p>"
        )
    parts.append(f"<p>{e(w['note'])}</p>")

    parts += [
        f"<h2>{e(w['summary'])}</h2>",
        "<table>",
        f"<thead><tr><th>{e(w['agency'])}</th>{figure_heads}</tr></thead>",
        "<tbody>",
    ]
    for a in report.agencies:
        parts.append(
            f'<tr><td><a href="#{e(a.id)}">{e(agency_name(a))}</a></td>{cells(a.figures)}</tr>'
        )
    parts += [
        f'<tr class="total"><td>{e(w["portal"])}</td>{cells(report.totals)}</tr>',
        "</tbody>",
        "</table>",
    ]

    for a in report.agencies:
        parts += [
            f'<h2 id="{e(a.id)}">{e(agency_name(a))} ({e(a.code)})</h2>',
            "<table>",
            f"<thead><tr><th>{e(w['system'])}</th><th>{e(w['kind'])}</th>{figure_heads}</tr>"
            "</thead>",
            "<tbody>",
        ]
        for s in a.systems:
            parts.append(
                f"<tr><td>{e(system_name(s))}<br><small>{e(s.key)}</small></td>"
                f"<td>{e(_KINDS[language].get(s.kind, s.kind))}</td>{cells(s.figures)}</tr>"
            )
        parts += [
            f'<tr class="total"><td colspan="2">{e(w["total"])}</td>{cells(a.figures)}</tr>',
            "</tbody>",
            "</table>",
        ]

    parts += [f"<h2>{e(w['definitions'])}</h2>", "<ul>"]
    for key in (
        "def_availability",
        "def_maintenance",
        "def_not_monitored",
        "def_outages",
        "def_incidents",
        "def_agency",
    ):
        parts.append(f"<li>{e(w[key])}</li>")
    parts += [
        "</ul>",
        f"<p><small>{e(w['generated'].format(at=_local(report.generated_at)))}</small></p>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"
