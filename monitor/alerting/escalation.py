"""Escalation: an incident nobody acknowledged within N working hours goes up a level.

Level 1 goes to the agency's high-level admins, level 2 to the Government Office operations team.
Working hours come from the working-day calendar (:class:`monitor.workdays.WorkCalendar`);
acknowledgements arrive with incidents. Both sit behind two small interfaces.
"""

from __future__ import annotations

from typing import Protocol

from .settings import Target

LEVELS: tuple[Target, ...] = ("high-level-admins", "operations")


class WorkingTime(Protocol):
    """Adds working hours to a moment."""

    def add_working_hours(self, start: float, hours: float, agency: str | None = None) -> float:
        """``start`` plus ``hours`` working hours (of ``agency``, where its hours differ)."""
        ...


class Acknowledgements(Protocol):
    """Says whether someone took charge of an incident."""

    def acknowledged(self, incident: str) -> bool: ...


class NoAcknowledgements:
    """Until incidents can be acknowledged, none is."""

    def acknowledged(self, incident: str) -> bool:
        del incident
        return False
