"""The alert pipeline: state changes in, digests out to the durable outbox.

* **route** (:mod:`.route`): the owning agency's technical admins and the operations team, by the
  configured routes; the gateway's own uplink goes to operations only;
* **mute**: an UNREACHABLE system is not paged on its own but listed in its parent's alert;
  silences (and later maintenance windows) hold alerts back, yet an alert already sent still
  gets its resolved notice;
* **group** (:mod:`.group`): one digest per recipient and channel, repeats, the SMS budget;
* **escalation** (:mod:`.escalation`): unacknowledged outages go up the ladder, on wall-clock
  time, day and night;
* **outbox** (:mod:`.outbox`): written before anything is sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable

from ..aio import wait_event
from ..config.alerting import AlertingSettings, Target
from ..contacts.directory import Directory
from ..registry import Registry
from ..state import GATEWAY_AGENCY, Event, State
from ..store import Deposed, StoredState, StoreError
from .escalation import Acknowledgements, NoAcknowledgements, due_at
from .facts import digest_facts
from .group import Digest, Grouper, escalation_digest
from .messages import as_html, body, page_link, sms_text, subject
from .model import Alert
from .mute import AnyMuter, Muter, Silences
from .notices import Audience, Notice, NoticeSender
from .outbox import Outbox, OutboxItem
from .route import Router

log = logging.getLogger(__name__)


_FIRING = (State.DOWN, State.FLAPPING)
_CRITICAL_KINDS = ("secure-server", "public-service-portal")


@dataclasses.dataclass(frozen=True, slots=True)
class _Rows:
    """One batch of digests as outbox rows, with who they tell and the incidents they end."""

    items: list[OutboxItem]
    told: list[tuple[str, str]]
    forgotten: list[str]
    # The escalation steps these rows take (incident, step, target, when), told to the
    # incident desk once the rows are written: a step recorded without its page would never
    # be paged (the next leader takes no step twice).
    steps: list[tuple[str, int, Target, float]] = dataclasses.field(default_factory=list)


class AlertPipeline:
    """Owns the alerts and the groups; fed by the engine, drained into the outbox."""

    def __init__(
        self,
        settings: AlertingSettings,
        registry: Registry,
        outbox: Outbox,
        *,
        muters: list[Muter] | None = None,
        acks: Acknowledgements | None = None,
        clock: Callable[[], float] = time.time,
        directory: Callable[[], Directory] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.outbox = outbox
        self.clock = clock
        self.directory = directory  # the people in effect (None: the registry's contacts)
        self.muter = AnyMuter([Silences(lambda: self.settings.silences), *(muters or [])])
        self.router = Router(settings, [e.agency for e in registry.systems.values()], directory)
        self.grouper = Grouper(settings, self.muter)
        self.acks = acks or NoAcknowledgements()
        self.notices = NoticeSender(outbox, lambda: self.router, lambda: self.settings)
        self.alerts: dict[str, Alert] = {}
        self.wake = asyncio.Event()
        # Digests taken from their groups whose rows the database refused (it was away): they
        # are written, as they were, before anything new.
        self._unqueued: _Rows | None = None

    def update_registry(self, settings: AlertingSettings, registry: Registry) -> None:
        """A config reload: new routes, contacts and silences; alerts and groups are kept."""
        self.settings = settings
        self.registry = registry
        agencies = [e.agency for e in registry.systems.values()]
        self.router = Router(settings, agencies, self.directory)
        self.grouper.settings = settings
        for alert in self.alerts.values():
            alert.escalate_at = None  # the next step is read from the new ladder

    # ----- events in ---------------------------------------------------------------------------

    def on_events(self, events: list[Event]) -> None:
        """Engine subscriber: called with every batch of announced state changes."""
        for event in events:
            try:
                self._on_event(event)
            except Exception:
                log.exception("alert pipeline could not handle %s/%s", event.agency, event.system)
        self.wake.set()

    def _on_event(self, event: Event) -> None:
        key = f"{event.agency}/{event.system}"
        if event.new in _FIRING:
            self._fire(key, event)
        elif event.new is State.UNREACHABLE:
            self._behind_parent(key, event)
        elif event.new is State.UP:
            self._resolve(key, event)
        elif event.new is State.DEGRADED:
            self._degraded(key, event)
        # MAINTENANCE: nothing changes here. An alert already sent stays (its recovery is
        # owed) and is held by the maintenance muter; the window's end announces the verdict.

    def _degraded(self, key: str, event: Event) -> None:
        """Reachable again, or slow: an outage's alert is resolved (connected again), and a
        lower-urgency alert of its own (``alerting.degraded_channels``, no incident, no
        escalation) says what is wrong."""
        alert = self.alerts.get(key)
        if alert is not None and alert.firing and alert.state is not State.DEGRADED:
            self._resolve(key, event)
        self._fire(key, event)

    def _new_alert(self, key: str, event: Event) -> Alert | None:
        if event.agency == GATEWAY_AGENCY:
            return Alert(
                key,
                event.agency,
                event.system,
                "Đường truyền của cổng kết nối (gateway uplink)",
                "Cổng kết nối NPSP",
                "NPSP gateway",
                "gateway",
                "gateway",
                event.new,
                event.time,
                event.reason,
                "critical",
                f"{key}@{int(event.time)}",
                why=event.why,
            )
        entry = self.registry.systems.get(key)
        if entry is None:
            return None
        severity = (
            "critical"
            if entry.system.kind in _CRITICAL_KINDS and event.new is State.DOWN
            else "warning"
        )
        return Alert(
            key,
            event.agency,
            event.system,
            entry.system.name,
            entry.agency.name_vi,
            entry.agency.name_en,
            entry.agency.kind,
            entry.system.kind,
            event.new,
            event.time,
            event.reason,
            severity,
            f"{key}@{int(event.time)}",
            why=event.why,
        )

    def _fire(self, key: str, event: Event) -> None:
        alert = self.alerts.get(key)
        if alert is not None and alert.state is State.DEGRADED and event.new in _FIRING:
            # Degraded, then down: an outage, with its own incident, urgency and people.
            self.grouper.forget(self.alerts.pop(key))
            alert = None
        if alert is None or not alert.firing:
            alert = self._new_alert(key, event)
            if alert is None:
                return
            self.alerts[key] = alert
        else:
            alert.state, alert.reason, alert.why = event.new, event.reason, event.why
        self._offer(alert)

    def _resolve(self, key: str, event: Event) -> None:
        alert = self.alerts.pop(key, None)
        if alert is not None and alert.firing:
            alert.resolved_at = event.time
            self._offer(alert)
        self._remove_from_parents(key)

    def _behind_parent(self, key: str, event: Event) -> None:
        """Not paged on its own: listed inside the parent's alert."""
        own = self.alerts.get(key)
        if own is not None and own.state is State.DEGRADED:
            # Behind a parent that is down, its slowness is no news.
            self.grouper.forget(self.alerts.pop(key))
        elif own is not None and own.firing:
            # Already announced as down: it stays an alert (its recovery is owed), but its
            # reminders now say why, and the parent's alert carries the news.
            own.state, own.reason, own.why = State.UNREACHABLE, event.reason, event.why
        entry = self.registry.systems.get(key)
        if entry is None:
            return
        for parent in entry.parents:
            alert = self.alerts.get(parent)
            if alert is not None and alert.firing and entry.system.name not in alert.affected:
                alert.affected.append(entry.system.name)
                self._offer(alert)

    def _remove_from_parents(self, key: str) -> None:
        entry = self.registry.systems.get(key)
        if entry is None:
            return
        for parent in entry.parents:
            alert = self.alerts.get(parent)
            if alert is not None and entry.system.name in alert.affected:
                alert.affected.remove(entry.system.name)

    def _offer(self, alert: Alert) -> None:
        now = self.clock()
        for recipient in self.router.recipients(alert):
            self.grouper.add(recipient, alert, now)

    # ----- digests out ---------------------------------------------------------------------------

    async def tick(self) -> int:
        """Flush due groups and escalations into the outbox; return how many were queued."""
        queued, _ = await self.flush_due()
        return queued

    async def flush_due(self) -> tuple[int, list[Digest]]:
        """Write the digests due now to the outbox; return the rows added and the digests."""
        earlier = 0 if self._unqueued is None else await self._queue(self._unqueued)
        now = self.clock()
        steps: list[tuple[str, int, Target, float]] = []
        digests = self.grouper.due(now) + self._escalations(now, steps)
        if not digests:
            return earlier, []
        # Who hears of which alerts in this batch, computed once (for "who else was told").
        hears: dict[str, tuple[str, set[str]]] = {}
        for d in digests:
            _, keys = hears.setdefault(d.recipient.person, (d.recipient.name, set()))
            keys.update(a.key for a in (*d.firing, *d.resolved))
        items = [self._item(d, hears) for d in digests]
        told = [(a.incident, d.recipient.group_key) for d in digests for a in d.firing]
        forgotten = sorted({a.incident for d in digests for a in d.resolved})
        return earlier + await self._queue(_Rows(items, told, forgotten, steps)), digests

    async def _queue(self, rows: _Rows) -> int:
        """Write ``rows`` (fenced: only while this host leads); kept for the next tick if the
        database refuses them, dropped if this host no longer leads (the next leader tells
        whoever the store does not say was told)."""
        self._unqueued = rows
        try:
            added = await self.outbox.enqueue(rows.items, rows.told, rows.forgotten, fenced=True)
        except Deposed:
            self._unqueued = None
            raise
        self._unqueued = None
        for incident, step, target, at in rows.steps:
            try:
                self.acks.escalated(incident, step, target, at)
            except Exception:
                log.exception("cannot record the escalation of %s", incident)
        return added

    def reset(self) -> None:
        """Forget every alert and group (a host taking over as the leader rebuilds them from
        the store with :meth:`restore`)."""
        self.alerts = {}
        self.grouper = Grouper(self.settings, self.muter)
        self._unqueued = None

    def restore(self, states: dict[str, StoredState], told: set[tuple[str, str]]) -> None:
        """After a (re)start: rebuild the alerts of systems still failing.

        People already told about an outage are not told again (a restart must not page
        anyone); those who were not (the daemon died before their digest was written) are.
        Those told about an outage that ended meanwhile (the last leader recorded the recovery
        and died before queuing its notice) hear of the recovery.
        """
        now = self.clock()
        self._owed_recoveries(states, told, now)
        for key, stored in states.items():
            agency, _, system = key.partition("/")
            event = Event(
                stored.since, agency, system, State.PENDING, stored.state, stored.reason, ""
            )
            if stored.state is State.MAINTENANCE:
                # Paged as down before its window began: the outage's alert (and its
                # recovery notice) is still owed to those told; the window holds it.
                owed = sorted({i for i, _ in told if i.startswith(f"{key}@")})
                if not owed:
                    continue
                began = owed[-1].rpartition("@")[2]
                if not began.isdigit():
                    continue
                event = dataclasses.replace(event, time=float(began), new=State.DOWN)
            elif stored.state not in (*_FIRING, State.DEGRADED):
                continue
            alert = self._new_alert(key, event)
            if alert is None:
                continue
            alert.why = stored.why
            # The steps of the ladder already taken are not taken again, and the next counts
            # from when the outage began (the stored state's time moves if it flapped).
            alert.escalation_level, opened = self.acks.steps_taken(alert.incident)
            if opened is not None and opened < alert.since:
                alert.since = opened
            self.alerts[key] = alert
            for recipient in self.router.recipients(alert):
                if (alert.incident, recipient.group_key) in told:
                    self.grouper.remember(recipient, alert, now)
                else:
                    self.grouper.add(recipient, alert, now)
        for key, stored in states.items():
            if stored.state is State.UNREACHABLE:
                entry = self.registry.systems.get(key)
                for parent in entry.parents if entry else ():
                    alert = self.alerts.get(parent)
                    if alert is not None and entry and entry.system.name not in alert.affected:
                        alert.affected.append(entry.system.name)

    def _owed_recoveries(
        self, states: dict[str, StoredState], told: set[tuple[str, str]], now: float
    ) -> None:
        """Told outages whose system is no longer failing: a resolved notice to those told.
        Before the failing alerts are rebuilt, so that a system now degraded gets its own
        alert beside the recovery of the outage (the group closes the old one)."""
        for incident in sorted({i for i, _ in told}):
            key, _, began = incident.rpartition("@")
            stored = states.get(key)
            if not began.isdigit() or (
                stored is not None
                and (
                    stored.state in (*_FIRING, State.MAINTENANCE)
                    or (stored.state is State.DEGRADED and int(stored.since) == int(began))
                )
            ):
                continue  # still failing (its start may have moved), held by a window, or the
                # degraded alert itself (restored below)
            agency, _, system = key.partition("/")
            event = Event(float(began), agency, system, State.PENDING, State.DOWN, "", "")
            alert = self._new_alert(key, event)
            if alert is None or alert.incident != incident:
                continue
            for recipient in self.router.recipients(alert):
                if (incident, recipient.group_key) in told:
                    self.grouper.remember(recipient, alert, now)
            alert.resolved_at = now if stored is None else stored.since
            self._offer(alert)

    def _escalations(self, now: float, steps: list[tuple[str, int, Target, float]]) -> list[Digest]:
        """The ladder's steps due now (wall-clock, from the outage's start or the end of the
        mute that held it), for outages nobody acknowledged; each step taken is added to
        ``steps``, told to the incident desk (``acks.escalated``, which records it on the
        incident) once its messages are queued."""
        out = []
        ladder = self.settings.escalation
        for alert in self.alerts.values():
            level = alert.escalation_level
            if (
                not alert.firing
                or level >= len(ladder)
                or alert.agency == GATEWAY_AGENCY
                or alert.state is State.DEGRADED  # lower urgency: e-mail and inbox, no ladder
            ):
                continue
            if self.muter.mutes(alert, now) is not None:
                # Inside a maintenance window (or a silence) nobody is expected to act: the
                # escalation clock starts again when it ends.
                alert.escalate_at, alert.clock_from = None, now
                continue
            if not alert.notified or self.acks.acknowledged(alert.incident):
                continue
            if alert.escalate_at is None:
                alert.escalate_at = due_at(ladder, level, max(alert.since, alert.clock_from))
            if alert.escalate_at is None or now < alert.escalate_at:
                continue
            alert.escalation_level += 1
            alert.escalate_at = None
            target = ladder[level].to
            for recipient in self.router.people(alert.agency, target):
                out.append(escalation_digest(recipient, alert, level + 1))
            steps.append((alert.incident, level + 1, target, now))
        return out

    def _item(self, digest: Digest, hears: dict[str, tuple[str, set[str]]]) -> OutboxItem:
        """The outbox row of one digest; ``hears`` maps each person in the batch to their name
        and the alerts they hear of (for "who else was told")."""
        r = digest.recipient
        keys = {a.key for a in (*digest.firing, *digest.resolved)}
        also = sorted(
            name for person, (name, theirs) in hears.items() if person != r.person and keys & theirs
        )
        s = self.settings
        channels = {r.channel, *(channel for channel, _ in r.fallbacks)}
        link = page_link(digest, r.language, s.web_base)
        text = body(
            digest,
            r.language,
            link=link,
            status_url=s.status_page_url,
            hotline=s.hotline,
            also_told=also,
        )
        return OutboxItem(
            key=digest.key,
            channel=r.channel,
            address=r.address,
            person=r.person,
            subject=subject(digest, r.language),
            text=text,  # for every channel: an SMS falling back to e-mail gets the full text
            short=sms_text(digest, r.language, link=link, hotline=s.hotline),
            html=as_html(text) if r.channel == "email" else None,
            thread_key=digest.thread_key,
            language=r.language,
            fallbacks=r.fallbacks,
            # Only where a webhook may send it: the e-mails and SMS of a storm need no copy.
            facts=digest_facts(digest) if "webhook" in channels else None,
        )

    # ----- one-off notices (announcements, maintenance, incidents) -------------------------------

    async def send_notice(self, notice: Notice, audience: Iterable[Audience]) -> int:
        """Queue ``notice`` once for every address of the audience, by this pipeline's routes
        (:class:`.notices.NoticeSender`, which the daemon's desks use directly)."""
        return await self.notices.send_notice(notice, audience)

    async def run(self) -> None:
        """Forever: tick when something changed or a group falls due."""
        while True:
            self.wake.clear()
            try:
                await self.tick()
            except Deposed:
                log.warning("not queuing alerts: this host no longer leads")
            except StoreError as exc:  # the database is away: the rows wait, said each try
                log.warning("cannot queue the alerts (will retry): %s", exc)
            except Exception:
                log.exception("alert pipeline tick failed; retrying")
            due = self.grouper.next_due()
            delay = 1.0 if due is None else max(0.05, min(1.0, due - self.clock()))
            await wait_event(self.wake, delay)
