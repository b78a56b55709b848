"""The monitoring engine: registry → scheduler → probes → state machine → events.

It owns the running registry and applies reloads, keeps a short in-memory history of results
per check (metrics carry the rest), and hands every event to the store and, once the store has
committed it, to subscribers (the alert pipeline, incidents, MQTT status topics). A probe never
waits on disk: events are batched, one transaction per batch, off the probe path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from npsp_common.types import ProbeResult, Why, printable
from probes import PROBES, ProbeEnv

from . import changes_store
from .changes_store import StoredState
from .cluster.votes import VoteBoard
from .config import Config
from .freshness import FreshnessJudge
from .registry import CheckEntry, Override, Registry
from .scheduler import Job, Scheduler
from .sqldialect import Handle
from .state import CheckStatus, Event, State, StateMachine, SystemStatus, Thresholds
from .store import Deposed, Store

log = logging.getLogger(__name__)

HISTORY = 10  # recent results kept per check (10,000 checks x 10 stays within a few MB)

EventSink = Callable[[list[Event]], None]
#: Hears of every result that carries observed values (certificate, addresses): check key,
#: result, time. The unannounced-change watch.
ResultObserver = Callable[[str, ProbeResult, float], None]


@dataclass(frozen=True, slots=True)
class Sample:
    """A probe result with when and where it was taken."""

    time: float
    vantage: str
    result: ProbeResult


class Engine:
    """Registry, scheduler, state machine and event log; built first by :mod:`monitor.build`.

    What listens to it is named where its loops start (:meth:`probe_forever`,
    :meth:`persist_forever`), since those listeners (the rules desks, the alert pipeline) are
    built after it and on it; the engine keeps them from then on, so that every
    :meth:`flush` (the store-writer's, the shutdown's, a test's) delivers to the same ones."""

    def __init__(
        self,
        config: Config,
        store: Store,
        probe_env: ProbeEnv,
        *,
        observe_lag: Callable[[float], None] = lambda _lag: None,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] | None = None,
        votes: VoteBoard | None = None,
        leading: Callable[[], bool] = lambda: True,
        record_store: Store | None = None,
    ) -> None:
        self.config = config
        self.store = store
        # Several hosts: each result is decided with the other vantages' (the quorum), and only
        # the leader records and hands on state changes, through its fenced store.
        self.votes = votes
        self.leading = leading
        self.record_store = record_store or store
        # On several hosts, from the takeover's reconcile (:meth:`take_over`) until this host
        # steps down: a change its state machine announces while the takeover is still reading
        # the store rests on a view older than what the store holds, and is left to reconcile.
        self._recording = votes is None
        # Bumped at each takeover and step-down: changes queued (or being written) under an
        # earlier leadership are never recorded under a later one (a lease lost during a
        # database outage and taken back would otherwise write a stale batch).
        self._generation = 0
        self.probe_env = probe_env
        self.wall_clock = wall_clock
        self.registry = Registry(systems={}, checks={}, canaries=())
        self.overrides: dict[str, Override] = {}  # announced changes in effect, by system
        self.state = StateMachine(config.vantage, _thresholds(config))
        self.scheduler = Scheduler(
            self._on_result,
            max_concurrency=config.scheduler.max_concurrency,
            max_per_host=config.scheduler.max_per_host,
            observe_lag=observe_lag,
            clock=monotonic,
        )
        self.history: dict[str, deque[Sample]] = {}
        self._subscribers: tuple[EventSink, ...] = ()  # set by persist_forever
        self._unsaved: list[Event] = []
        self._dirty = asyncio.Event()
        # One flush at a time, so that subscribers see the batches in the order they happened.
        self._flushing = asyncio.Lock()
        self._applying = asyncio.Lock()
        self.events_total = 0
        self.store_failures = 0
        self._maintenance_seen: dict[str, Why] | None = None
        # Judges dated results (freshness conditions) with the calendar: set by the daemon's
        # assembly once the rules' calendar exists (monitor/build.py).
        self.freshness: FreshnessJudge | None = None

    # ----- registry and reloads ----------------------------------------------------------------

    async def start(self, overrides: dict[str, Override] | None = None) -> None:
        """Install the config (with the announced changes in effect, ``overrides``) and restore
        the states persisted before the last stop."""
        if overrides is not None:
            self.overrides = dict(overrides)
        await self.apply(self.config)
        for key, stored in (await self.store.states()).items():
            self.state.restore(key, stored.state, stored.since, stored.reason, stored.why)

    async def apply(self, config: Config | None = None) -> None:
        """Install ``config`` (None: the running one again, e.g. with new overrides);
        unchanged checks keep their state, phase and history. One at a time: a reload and an
        announced change taking effect must not each install their own half."""
        async with self._applying:
            await self._apply(self.config if config is None else config)

    async def _apply(self, config: Config) -> None:
        # Building 10,000 checks' entries takes ~0.2 s of pure Python: in a thread, the event
        # loop gets the interpreter back every switch interval (5 ms) and probes keep their
        # schedule during a reload.
        new = await asyncio.to_thread(Registry.from_config, config, dict(self.overrides))
        old = self.registry
        self.config = config
        self.state.vantage = config.vantage
        self.state.thresholds = _thresholds(config)
        old_checks = {**old.checks, **{c.key: c for c in old.canaries}}
        new_checks = {**new.checks, **{c.key: c for c in new.canaries}}
        self._install_states(new, old_checks)
        self._install_jobs(old_checks, new_checks)
        removed_systems = list(old.systems.keys() - new.systems.keys())
        self.registry = new
        if self.votes is not None:
            self.votes.expect(new.checks)
        self._maintenance_seen = None  # new systems may lie inside a window
        if removed_systems and self._records():
            await self.store.forget(removed_systems)
        log.info(
            "registry applied",
            extra={
                "systems": len(new.systems),
                "checks": len(new.checks),
                "canaries": len(new.canaries),
            },
        )

    def _install_states(self, new: Registry, old_checks: dict[str, CheckEntry]) -> None:
        """The state machine's systems and canaries for ``new``: a check whose fingerprint did
        not change keeps its status, a system keeps its announced state and history."""
        old_status = {k: c for s in self.state.systems.values() for k, c in s.checks.items()}
        old_status.update(self.state.canaries)

        def status_for(entry: CheckEntry) -> CheckStatus:
            kept = old_status.get(entry.key)
            previous = old_checks.get(entry.key)
            if (
                kept is not None
                and previous is not None
                and previous.fingerprint == entry.fingerprint
            ):
                return kept
            return CheckStatus(entry.key, entry.failure_threshold, entry.success_threshold)

        systems = []
        for key, entry in new.systems.items():
            status = SystemStatus(
                agency=entry.agency.id,
                system=entry.system.id,
                kind=entry.system.kind,
                parents=entry.parents,
                checks={c.key: status_for(c) for c in entry.checks},
            )
            previous_system = self.state.systems.get(key)
            if previous_system is not None:
                status.announced = previous_system.announced
                status.underlying = previous_system.underlying
                status.since, status.reason = previous_system.since, previous_system.reason
                status.why = previous_system.why
                status.flips = previous_system.flips
                status.warn_flips = previous_system.warn_flips
            systems.append(status)
        self.state.set_systems(systems, [status_for(c) for c in new.canaries])

    def _install_jobs(
        self, old_checks: dict[str, CheckEntry], new_checks: dict[str, CheckEntry]
    ) -> None:
        """Schedule the new and changed checks (a fresh probe and history), drop the removed."""
        for key, check in new_checks.items():
            previous = old_checks.get(key)
            if previous is not None and previous.fingerprint == check.fingerprint:
                continue
            probe = PROBES[check.kind].build(check.spec, self.probe_env)
            job = Job(check.key, check.spec.target_host(), check.interval, check.timeout, probe)
            self.scheduler.add(job)
            self.history[key] = deque(maxlen=HISTORY)
        for key in old_checks.keys() - new_checks.keys():
            self.scheduler.remove(key)
            self.history.pop(key, None)

    async def set_overrides(self, overrides: dict[str, Override]) -> None:
        """Announced changes took effect: rebuild the checks whose registered values changed
        (their fingerprint changes with the spec; the others keep running untouched)."""
        if overrides != self.overrides:
            self.overrides = dict(overrides)
            await self.apply()

    def set_maintenance(self, covered: dict[str, Why]) -> None:
        """The systems inside a maintenance window now (key → why): they show MAINTENANCE, and
        leaving one announces their verdict. Cheap when nothing changed."""
        if covered == self._maintenance_seen:
            return
        self._maintenance_seen = covered
        events = self.state.set_maintenance(covered, self.wall_clock())
        if events:
            self._emit(events)

    async def maintenance_forever(
        self, covered: Callable[[float], dict[str, Why]], every: float = 1.0
    ) -> None:
        """Follow the maintenance windows (``covered(now)``) for as long as the daemon runs."""
        while True:
            try:
                self.set_maintenance(covered(self.wall_clock()))
            except Exception:
                log.exception("cannot follow the maintenance windows; retrying")
            await asyncio.sleep(every)

    # ----- results and events ------------------------------------------------------------------

    async def probe_forever(self, observers: Sequence[ResultObserver] = ()) -> None:
        """Run the probes until the scheduler is stopped; ``observers`` hear of every result
        that carries observed values."""
        listening = tuple(observers)
        await self.scheduler.run(
            lambda job, result, due: self._on_result(job, result, due, listening)
        )

    def _on_result(
        self,
        job: Job,
        result: ProbeResult,
        due: float,
        observers: Sequence[ResultObserver] = (),
    ) -> None:
        del due
        if not result.reason.isprintable():
            # Bytes from a probed server (a Location header, a reason phrase) may reach the
            # reason: its control characters must not travel on to messages, pages or logs.
            result = dataclasses.replace(result, reason=printable(result.reason))
        now = self.wall_clock()
        check = self.registry.checks.get(job.key)
        if result.data is not None and check is not None and self.freshness is not None:
            result = self.freshness.judge(check, result, now)
        history = self.history.get(job.key)
        if history is not None:
            history.append(Sample(now, self.config.vantage, result))
        if result.observed and observers:
            for observer in observers:
                try:
                    observer(job.key, result, now)
                except Exception:
                    log.exception("result observer failed")
        if self.votes is not None and check is not None:  # canaries stay this host's own
            result = self.votes.decide(job.key, result, now, push=check.kind == "heartbeat")
        outcome = self.state.observe(job.key, result, now)
        if outcome.recheck:
            self.scheduler.recheck(job.key, self.config.defaults.recheck_delay)
        for key in outcome.probe_now:
            self.scheduler.recheck(key, 0.0)
        if outcome.events:
            self._emit(outcome.events)

    def _emit(self, events: list[Event]) -> None:
        self.events_total += len(events)
        for event in events:
            log.info(
                "state change",
                extra={
                    "agency": event.agency,
                    "system": event.system,
                    "old": event.old.value,
                    "new": event.new.value,
                    "reason": event.reason,
                },
            )
        if self._records():
            self.inject(events)

    def _records(self) -> bool:
        """Whether this host records state changes and hands them on (it leads)."""
        return self._recording and self.leading()

    def inject(self, events: list[Event]) -> None:
        """Queue ``events`` for the store and the subscribers."""
        self._unsaved.extend(events)
        self._dirty.set()

    def take_over(self, stored: dict[str, StoredState], vantage: str) -> None:
        """This host now leads: the changes the last leader did not record are queued (see
        :meth:`reconcile`), and from now on this host records its own."""
        self._generation += 1
        self._unsaved = []
        self._maintenance_seen = None  # the windows are re-read against the adopted states
        self.inject(self.reconcile(stored, vantage))
        self._recording = True

    def step_down(self) -> None:
        """Another host leads (or this one's takeover failed): stop recording; what was queued
        is dropped, and a batch being written is refused (the next takeover reconciles)."""
        self._recording = False
        self._generation += 1
        self._unsaved = []

    def reconcile(self, stored: dict[str, StoredState], vantage: str) -> list[Event]:
        """At a takeover: bring this host's state machine and the store together.

        Where this host announced a change later than what the last leader recorded (that
        leader died before recording it), the change is returned, dated when this host saw it
        (so its incident is the one any earlier leader would have named). Where the store is
        newer (this host restarted since, or its probes lag behind the others'), this host
        takes the stored state: a stale view must not resolve, or re-open, an outage that
        everyone was told about."""
        events = []
        for key, status in self.state.systems.items():
            was = stored.get(key)
            if was is not None and was.state is status.announced:
                continue
            if was is not None and (status.announced is State.PENDING or was.since >= status.since):
                self.state.adopt(key, was.state, was.since, was.reason, was.why)
                continue
            if status.announced is State.PENDING:
                continue
            old = State.PENDING if was is None else was.state
            events.append(
                Event(
                    status.since,
                    status.agency,
                    status.system,
                    old,
                    status.announced,
                    status.reason,
                    vantage,
                    status.why,
                )
            )
        return events

    async def persist_forever(self, subscribers: Sequence[EventSink] = ()) -> None:
        """Write events to the store in batches, then hand each committed batch to
        ``subscribers`` (kept: every later :meth:`flush` delivers to them too); on a store
        error keep them, retry a second later."""
        self._subscribers = tuple(subscribers)
        while True:
            await self._dirty.wait()
            if not await self.flush():
                await asyncio.sleep(1.0)

    async def flush(self) -> bool:
        """Save the events not saved yet, then deliver them; False when the store failed.

        Nothing reads an event before it is committed: an alert queued for a state change that
        a crash then lost would page people about an outage the restarted daemon has never
        heard of (it would detect it again as new, with no resolved notice for the first).
        A batch is whatever accumulated during the previous write, so a storm of thousands of
        changes per second costs a few transactions, not one per event.
        """
        async with self._flushing:
            self._dirty.clear()
            batch, self._unsaved = self._unsaved, []
            if not batch:
                return True
            generation = self._generation

            def record(db: Handle) -> None:
                if generation != self._generation:
                    raise Deposed("seen before this host last stepped down or took over")
                changes_store.record(db, batch)

            try:
                await self.record_store.transact(record)
            except Deposed:
                # No longer the leader: the new one decides and records from its own votes.
                log.warning("not recording %d state changes: this host no longer leads", len(batch))
                return True
            except Exception as exc:  # noqa: BLE001 - any store failure: keep the events, retry
                self.store_failures += 1
                log.error("cannot save %d state changes (will retry): %s", len(batch), exc)
                if generation == self._generation:
                    self._unsaved[:0] = batch
                    self._dirty.set()
                return False
            for sink in self._subscribers:
                try:
                    sink(batch)
                except Exception:
                    log.exception("event subscriber failed")
            return True


def _thresholds(config: Config) -> Thresholds:
    return Thresholds(config.defaults.flap_window, config.defaults.flap_threshold)
