"""What a report is made of: the figures of a system, an agency and the portal, and the rows
read from the store to compute them. Plain data; the definitions are in
:mod:`monitor.reports.figures`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ..rules.seniorrights.model import AgencySeniorRights
from ..state import GATEWAY_AGENCY, State

__all__ = [
    "TZ",
    "AgencyReport",
    "Figures",
    "History",
    "IncidentRow",
    "Interval",
    "MaintenanceRow",
    "MaintenanceSpan",
    "Report",
    "ReportError",
    "Sources",
    "SystemReport",
]

#: The time zone of the report's months and of the times it shows.
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class ReportError(ValueError):
    """The report cannot be made as asked (a malformed month, a month not begun yet)."""


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
    """A month's report (or a week's: ``month`` holds the period's name). Times are epoch
    seconds; ``until`` < ``ends`` for a month in progress."""

    month: str  # YYYY-MM
    starts: float
    ends: float
    until: float
    generated_at: float
    agencies: tuple[AgencyReport, ...]
    totals: Figures
    # One agency's part of a report (monitor.reports.periods.agency_report): its id; the
    # totals are then the agency's, and no line speaks for the whole portal.
    agency: str | None = None
    # Who held each agency's senior rights (agency-admin) at ``until``, and the grants and
    # revocations during the period (monitor.reports.senior): the report's agencies first, in
    # order, then any other agency that had some.
    senior_rights: tuple[AgencySeniorRights, ...] = ()

    @property
    def complete(self) -> bool:
        return self.until >= self.ends


# ----- what the store holds ---------------------------------------------------------------------

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class MaintenanceRow:
    """A maintenance window as stored (``scope``: agencies and system keys; empty: all)."""

    scope: tuple[str, ...]
    starts: float  # as planned
    ends: float
    cancelled_at: float | None
    announced_at: float


@dataclass(frozen=True, slots=True)
class MaintenanceSpan:
    """The time a window excludes (see :func:`monitor.reports.figures.excluded`)."""

    scope: tuple[str, ...]
    starts: float
    ends: float  # the cancellation when it was cancelled in progress

    def covers(self, agency: str, system: str) -> bool:
        # As monitor.rules.maintenance.Window.covers.
        if agency == GATEWAY_AGENCY:
            return False
        return not self.scope or agency in self.scope or f"{agency}/{system}" in self.scope


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """An incident's times as stored."""

    agency: str
    system: str | None
    opened_at: float
    due_at: float
    resolved_at: float | None
    breached_at: float | None  # when the daemon marked it breached


@dataclass(frozen=True, slots=True)
class History:
    """A system's states from ``since``: ``states[i]`` holds from ``times[i]`` on."""

    times: list[float]
    states: list[State | None]


@dataclass(frozen=True, slots=True)
class Sources:
    """Everything a report is computed from, by system key where it is per system."""

    covered: dict[str, list[Interval]]  # the maintenance covering it, merged, in order
    histories: dict[str, History]
    incidents: list[IncidentRow]
    # A past month's figures stored before its history was pruned (no incidents counted):
    # used instead of the history (monitor.reports.monthly).
    stored: dict[str, Figures] = dataclasses.field(default_factory=dict)
