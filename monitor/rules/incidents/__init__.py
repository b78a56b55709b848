"""Incidents and their SLA clock (QĐ 31/2021/QĐ-TTg, Điều 52 khoản 1).

An incident is opened

* **automatically** (source ``outage``) when a system goes DOWN or FLAPPING, with the alert
  pipeline's incident id ``agency/system@<epoch of the failure>``, so that acknowledging it here
  stops the pipeline's escalation (:meth:`IncidentDesk.acknowledged`). FLAPPING counts because the
  pipeline pages it too: every paged outage has an incident someone can take charge of.
  UNREACHABLE does not open one (its parent's incident covers it), and the gateway's own uplink
  is not an agency's incident. When the system is UP again the incident is resolved by
  ``system`` ("connection restored"). A secure server must be connected 24/7: an outage has **no
  working-hours due time** and no SLA reminders; it escalates on wall-clock time
  (``alerting.escalation``, :mod:`monitor.alerting.escalation`), and each step taken is recorded
  on it (:meth:`IncidentDesk.escalated`: ``escalation_step``, ``escalated_to``,
  ``escalated_at``), which is what the pages, the API and the command line show instead;
* **by hand** (source ``request``, ids ``req-1``, ``req-2``…) for a support request (QĐ 31/2021,
  Chương VII, D.1), from the command line or the API. Only a person resolves those. A request
  carries when it was **received** (``received_at``: it may precede when it was entered, never
  the entry itself), and may be **complex**, with the **expected completion** time published
  for it (required for a complex request, not before it was received).

The SLA clock of a request runs in working hours of the agency (8 by default,
``calendar.rules.incident_sla``) from the moment it was received; the due time is fixed when it
is opened. A complex request is due at its published expected completion time instead (the
regulation's exception for requests that cannot be handled in 8 working hours). Acknowledging
does not stop the clock (the SLA is about handling, i.e. resolving), but reminders say who took
charge. Reminders go out once each (the ``reminded`` column goes 0 → 50 → 100):

* at 50 % of the SLA, to the agency's technical admins;
* at 100 %, the breach: to the technical and high-level admins and to the operations team, and
  ``npsp_incident_sla_breaches_total`` counts it (``breached_at`` is when the daemon saw it).

A reminder that fell due while the daemon was stopped goes out at the next tick. If the breach is
already due by then, only the breach notice is sent (it reaches the technical admins too and
says everything the 50 % one would have); a stale "half the time is left" would be false. An
incident resolved late while the daemon was stopped is still counted as a breach, without a
notice (nobody needs an escalation of something already handled).

Notices are sent before the row is marked, under keys derived from the incident
(``incident/<id>/sla-50``): a crash in between re-queues the same key, which the outbox ignores.

The topic's rooms: :mod:`.model` (the incident, its rules and due-time arithmetic, no I/O),
:mod:`.store` (every statement on the ``incidents`` table), :mod:`.actions` (what a person does:
open, complex, acknowledge, resolve, list), :mod:`.desk` (:class:`IncidentDesk`, the daemon's
part), :mod:`.notices` (the reminders' texts). Its ``incident`` commands are in
:mod:`monitor.cli.incidents`, with the other command groups.
"""

from __future__ import annotations

from .actions import (
    acknowledge,
    get_incident,
    list_incidents,
    mark_complex,
    open_incident,
    resolve,
)
from .desk import IncidentDesk
from .model import (
    BREACH_COUNTER,
    MAX_TEXT,
    NO_DUE,
    OUTAGE,
    REQUEST,
    Incident,
    IncidentError,
    outage_id,
)

__all__ = [
    "BREACH_COUNTER",
    "MAX_TEXT",
    "NO_DUE",
    "OUTAGE",
    "REQUEST",
    "Incident",
    "IncidentDesk",
    "IncidentError",
    "acknowledge",
    "get_incident",
    "list_incidents",
    "mark_complex",
    "open_incident",
    "outage_id",
    "resolve",
]
