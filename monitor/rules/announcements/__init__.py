"""Change announcements of a secure server's registered information (regulation C.2).

An agency announces that its secure server's address, host name, port, certificate or CA changes
at a given time. The notice is counted in working days strictly between the day announced and
the day it takes effect (:meth:`monitor.workdays.WorkCalendar.notice`); short of the rule
(3 working days) it is a violation: counted in ``npsp_change_notice_violations_total`` and told,
once, to operations, to the agency's admins and to every agency whose systems depend on that
server. Every accepted announcement, compliant or late, is confirmed once to the agency's
technical and high-level admins and to operations, with the way to cancel it: an announcement
whitelists a certificate, host or address, so nobody may make one in an agency's name unseen.
At the effective time the expected values of the system's checks switch
(:class:`monitor.registry.Override`).

Announcements come from the command line (written straight to the database; the daemon notices
within a second), from MQTT ``<prefix>announcements/<agency>`` (JSON, validated here,
authenticated by the agency's token in :mod:`.intake`) and from the HTTP API
(accounts). Who announced is recorded in ``author``: ``mqtt:<agency>``, the API account, or
``cli:<user>``. ``ref`` is the sender's own id: a message delivered twice is stored once.

**When it was announced** (:func:`judge_times`, the one rule for every path). ``announced_at``
is when the agency gave notice; it defaults to when the announcement is recorded. A notice
given on paper and recorded later keeps its real date (at most :data:`MAX_BACKDATED` ago); a
date ahead of the monitor's clock by more than :data:`CLOCK_SKEW` (5 minutes) is refused, and
``effective_at`` must come after it. The notice is judged against that real date. One recorded
when its effective time has already passed is a change *in effect*: its values are expected at
once (no unannounced-change alarm for them), it is confirmed to the agency as every
announcement is, a late one is recorded and counted as late (``compliant`` false,
``npsp_change_notice_violations_total``) but no late-notice alert goes out — there is nothing
left to prepare for.

The topic's rooms: :mod:`.model` (what an announcement is, how a payload is read; no I/O),
:mod:`.judge` (the one rule for its dates and its system, :func:`examine`), :mod:`.store`
(every statement on the ``announcements``, ``observed_values`` and ``unannounced_changes``
tables), :mod:`.actions` (save, list, cancel), :mod:`.desk` (:class:`AnnouncementDesk`, the
daemon's part), :mod:`.notices` (the texts and who hears them), and the three ways the topic
meets the outside: :mod:`.intake` (announcements over MQTT), :mod:`.changewatch` (the
unannounced-change watch, which asks the desk what is announced) and :mod:`.catalog` (the
secure-server catalog: registered values and announced upcoming changes, regulation C.3). The
``announce`` commands are in :mod:`monitor.cli.announce`.
"""

from __future__ import annotations

from .actions import cancel, load_all, save
from .catalog import CatalogPublisher, build_catalog
from .changewatch import ChangeWatch
from .desk import CANCEL_TOLD_WITHIN, AnnouncementDesk
from .intake import MqttAnnouncements
from .judge import examine, judge_times
from .model import (
    CLOCK_SKEW,
    MAX_AHEAD,
    MAX_BACKDATED,
    MAX_PAYLOAD,
    REF,
    Announcement,
    AnnouncementRejected,
    AnnouncementRequest,
    Changes,
    Timing,
    describe,
    load_document,
    parse_request,
    request_from,
    valid_ref,
)
from .notices import cancel_links, dependents

__all__ = [
    "CANCEL_TOLD_WITHIN",
    "CLOCK_SKEW",
    "MAX_AHEAD",
    "MAX_BACKDATED",
    "MAX_PAYLOAD",
    "REF",
    "Announcement",
    "AnnouncementDesk",
    "AnnouncementRejected",
    "AnnouncementRequest",
    "CatalogPublisher",
    "ChangeWatch",
    "Changes",
    "MqttAnnouncements",
    "Timing",
    "build_catalog",
    "cancel",
    "cancel_links",
    "dependents",
    "describe",
    "examine",
    "judge_times",
    "load_all",
    "load_document",
    "parse_request",
    "request_from",
    "save",
    "valid_ref",
]
