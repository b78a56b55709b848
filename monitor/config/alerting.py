"""The ``alerting:`` section of the daemon config."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from npsp_common.types import Duration, StrictModel, format_duration

Target = Literal["technical-admins", "high-level-admins", "operations"]
Severity = Literal["critical", "warning"]


class RouteMatch(StrictModel):
    """Which alerts a route takes; an empty list matches everything."""

    agency: list[str] = []
    agency_kind: list[Literal["ministry", "province", "sector-agency"]] = []
    system_kind: list[
        Literal["secure-server", "one-stop", "public-service-portal", "integration", "other"]
    ] = []
    severity: list[Severity] = []


class Route(StrictModel):
    """Send matching alerts to these groups of people; the first match wins unless ``continue``."""

    match: RouteMatch = RouteMatch()
    notify: Annotated[list[Target], Field(min_length=1)]
    continue_: bool = Field(default=False, alias="continue")


class OperationsContact(StrictModel):
    """A member of the Government Office operations team (VPCP)."""

    name: str
    phone: Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")] | None = None
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    portal_account: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None
    webhook: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] | None = Field(
        default=None, description="The name of a receiver in channels.webhook.endpoints."
    )
    channels: Annotated[list[Literal["sms", "email", "inbox", "webhook"]], Field(min_length=1)] = [
        "email",
        "inbox",
    ]
    language: Literal["vi", "en"] = "vi"


class Silence(StrictModel):
    """Mute alerts of matching systems until a time (config-level; the API adds more later)."""

    agency: str
    system: str | None = None  # None: every system of the agency
    starts: float | None = None  # epoch seconds; None: now
    ends: float
    reason: Annotated[str, Field(min_length=1)]


class OutboxSettings(StrictModel):
    """Retries of the durable outbox."""

    max_attempts: Annotated[int, Field(ge=1, le=100)] = 12
    backoff_base: Duration = 5.0
    backoff_max: Duration = 600.0
    # A channel that has kept failing this long (an SMS provider outage...) hands the notice
    # to the person's next channel rather than retrying for up to ``max_attempts``.
    fallback_after: Duration = 900.0
    # At a stop, the workers go on sending what is due for this long (the unit's
    # TimeoutStopSec stays above it); what is left is sent at the next start.
    drain_timeout: Duration = 20.0


_TARGETS: tuple[str, ...] = get_args(Target)


def _known_target(value: object) -> object:
    if isinstance(value, str) and value not in _TARGETS:
        raise PydanticCustomError(
            "escalation_target",
            "unknown group '{value}': an escalation step goes to high-level-admins,"
            " operations or technical-admins",
            {"value": value},
        )
    return value


class EscalationStep(StrictModel):
    """One rung of the outage escalation ladder: ``after`` an outage began (wall-clock time,
    day and night), if nobody has acknowledged it, ``to`` is told."""

    after: Duration = Field(
        description="How long after the outage began (or after the maintenance window or"
        " silence that held it ended) this step is taken, if nobody acknowledged it:"
        " wall-clock time, nights, weekends and holidays included."
    )
    to: Annotated[Target, BeforeValidator(_known_target)] = Field(
        description="Who is told at this step: `high-level-admins` (the agency's),"
        " `operations` (the Government Office team) or `technical-admins` (told again)."
    )


#: The ladder when the config gives none: the agency's high-level admins after 30 minutes,
#: the operations team after an hour.
DEFAULT_ESCALATION = (
    EscalationStep(after="30m", to="high-level-admins"),
    EscalationStep(after="1h", to="operations"),
)

_RETIRED_ESCALATION = (
    "escalate_after_working_hours is no longer read: an outage escalates on wall-clock time,"
    " day and night. Write instead, for example, escalation: [{after: 30m, to:"
    " high-level-admins}, {after: 1h, to: operations}] (the durations count from the start"
    " of the outage); the working-hour SLA now applies to support requests only"
    " (calendar.rules.incident_sla)"
)


def _step_error(index: int, field: str, message: str, value: object) -> ValidationError:
    """An error located at ``escalation[index].field``, so the config error names its line."""
    return ValidationError.from_exception_data(
        "EscalationStep",
        [
            InitErrorDetails(
                type=PydanticCustomError("escalation", message),
                loc=(index, field),
                input=value,
            )
        ],
    )


class AlertingSettings(StrictModel):
    """How state changes become messages."""

    operations: list[OperationsContact] = []
    routes: list[Route] = [Route(notify=["technical-admins", "operations"])]
    group_wait: Duration = 30.0
    group_interval: Duration = 300.0
    repeat_interval: Duration = 4 * 3600.0
    sms_min_interval: Duration = 300.0  # at most one SMS per recipient in this time
    escalation: Annotated[list[EscalationStep], Field(max_length=10)] = Field(
        default=list(DEFAULT_ESCALATION),
        description="The outage escalation ladder: each step tells its group when an outage"
        " has gone unacknowledged that long since it began, day and night (the 8-working-hour"
        " clock of the regulation is for support requests). Durations strictly increase;"
        " `[]` turns escalation off. Acknowledging the incident stops it.",
    )
    degraded_channels: Annotated[
        list[Literal["sms", "email", "inbox", "webhook"]], Field(min_length=1, max_length=4)
    ] = Field(
        default=["email", "inbox"],
        description="The channels a DEGRADED system (reachable, with a warning: slow, a"
        " certificate expiring soon) is told on: lower urgency than an outage, so no SMS"
        " unless listed here. A person with none of these channels gets it on the first of"
        " them they have an address for; a degraded system opens no incident and does not"
        " escalate.",
    )
    status_page_url: str = "https://npsp.dvc.example/status"
    web_url: Annotated[str, Field(pattern=r"^https?://[^\s?#]+$")] | None = Field(
        default=None,
        description=(
            "Public address of the monitor's web pages, e.g. https://giamsat.npsp.dvc.example:"
            " every message links to the page of its system there. Default: the site of"
            " status_page_url (its address without the final /status)."
        ),
    )
    hotline: str = "1900.1096"
    silences: list[Silence] = []
    outbox: OutboxSettings = OutboxSettings()

    @model_validator(mode="before")
    @classmethod
    def _retired_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "escalate_after_working_hours" in data:
            raise ValidationError.from_exception_data(
                "AlertingSettings",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("retired_key", _RETIRED_ESCALATION),
                        loc=("escalate_after_working_hours",),
                        input=data["escalate_after_working_hours"],
                    )
                ],
            )
        return data

    @field_validator("escalation")
    @classmethod
    def _increasing(cls, steps: list[EscalationStep]) -> list[EscalationStep]:
        for index in range(1, len(steps)):
            before, step = steps[index - 1], steps[index]
            if step.after <= before.after:
                raise _step_error(
                    index,
                    "after",
                    f"each escalation step comes later than the one before: "
                    f"{format_duration(step.after)} is not after "
                    f"{format_duration(before.after)}",
                    step.after,
                )
        return steps

    @property
    def web_base(self) -> str:
        """Where the pages are, without a final ``/``: ``web_url``, else ``status_page_url``
        without its ``/status`` (the pages serve the status page themselves)."""
        if self.web_url is not None:
            return self.web_url.rstrip("/")
        parts = urlsplit(self.status_page_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return ""
        path = parts.path.rstrip("/")
        path = path.removesuffix("/status") if path.endswith("/status") else ""
        return f"{parts.scheme}://{parts.netloc}{path}"
