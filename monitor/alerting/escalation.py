"""Escalation: an outage nobody acknowledged goes up the ladder, day and night.

A secure server must be connected 24/7 (QĐ 31/2021/QĐ-TTg, Chương VII, C.1), so the ladder
(``alerting.escalation``, :class:`.settings.EscalationStep`) runs on wall-clock time: each step
is taken ``after`` that long since the outage began — or since the maintenance window or
silence that held it ended — unless someone acknowledged the incident first. The 8-working-hour
clock of the regulation is for support requests (:mod:`monitor.rules.incidents`).

Acknowledgements arrive with incidents, and each step taken is recorded on the incident (it
shows where on the ladder an outage is); both behind the small :class:`Acknowledgements`
interface, which :class:`monitor.rules.incidents.IncidentDesk` implements.
"""

from __future__ import annotations

from typing import Protocol

from ..config.alerting import EscalationStep, Target


class Acknowledgements(Protocol):
    """Says whether someone took charge of an incident, and hears of each escalation."""

    def acknowledged(self, incident: str) -> bool:
        """Whether someone took charge of (or closed) the incident."""
        ...

    def escalated(self, incident: str, step: int, target: Target, at: float) -> None:
        """Step ``step`` (1 = the first) of the ladder, to ``target``, was taken at ``at``."""
        ...

    def steps_taken(self, incident: str) -> tuple[int, float | None]:
        """How many steps of the ladder were taken for the incident (0: none) and when its
        outage began (None: unknown), as recorded: a restart must not take steps again, nor
        count the ladder from a later moment."""
        ...


class NoAcknowledgements:
    """Until incidents can be acknowledged, none is; escalations are not recorded."""

    def acknowledged(self, incident: str) -> bool:
        del incident
        return False

    def escalated(self, incident: str, step: int, target: Target, at: float) -> None:
        del incident, step, target, at

    def steps_taken(self, incident: str) -> tuple[int, float | None]:
        del incident
        return 0, None


def due_at(ladder: list[EscalationStep], step: int, clock_from: float) -> float | None:
    """When step ``step`` (0 = the first) falls due for an outage whose escalation clock
    started at ``clock_from``; None when the ladder has no such step."""
    if step >= len(ladder):
        return None
    return clock_from + ladder[step].after
