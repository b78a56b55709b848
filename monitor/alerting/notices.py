"""Notices: one-off messages about an event rather than a system's state.

A late change announcement, an unannounced certificate change, a maintenance window scheduled,
started or ended, an incident's SLA reminder: each is one :class:`Notice`, written in both
languages, sent once to an audience (agencies' admins and/or operations) through the same
durable outbox as the alerts. Its key is derived from the event, so queuing it again (after a
restart, or by a second gateway host) is a no-op.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from .settings import Target

#: Who hears of a notice: (agency id, group of people); the agency is ignored for "operations".
Audience = tuple[str, Target]


@dataclass(frozen=True, slots=True)
class Notice:
    """An event told once, in Vietnamese and English (``subject``, ``text`` and ``sms`` are
    keyed by language: "vi", "en")."""

    key: str  # stable id of the event, e.g. "change-late/42"
    subject: Mapping[str, str]
    text: Mapping[str, str]
    sms: Mapping[str, str]
    thread_key: str | None = None  # e-mails of one story (a window's three notices) thread

    def item_key(self, group_key: str) -> str:
        """The outbox idempotency key of this notice for one address."""
        return hashlib.sha256(f"notice|{self.key}|{group_key}".encode()).hexdigest()[:32]


class NoticeSink(Protocol):
    """Sends a notice to an audience; returns how many messages were newly queued."""

    async def send_notice(self, notice: Notice, audience: Iterable[Audience]) -> int: ...


def everyone(agencies: Iterable[str], *targets: Target) -> list[Audience]:
    """Every (agency, target) pair, e.g. ``everyone(["ha-noi"], "technical-admins")``."""
    chosen = list(dict.fromkeys(agencies))
    return [(a, t) for t in targets for a in chosen]


def admins_and_operations(agency: str) -> list[Audience]:
    """The operations team and the agency's technical and high-level admins: who is told of
    what concerns an agency's secure server (announcements, unannounced changes)."""
    return [("", "operations"), *everyone([agency], "technical-admins", "high-level-admins")]
