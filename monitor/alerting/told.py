"""Who in an agency is told about what: the router asked with sample alerts of each of the
agency's systems (an outage, a degradation), the notices' audience and each step of the
escalation ladder. What the API's ``/agencies/{agency}/routing`` and the contacts page show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config.alerting import AlertingSettings
from ..contacts.directory import Directory
from ..registry import Registry
from ..state import State
from .model import Alert, Recipient
from .notices import admins_and_operations
from .pipeline import _CRITICAL_KINDS  # the pipeline's own rule of severity
from .route import Router


@dataclass(frozen=True, slots=True)
class Told:
    """One kind of message and who gets it (one recipient per person and channel)."""

    kind: str  # "outage", "degraded", "notices", "escalation"
    system: str | None  # the system of an outage or degradation
    after: float | None  # an escalation step: seconds after the outage began
    target: str | None  # an escalation step's group
    recipients: tuple[Recipient, ...]


def _sample(registry: Registry, key: str, state: State) -> Alert | None:
    entry = registry.systems.get(key)
    if entry is None:
        return None
    kind = entry.system.kind
    severity = "critical" if kind in _CRITICAL_KINDS and state is State.DOWN else "warning"
    return Alert(
        key,
        entry.agency.id,
        entry.system.id,
        entry.system.name,
        entry.agency.name_vi,
        entry.agency.name_en,
        entry.agency.kind,
        kind,
        state,
        0.0,
        "sample",
        severity,
        f"{key}@sample",
    )


def router_over(settings: AlertingSettings, registry: Registry, directory: Directory) -> Router:
    """The router of ``settings`` over the people of ``directory``."""
    agencies = [e.agency for e in registry.systems.values()]
    return Router(settings, agencies, lambda: directory)


def who_is_told(router: Router, registry: Registry, agency: str) -> list[Told]:
    """For ``agency``: each system's outage and degradation, the notices (announcements,
    maintenance, reminders) and the escalation steps, with their recipients."""
    out: list[Told] = []
    keys = sorted(k for k, e in registry.systems.items() if e.agency.id == agency)
    for key in keys:
        for kind, state in (("outage", State.DOWN), ("degraded", State.DEGRADED)):
            alert = _sample(registry, key, state)
            if alert is not None:
                people = tuple(router.recipients(alert))
                out.append(Told(kind, alert.system, None, None, people))
    notice: list[Recipient] = []
    seen: set[str] = set()
    for a, target in admins_and_operations(agency):
        for r in router.people(a, target):
            if r.group_key not in seen:
                seen.add(r.group_key)
                notice.append(r)
    out.append(Told("notices", None, None, None, tuple(notice)))
    for step in router.settings.escalation:
        people = tuple(router.people(agency, step.to))
        out.append(Told("escalation", None, step.after, step.to, people))
    return out


def as_json(told: list[Told], address: Callable[[Recipient], str]) -> list[dict[str, object]]:
    """``told`` for an answer; ``address`` shows (or masks) each recipient's address."""
    return [
        {
            "kind": t.kind,
            "system": t.system,
            "after": t.after,
            "target": t.target,
            "recipients": [
                {"person": r.person, "name": r.name, "channel": r.channel, "address": address(r)}
                for r in t.recipients
            ],
        }
        for t in told
    ]


__all__ = ["Told", "as_json", "router_over", "who_is_told"]
