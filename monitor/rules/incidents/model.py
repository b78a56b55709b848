"""An incident, and the rules about it that need neither the database nor the network: what
opens and closes an outage, what a person may write, and the SLA's due-time arithmetic."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from npsp_common.types import plain_line, plain_text

from ...alerting.messages import local_time
from ...registry import Registry
from ...state import State
from ...workdays import WorkCalendar

MAX_TEXT = 2000  # characters of a summary, a resolution or a name given from outside
OUTAGE = "outage"
REQUEST = "request"

BREACH_COUNTER = "incident_sla_breaches"
FIRING = (State.DOWN, State.FLAPPING)  # what the alert pipeline pages, hence what opens one
# Reachable again (slow or not): an outage is over, whatever warning remains.
RECOVERED = (State.UP, State.DEGRADED)
NO_DUE = float("inf")  # an outage's due_at: it escalates on wall-clock time instead
RESOLUTION = "connection restored"  # how the system resolves an outage's incident


class IncidentError(Exception):
    """An incident action that cannot be done (unknown id, already resolved, unknown agency…).

    The command line prints it on one line and exits with status 2.
    """


@dataclass(slots=True)
class Incident:
    """One row of the ``incidents`` table (times are epoch seconds)."""

    id: str
    agency: str
    system: str | None
    source: str
    summary: str
    opened_at: float
    due_at: float
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    reminded: int = 0
    breached_at: float | None = None
    received_at: float | None = None  # a request: when it was received (the SLA counts from it)
    complex: bool = False  # a request that cannot be handled within the SLA
    expected_completion: float | None = None  # published for a complex request; its due time
    escalation_step: int = 0  # an outage: the last step of the ladder taken (0: none)
    escalated_to: str | None = None  # ... and to whom
    escalated_at: float | None = None  # ... and when

    @property
    def received(self) -> float:
        """When the clock of this incident starts: a request's receipt, an outage's start."""
        return self.received_at if self.received_at is not None else self.opened_at

    @property
    def key(self) -> str:
        """``agency/system``, or the agency alone when no system is concerned."""
        return f"{self.agency}/{self.system}" if self.system else self.agency

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def outage_id(agency: str, system: str, since: float) -> str:
    """The alert pipeline's incident id of an outage that began at ``since``."""
    return f"{agency}/{system}@{int(since)}"


def outage(incident_id: str, agency: str, system: str, opened_at: float, summary: str) -> Incident:
    """An outage's incident: no working-hours due time (it escalates on wall-clock time)."""
    return Incident(incident_id, agency, system, OUTAGE, summary, opened_at, NO_DUE)


def next_request_id(ids: list[str]) -> str:
    """``req-<n>``, one more than the highest number among the requests' ``ids``."""
    numbers = [int(suffix) for ident in ids if (suffix := ident.removeprefix("req-")).isdigit()]
    return f"req-{max(numbers, default=0) + 1}"


# ----- what a person may write ------------------------------------------------------------------


def resolved_when_by(incident: Incident) -> str:
    at = local_time(incident.resolved_at) if incident.resolved_at is not None else "?"
    return f"at {at} by {incident.resolved_by}"


def checked_text(value: str, what: str, *, lines: bool = True) -> str:
    """``value`` stripped, if it is text a person wrote: not empty, at most
    :data:`MAX_TEXT` characters, no control characters (line feeds and tabs in ``lines``)."""
    value = value.strip()
    if not value:
        raise IncidentError(f"{what} must not be empty")
    if len(value) > MAX_TEXT:
        raise IncidentError(f"{what} is longer than {MAX_TEXT} characters")
    try:
        (plain_text if lines else plain_line)(value)
    except ValueError as exc:
        raise IncidentError(f"{what} {exc}") from None
    return value


#: How long before it is entered a request may have been received: older, it would be opened
#: already breached and page people about a request nobody can still act on in time.
MAX_RECEIVED_AGO = 30 * 86400.0


def check_received(received: float, now: float) -> None:
    if received > now:
        raise IncidentError(
            f"the request cannot have been received in the future ({local_time(received)});"
            f" it is {local_time(now)} now"
        )
    if received < now - MAX_RECEIVED_AGO:
        raise IncidentError(
            f"the request was received more than {int(MAX_RECEIVED_AGO // 86400)} days ago"
            f" ({local_time(received)}): enter it as received today, and say when it really"
            " came in its summary"
        )


def check_expected(calendar: WorkCalendar, agency: str, expected: float, received: float) -> None:
    if expected < received:
        raise IncidentError(
            f"the expected completion time ({local_time(expected)}) is before the request"
            f" was received ({local_time(received)})"
        )
    try:  # the reminders measure this interval in working hours
        calendar.working_hours_between(received, expected, agency)
    except (ValueError, OverflowError) as exc:
        raise IncidentError(f"cannot use that expected completion time: {exc}") from None


def check_complexity(is_complex: bool, expected_completion: float | None) -> None:
    """A complex request has a published expected completion time; only a complex one."""
    if is_complex and expected_completion is None:
        raise IncidentError(
            "a complex request needs the expected completion time published for it"
            " (--expected-completion; QĐ 31/2021, Chương VII, D.1)"
        )
    if not is_complex and expected_completion is not None:
        raise IncidentError(
            "only a complex request has a published expected completion time:"
            " mark it complex, or leave the time out (it is then due in the SLA's working hours)"
        )


def checked_system(registry: Registry, agency: str, system: str | None) -> str | None:
    """The system's id within ``agency`` (``agency/`` may prefix it), once both are known."""
    agencies = {entry.agency.id for entry in registry.systems.values()}
    if agency not in agencies:
        known = ", ".join(sorted(agencies)[:5]) or "none configured"
        raise IncidentError(f"unknown agency {agency!r} (known: {known})")
    if system is not None:
        system = system.removeprefix(f"{agency}/")
        if f"{agency}/{system}" not in registry.systems:
            raise IncidentError(f"agency {agency!r} has no system {system!r}")
    return system


# ----- the SLA's clock --------------------------------------------------------------------------


def request_due(
    calendar: WorkCalendar, agency: str, received: float, expected_completion: float | None
) -> float:
    """A request's due time: ``incident_sla`` working hours of the agency after it was
    received, or a complex one's published expected completion time."""
    try:  # also for a complex request: its receipt must lie within the calendar's years
        due = calendar.add_working_hours(
            received, calendar.settings.rules.incident_sla.value, agency
        )
    except (ValueError, OverflowError) as exc:
        raise IncidentError(f"cannot compute the SLA due time: {exc}") from None
    return due if expected_completion is None else expected_completion


def sla_hours(calendar: WorkCalendar, incident: Incident) -> float:
    """The working hours from receipt to the due time this request was given (the rule may
    have changed since; a complex one's ends at its expected completion)."""
    if incident.due_at == NO_DUE:
        return NO_DUE
    return calendar.working_hours_between(incident.received, incident.due_at, incident.agency)


def hours_left(calendar: WorkCalendar, incident: Incident, now: float) -> float:
    """Working hours from ``now`` to the due time (0 once it has passed)."""
    if now >= incident.due_at:
        return 0.0
    return calendar.working_hours_between(now, incident.due_at, incident.agency)
