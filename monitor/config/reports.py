"""The ``reports:`` section: the scheduled availability reports (:mod:`monitor.reports.schedule`
produces them).

Two schedules ship, each changed field by field (a schedule named here keeps the defaults of the
fields it does not set; ``enabled: false`` turns one off):

* ``national-monthly``: the national report of the previous month to the Government Office
  operations team, on the first working day of each month at 08:00;
* ``agency-weekly``: each agency's report of the previous week to its admins, on the first
  working day of each week at 08:00.

The times are the calendar's (``calendar.timezone``, Asia/Ho_Chi_Minh), its working days too.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import BeforeValidator, Field, field_validator, model_validator

from npsp_common.types import Duration, StrictModel

from .alerting import Target

__all__ = ["DEFAULT_SCHEDULES", "ReportSchedule", "ReportsSettings", "TriggerSettings"]

_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


def _clock_time(value: object) -> object:
    """``"08:00"`` (quoted: YAML reads an unquoted 08:00 as a number)."""
    if isinstance(value, bool | int | float):
        raise ValueError(f'time {value!r} is a number: write it as a quoted string such as "08:00"')
    if isinstance(value, str) and not re.fullmatch(r"\d{1,2}:\d{2}", value):
        raise ValueError(f'time {value!r}: write HH:MM, such as "08:00"')
    return value


class TriggerSettings(StrictModel):
    """When a schedule fires: ``working_day`` N of the ``of`` (month or week) ``at`` a time
    (N = 1 the first working day, -1 the last), or a five-field ``cron`` line (minute hour
    day month weekday, as crontab) in the calendar's time zone. One of the two."""

    working_day: Annotated[int, Field(ge=-23, le=23)] | None = Field(
        None,
        description="The Nth working day of the month or week (1 the first, -1 the last; not"
        " 0). Working days are the calendar's: weekends, public holidays and the configured"
        " days off are skipped, make-up Saturdays count.",
    )
    of: Literal["month", "week"] = Field(
        "month", description="What `working_day` counts in: the month, or the week (Monday on)."
    )
    at: Annotated[dt.time, BeforeValidator(_clock_time)] = Field(
        dt.time(8, 0), description='The time of day, HH:MM in quotes ("08:00"), calendar time.'
    )
    cron: str | None = Field(
        None, description='A crontab line instead, e.g. "0 8 1 * *" (08:00 on the 1st).'
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronTrigger.from_crontab(value, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"cron {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_form(self) -> TriggerSettings:
        if (self.working_day is None) == (self.cron is None):
            raise ValueError("give either working_day (with of and at) or cron, not both")
        if self.working_day == 0:
            raise ValueError("working_day counts from 1 (the first) or from -1 (the last)")
        if self.working_day is not None and self.of == "week" and abs(self.working_day) > 6:
            raise ValueError("a week has at most 6 working days (a make-up Saturday)")
        return self


class ReportSchedule(StrictModel):
    """One scheduled report."""

    enabled: bool = Field(True, description="`false`: the schedule makes no report.")
    scope: Literal["national", "agency"] = Field(
        description="`national`: one report of every agency; `agency`: one per agency, to"
        " that agency's people."
    )
    period: Literal["month", "week"] = Field(
        description="What it reports on: the calendar month or the week (Monday to Sunday)"
        " before the one it fires in."
    )
    trigger: TriggerSettings = Field(description="When it is made.")
    recipients: Annotated[list[Target], Field(min_length=1)] = Field(
        description="Who receives it, by role: `operations` (the Government Office team),"
        " `technical-admins`, `high-level-admins` (of the agency the report is about; for a"
        " national report, of every agency). By e-mail (HTML, with the CSV attached) and in the"
        " portal inbox (a link), as each person's channels say; SMS is not used."
    )


#: The shipped schedules (see the module's docstring).
DEFAULT_SCHEDULES: dict[str, dict[str, Any]] = {
    "national-monthly": {
        "scope": "national",
        "period": "month",
        "trigger": {"working_day": 1, "of": "month", "at": "08:00"},
        "recipients": ["operations"],
    },
    "agency-weekly": {
        "scope": "agency",
        "period": "week",
        "trigger": {"working_day": 1, "of": "week", "at": "08:00"},
        "recipients": ["technical-admins", "high-level-admins"],
    },
}


def _over_defaults(value: object) -> object:
    """The shipped schedules, each field given replacing the shipped one."""
    if not isinstance(value, dict):
        return value
    merged: dict[Any, Any] = {name: dict(fields) for name, fields in DEFAULT_SCHEDULES.items()}
    for name, fields in value.items():
        if isinstance(fields, dict) and name in merged:
            merged[name] = {**merged[name], **fields}
        else:
            merged[name] = fields
    return merged


def _names(value: dict[str, ReportSchedule]) -> dict[str, ReportSchedule]:
    for name in value:
        if not re.fullmatch(_NAME, name):
            raise ValueError(f"schedule name {name!r}: lowercase letters, digits and -")
    return value


class ReportsSettings(StrictModel):
    """The ``reports:`` section."""

    schedules: Annotated[dict[str, ReportSchedule], BeforeValidator(_over_defaults)] = Field(
        default_factory=lambda: {
            name: ReportSchedule.model_validate(fields)
            for name, fields in DEFAULT_SCHEDULES.items()
        },
        description="By name. The shipped ones (national-monthly, agency-weekly) are changed"
        " field by field; `enabled: false` turns one off; another name adds a schedule.",
    )
    grace: Duration = Field(
        3 * 86400.0,
        description="A report missed while the daemon was down is produced at its start if its"
        " time is at most this long ago (only the most recent missed one); older ones are"
        " skipped and logged.",
    )
    base_url: Annotated[str, Field(pattern=r"^https?://[^\s?#]+$")] | None = Field(
        None,
        description="Where the links in the reports' messages point (the pages' address);"
        " default: alerting.web_url, else the status page's site.",
    )

    _check_names = field_validator("schedules")(classmethod(lambda cls, v: _names(v)))
