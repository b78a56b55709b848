"""Route: who is told about an alert, on which channels."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence

from notifiers.base import ChannelName

from ..config import Agency, Contact
from ..config.alerting import AlertingSettings, OperationsContact, Route, Target
from ..contacts.directory import Directory
from ..contacts.flags import key_of
from ..contacts.model import Person
from ..state import State
from .model import Alert, Recipient

_ORDER: tuple[ChannelName, ...] = ("sms", "email", "inbox", "webhook")
#: The states that page the people on duty, off hours, instead of the whole technical team.
_OUTAGE = frozenset({State.DOWN, State.FLAPPING, State.UNREACHABLE})

DutyRule = Callable[[str, float], list[str] | None]
"""``(agency, ts)`` → the contact ids on duty whom an outage at ``ts`` pages instead of the
whole technical team, or None for the normal routing (working hours, no roster, nobody on duty):
:meth:`monitor.rosters.Rosters.duty_targets`."""


def _address(person: Contact | OperationsContact, channel: ChannelName) -> str | None:
    return {
        "sms": person.phone,
        "email": person.email,
        "inbox": person.portal_account,
        "webhook": person.webhook,
    }[channel]


def recipients_of(
    person_id: str,
    person: Contact | OperationsContact,
    flagged: frozenset[tuple[str, str]] = frozenset(),
) -> list[Recipient]:
    """One recipient per preferred channel. Each one's fallbacks, should its channel refuse
    for good or keep failing: the person's other listed channels after it, in their order, then
    those with an address that are not listed (an SMS to a dead number must still reach a
    contact who listed ``[sms, email]``).

    A ``flagged`` address (channel, address: it failed for good, see
    :mod:`monitor.contacts.flags`) is left out, and the next channel takes its place; a person
    whose every address is flagged keeps them all (tried rather than told nothing)."""
    listed = [(c, addr) for c in person.channels if (addr := _address(person, c)) is not None]
    spare = [
        (c, addr)
        for c in _ORDER
        if c not in person.channels and (addr := _address(person, c)) is not None
    ]
    if flagged:
        ok = [p for p in listed + spare if key_of(*p) not in flagged]
        if ok:
            listed = [p for p in listed if p in ok] or ok[:1]
            spare = [p for p in spare if p in ok and p not in listed]
    return [
        Recipient(
            person_id,
            person.name,
            channel,
            address,
            person.language,
            tuple(listed[i + 1 :] + spare),
        )
        for i, (channel, address) in enumerate(listed)
    ]


class Router:
    """Turns an alert into recipients, following the configured routes in order.

    An agency's people come from ``directory`` (the one in effect: the registry's contacts and
    the agency's own, see :mod:`monitor.contacts.directory`); without one, from the registry's
    ``agencies`` alone (check-config, reports from the command line, tests). With ``duty`` (the
    agencies' rosters), an outage told to an agency's technical-admins off hours goes to the
    people on duty at ``clock()``, not to the whole team."""

    def __init__(
        self,
        settings: AlertingSettings,
        agencies: Iterable[Agency],
        directory: Callable[[], Directory] | None = None,
        *,
        duty: DutyRule | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.agencies = {a.id: a for a in agencies}
        self.duty = duty
        self.clock = clock
        self.directory = (
            directory
            if directory is not None
            else _constant(Directory.of_registry(self.agencies.values()))
        )

    def targets(self, alert: Alert) -> list[Target]:
        if alert.agency == "_gateway":
            return ["operations"]  # our own uplink is nobody else's business
        chosen: list[Target] = []
        for route in self.settings.routes:
            if _matches(route, alert):
                chosen += [t for t in route.notify if t not in chosen]
                if not route.continue_:
                    break
        return chosen

    def recipients(self, alert: Alert, targets: Iterable[Target] | None = None) -> list[Recipient]:
        out: list[Recipient] = []
        outage = alert.state in _OUTAGE
        for target in self.targets(alert) if targets is None else targets:
            out += self.people(alert.agency, target, outage=outage)
        if alert.state is State.DEGRADED:
            out = _lower_urgency(out, self.settings.degraded_channels)
        seen: set[str] = set()
        unique = []
        for r in out:
            if r.group_key not in seen:
                seen.add(r.group_key)
                unique.append(r)
        return unique

    def people(self, agency_id: str, target: Target, *, outage: bool = False) -> list[Recipient]:
        if target == "operations":
            flagged = self.directory().flagged  # its own addresses may fail for good too
            return [
                r
                for i, person in enumerate(self.settings.operations)
                for r in recipients_of(f"operations/{i}", person, flagged)
            ]
        directory = self.directory()
        technical = target == "technical-admins"
        chosen = self._on_duty(directory, agency_id) if outage and technical else None
        if chosen is None:
            role = "technical-admin" if technical else "high-level-admin"
            chosen = directory.active(agency_id, role)
        return [r for p in chosen for r in recipients_of(p.person, p.contact, directory.flagged)]

    def _on_duty(self, directory: Directory, agency_id: str) -> list[Person] | None:
        """The agency's active people on duty now, off hours (a roster may name a high-level
        admin too); None for the whole technical team: working hours, no roster, nobody on
        duty, or nobody on duty who may still be paged (revoked, removed)."""
        if self.duty is None:
            return None
        ids = self.duty(agency_id, self.clock())
        if ids is None:
            return None
        wanted = set(ids)
        on_duty = [p for p in directory.people(agency_id) if p.active and p.id in wanted]
        return on_duty or None


def _constant(directory: Directory) -> Callable[[], Directory]:
    return lambda: directory


def _lower_urgency(recipients: list[Recipient], allowed: Sequence[ChannelName]) -> list[Recipient]:
    """Only the allowed channels, with fallbacks among them; a person who listed none of them
    gets one recipient on their first allowed channel with an address (one warning reaches
    everyone, without waking anyone by SMS)."""
    out: list[Recipient] = []
    covered: set[str] = set()
    for r in recipients:
        if r.channel in allowed:
            out.append(
                dataclasses.replace(r, fallbacks=tuple(f for f in r.fallbacks if f[0] in allowed))
            )
            covered.add(r.person)
    for r in recipients:
        if r.person in covered:
            continue
        spare = [f for f in r.fallbacks if f[0] in allowed]
        if spare:
            channel, address = spare[0]
            out.append(
                dataclasses.replace(r, channel=channel, address=address, fallbacks=tuple(spare[1:]))
            )
            covered.add(r.person)
    return out


def _matches(route: Route, alert: Alert) -> bool:
    m = route.match
    return (
        (not m.agency or alert.agency in m.agency)
        and (not m.agency_kind or alert.agency_kind in m.agency_kind)
        and (not m.system_kind or alert.system_kind in m.system_kind)
        and (not m.severity or alert.severity in m.severity)
    )
