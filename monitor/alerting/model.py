"""What the alert pipeline passes between its stages."""

from __future__ import annotations

from dataclasses import dataclass, field

from notifiers.base import ChannelName
from npsp_common.types import Why

from ..state import State


@dataclass(slots=True)
class Alert:
    """A system that is (or was) not connected: one per system, kept while it fires.

    ``incident`` is stable for one outage (system key + the time it began): messages about the
    same outage share it, so e-mail threads and idempotency keys never depend on the host.
    """

    key: str  # agency/system, or _gateway/uplink
    agency: str
    system: str
    name: str
    agency_name_vi: str
    agency_name_en: str
    agency_kind: str
    system_kind: str
    state: State
    since: float
    reason: str
    severity: str
    incident: str
    affected: list[str] = field(default_factory=list)  # names of UNREACHABLE systems behind it
    resolved_at: float | None = None
    notified: bool = False  # a firing notice went out (so a resolved notice is owed)
    escalation_level: int = 0
    escalate_at: float | None = None  # when the next level is due (computed once per level)
    clock_from: float = 0.0  # escalation counts from here if later than ``since`` (end of a mute)
    why: Why | None = None  # ``reason`` as a code, for the reader's language (None: text only)

    @property
    def firing(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True, slots=True)
class Recipient:
    """One person on one channel, with where to fall back if that channel refuses for good."""

    person: str  # stable id: agency/contact-id (monitor.contacts) or operations/index
    name: str
    channel: ChannelName
    address: str
    language: str
    fallbacks: tuple[tuple[ChannelName, str], ...] = ()

    @property
    def group_key(self) -> str:
        # Per address, not per person: two contacts sharing one phone still get one SMS per
        # window, and a person serving several agencies gets one digest for all of them.
        return f"{self.channel}|{self.address}"
