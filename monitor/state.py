"""Deciding, honestly, whether each system is connected.

Pure logic: no I/O, no clock of its own (every call takes ``now``), so every rule here is tested
with an injected time. The rules:

* a check turns unhealthy after ``failure_threshold`` consecutive failures *and* one quick
  recheck that fails too; healthy after ``success_threshold`` consecutive successes;
* a system is DOWN when any of its checks is unhealthy, UP when all are healthy, DEGRADED when
  all are healthy but one holds a warning condition (slow, certificate expiring soon: a result
  that passed with ``degraded``) for ``failure_threshold`` consecutive results, until
  ``success_threshold`` clean ones;
* a system inside an announced maintenance window (:meth:`StateMachine.set_maintenance`) is
  MAINTENANCE: its checks go on and its underlying verdict is kept, but nothing else is
  announced until the window ends; then its verdict at that moment is announced;
* a DOWN system whose ``depends_on`` parent is DOWN or UNREACHABLE is UNREACHABLE. A child is
  declared DOWN only once each parent has been seen working *after* the child began failing;
  until then its verdict waits and the parent is probed at once, so one dead secure server
  does not first page its one-stop system as DOWN because the child happened to look first;
* ``flap_threshold`` flips within ``flap_window`` make a system FLAPPING: one event, then
  silence until it settles (fewer than half as many flips in the window);
* uplink canaries: when every canary fails, the gateway itself is cut off. One event says so;
  every system shows UNKNOWN and failures seen meanwhile are not held against anyone. A system
  is declared DOWN only once some canary has succeeded *after* the system began failing ("is
  it them or is it us?"); until then its verdict waits and the canaries are rechecked at once.

Only *announced* state changes become events; UNKNOWN is shown, never announced.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from npsp_common.types import ProbeResult, Why

from .reasons import say

GATEWAY_AGENCY = "_gateway"
GATEWAY_SYSTEM = "uplink"


class State(StrEnum):
    """What a system is, as shown on /metrics, the API and in events."""

    PENDING = "pending"  # no verdict yet since start
    UP = "up"
    DEGRADED = "degraded"  # reachable, but a warning condition holds (slow, certificate expiring)
    MAINTENANCE = "maintenance"  # inside an announced maintenance window: not judged
    DOWN = "down"
    UNREACHABLE = "unreachable"  # failing, but a system it depends on is down
    FLAPPING = "flapping"
    UNKNOWN = "unknown"  # our own uplink is cut: we cannot see


_FAILING = (State.DOWN, State.UNREACHABLE)
_REACHABLE = (State.UP, State.DEGRADED)


@dataclass(frozen=True, slots=True)
class Event:
    """An announced state change; stored, then consumed by the alert pipeline."""

    time: float
    agency: str
    system: str
    old: State
    new: State
    reason: str
    vantage: str
    # The reason as a code, for the reader's language (``reason`` is its English text, which
    # is what comparisons look at).
    why: Why | None = field(default=None, compare=False)


@dataclass(slots=True)
class CheckStatus:
    """Consecutive counts and the confirmed verdict of one check."""

    key: str
    failure_threshold: int
    success_threshold: int
    healthy: bool | None = None  # None until the first verdict
    failures: int = 0
    successes: int = 0
    awaiting_recheck: bool = False
    last: ProbeResult | None = None
    last_time: float = 0.0
    last_ok: float = float("-inf")
    fail_since: float = float("inf")  # start of the current run of failures
    warning: bool = False  # a warning condition confirmed (its system is DEGRADED)
    warnings: int = 0  # consecutive passing results with a warning
    cleans: int = 0  # consecutive passing results without one

    @property
    def suspect(self) -> bool:
        """Failing now, but not (yet) confirmed unhealthy."""
        return self.failures > 0 and self.healthy is not False


@dataclass(slots=True)
class SystemStatus:
    """A system's checks, its announced state and its flip history."""

    agency: str
    system: str
    kind: str
    parents: tuple[str, ...]
    checks: dict[str, CheckStatus]
    announced: State = State.PENDING
    underlying: State = State.PENDING  # what would be announced if it were not flapping
    since: float = 0.0
    reason: str = ""
    why: Why | None = None
    flips: deque[float] = field(default_factory=deque)
    # Changes between UP and DEGRADED: a latency hovering at its limit must not send a
    # "degraded" and an "up" every few minutes.
    warn_flips: deque[float] = field(default_factory=deque)

    @property
    def key(self) -> str:
        return f"{self.agency}/{self.system}"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Flapping settings (per daemon)."""

    flap_window: float = 3600.0
    flap_threshold: int = 6


@dataclass(slots=True)
class Outcome:
    """What one observation led to."""

    events: list[Event] = field(default_factory=list)
    recheck: bool = False  # confirm this check's failure with a quick recheck
    probe_now: list[str] = field(default_factory=list)  # other checks a verdict waits on


class StateMachine:
    """Holds every system's status and turns probe results into events."""

    def __init__(self, vantage: str, thresholds: Thresholds) -> None:
        self.vantage = vantage
        self.thresholds = thresholds
        self.systems: dict[str, SystemStatus] = {}
        self.children: dict[str, list[str]] = {}
        self.check_owner: dict[str, str] = {}  # check key -> system key
        self.canaries: dict[str, CheckStatus] = {}
        self.gateway_cut = False
        self.gateway_since = 0.0
        self.maintenance: dict[str, Why] = {}  # systems inside a maintenance window
        self._wanted: set[str] = set()  # checks to probe now: a verdict waits on them

    # ----- registry --------------------------------------------------------------------------

    def set_systems(self, systems: Iterable[SystemStatus], canaries: Iterable[CheckStatus]) -> None:
        """Install a (re)loaded registry; statuses of unchanged keys are kept by the caller."""
        self.systems = {s.key: s for s in systems}
        self.children = {}
        self.check_owner = {}
        for status in self.systems.values():
            for parent in status.parents:
                self.children.setdefault(parent, []).append(status.key)
            for check_key in status.checks:
                self.check_owner[check_key] = status.key
        self.canaries = {c.key: c for c in canaries}
        if not self.canaries:
            self.gateway_cut = False

    def restore(
        self, key: str, state: State, since: float, reason: str, why: Why | None = None
    ) -> None:
        """Take the announced state persisted before a restart."""
        status = self.systems.get(key)
        if status is not None and state not in (State.UNKNOWN,):
            status.announced = state
            # In a window, the verdict underneath is not known yet: the probes will say.
            status.underlying = State.PENDING if state is State.MAINTENANCE else state
            status.since, status.reason, status.why = since, reason, why
            if state is State.DEGRADED:
                # The warning was confirmed before the restart: the first clean results clear
                # it; a slow one does not start a new count (no false "up" then "degraded").
                for check in status.checks.values():
                    check.warning = True

    def adopt(
        self, key: str, state: State, since: float, reason: str, why: Why | None = None
    ) -> None:
        """At a takeover: take the state the last leader recorded when it is newer than this
        host's own (this host was restarted since, or its probes have not caught up). Its checks
        then count afresh, as after a restart: the next change it announces rests on results
        that came after the recorded one, never on older counts (a check still "healthy" from
        before the outage must not resolve an outage the other vantages saw)."""
        status = self.systems.get(key)
        if status is None:
            return
        self.restore(key, state, since, reason, why)
        for check in status.checks.values():
            check.healthy = None
            check.failures = check.successes = 0
            check.awaiting_recheck = False
            check.fail_since = float("inf")

    def set_maintenance(self, covered: dict[str, Why], now: float) -> list[Event]:
        """The systems inside a maintenance window now (key → why): those entering one are
        announced MAINTENANCE; those leaving one get their verdict of this moment announced
        (DOWN if they are still failing: the alert held by the window is due now)."""
        events: list[Event] = []
        self.maintenance = covered
        for key, status in self.systems.items():
            why = covered.get(key)
            if why is not None and status.announced is not State.MAINTENANCE:
                self._announce(status, State.MAINTENANCE, why, now, events)
            elif why is None and status.announced is State.MAINTENANCE:
                status.underlying = State.PENDING  # so that the verdict below is announced
                self._evaluate(status, now, events)
                if status.announced is State.MAINTENANCE:
                    # No verdict yet (too few results, or it waits on a parent or the uplink):
                    # said, so that the stored state and the status topics stop saying
                    # "maintenance".
                    self._announce(status, State.PENDING, Why("system.awaiting"), now, events)
        return events

    def display_state(self, status: SystemStatus) -> State:
        """What to show now: UNKNOWN while the gateway is cut off."""
        return State.UNKNOWN if self.gateway_cut else status.announced

    # ----- observations ----------------------------------------------------------------------

    def observe(self, check_key: str, result: ProbeResult, now: float) -> Outcome:
        """Feed one probe result; return the events it caused and whether to recheck soon."""
        if check_key in self.canaries:
            return self._observe_canary(self.canaries[check_key], result, now)
        owner = self.check_owner.get(check_key)
        if owner is None:
            return Outcome()  # a result for a check removed by a reload
        status = self.systems[owner]
        check = status.checks[check_key]
        outcome = Outcome()
        if self.gateway_cut and not result.ok:
            # We cannot see past our own uplink: this failure says nothing about the system.
            check.last, check.last_time = result, now
            return outcome
        outcome.recheck = _count(check, result, now)
        self._evaluate(status, now, outcome.events)
        if result.ok:
            # Children whose verdict waited for proof that this parent works may now decide.
            for child_key in self.children.get(status.key, ()):
                child = self.systems.get(child_key)
                if child is not None and any(c.healthy is False for c in child.checks.values()):
                    self._evaluate(child, now, outcome.events)
        self._take_wanted(check_key, outcome)
        return outcome

    def _take_wanted(self, answered: str, outcome: Outcome) -> None:
        """Hand over the checks a verdict now waits on (not the one that just answered)."""
        self._wanted.discard(answered)
        outcome.probe_now = sorted(self._wanted)
        self._wanted.clear()

    def _observe_canary(self, check: CheckStatus, result: ProbeResult, now: float) -> Outcome:
        outcome = Outcome(recheck=_count(check, result, now))
        all_down = all(c.healthy is False for c in self.canaries.values())
        if all_down and not self.gateway_cut:
            self.gateway_cut, self.gateway_since = True, now
            canaries = tuple(_check_why(c) for c in self.canaries.values() if c.last)
            outcome.events.append(
                self._gateway_event(
                    now, State.UP, State.DOWN, Why("gateway.cut", {"canaries": canaries})
                )
            )
            self._forgive_unannounced_failures()
        elif self.gateway_cut and any(c.healthy for c in self.canaries.values()):
            self.gateway_cut, self.gateway_since = False, now
            outcome.events.append(
                self._gateway_event(now, State.DOWN, State.UP, Why("gateway.restored"))
            )
        elif result.ok:
            # Systems that waited for proof of our own uplink may now decide.
            for status in self.systems.values():
                if any(c.healthy is False for c in status.checks.values()):
                    self._evaluate(status, now, outcome.events)
        self._take_wanted(check.key, outcome)  # a canary result is itself the answer
        return outcome

    def _gateway_event(self, now: float, old: State, new: State, why: Why) -> Event:
        return Event(
            now, GATEWAY_AGENCY, GATEWAY_SYSTEM, old, new, _english(why), self.vantage, why
        )

    def _uplink_proven(self, status: SystemStatus) -> bool:
        """Has a canary succeeded since this system's failures began? (No canaries: yes.)"""
        if not self.canaries:
            return True
        since = _failing_since(status)
        return any(k.last_ok >= since for k in self.canaries.values())

    def _forgive_unannounced_failures(self) -> None:
        """Failures seen while the uplink was dying are not the systems' fault."""
        for status in self.systems.values():
            for check in status.checks.values():
                check.failures, check.awaiting_recheck = 0, False
                if check.healthy is False and status.announced not in _FAILING:
                    check.healthy = None

    # ----- evaluation ------------------------------------------------------------------------

    def _raw(self, status: SystemStatus) -> tuple[State, Why]:
        verdicts = [c.healthy for c in status.checks.values()]
        if False in verdicts:
            failing = [c for c in status.checks.values() if c.healthy is False]
            return State.DOWN, Why("system.checks", {"checks": tuple(map(_check_why, failing))})
        if all(v is True for v in verdicts):
            warned = [c for c in status.checks.values() if c.warning]
            if warned:
                return State.DEGRADED, Why(
                    "system.degraded", {"checks": tuple(map(_check_why, warned))}
                )
            return State.UP, Why("system.ok")
        return State.PENDING, Why("text", {"text": ""})

    def _parent_blocks(self, status: SystemStatus) -> tuple[bool, bool, str]:
        """(a parent is down or unreachable, a parent is suspect, its key)."""
        for parent_key in status.parents:
            parent = self.systems.get(parent_key)
            if parent is None:
                continue
            if parent.underlying in _FAILING or parent.announced in _FAILING:
                return True, False, parent_key
            if any(c.suspect for c in parent.checks.values()):
                return False, True, parent_key
            since = _failing_since(status)
            unproven = [k for k, c in parent.checks.items() if c.last_ok < since]
            if unproven:
                self._wanted.update(unproven)  # is it the parent? ask it now
                return False, True, parent_key
            if parent.announced in _REACHABLE and any(
                c.healthy is False and c.last_time <= parent.since for c in status.checks.values()
            ):
                # The parent came back after our last look: judge us on a fresh result.
                return False, True, parent_key
        return False, False, ""

    def _evaluate(self, status: SystemStatus, now: float, events: list[Event]) -> None:
        if self.gateway_cut:
            return
        raw, why = self._raw(status)
        if raw is State.PENDING:
            return
        target = raw
        if raw is State.DOWN:
            if not self._uplink_proven(status):
                self._wanted.update(self.canaries)
                return
            parent_down, parent_suspect, parent = self._parent_blocks(status)
            if parent_suspect:
                return
            if parent_down:
                target, why = (
                    State.UNREACHABLE,
                    Why("system.parent_down", {"parent": parent, "why": why}),
                )
        if status.key in self.maintenance:
            # Inside a window: keep the verdict underneath for the end of it, announce nothing.
            status.underlying = target
            return
        self._move(status, target, why, now, events)

    def _move(
        self, status: SystemStatus, target: State, why: Why, now: float, events: list[Event]
    ) -> None:
        if target == status.underlying and status.announced is not State.PENDING:
            if status.announced is State.FLAPPING:
                self._maybe_settle(status, now, events)
            elif status.announced is State.DEGRADED and target is State.UP:
                self._prune_flips(status, now)
                if not self._hovering(status):
                    self._announce(status, target, why, now, events)
            return
        previous = status.underlying
        status.underlying = target
        if _is_flip(previous, target):
            status.flips.append(now)
        elif {previous, target} == {State.UP, State.DEGRADED}:
            status.warn_flips.append(now)
        self._prune_flips(status, now)
        if status.announced is State.FLAPPING:
            self._maybe_settle(status, now, events)
            return
        if target is State.UP and status.announced is State.DEGRADED and self._hovering(status):
            return  # slowness comes and goes: it stays degraded until it settles
        if len(status.flips) >= self.thresholds.flap_threshold:
            why = Why(
                "system.flapping",
                {"count": len(status.flips), "window": self.thresholds.flap_window, "last": why},
            )
            target = State.FLAPPING
        self._announce(status, target, why, now, events)

    def _maybe_settle(self, status: SystemStatus, now: float, events: list[Event]) -> None:
        self._prune_flips(status, now)
        if len(status.flips) * 2 < self.thresholds.flap_threshold:
            _, why = self._raw(status)
            self._announce(
                status, status.underlying, Why("system.settled", {"why": why}), now, events
            )

    def _prune_flips(self, status: SystemStatus, now: float) -> None:
        horizon = now - self.thresholds.flap_window
        for flips in (status.flips, status.warn_flips):
            while flips and flips[0] < horizon:
                flips.popleft()

    def _hovering(self, status: SystemStatus) -> bool:
        """A warning that came and went often lately (as many changes between UP and
        DEGRADED within ``flap_window`` as half ``flap_threshold``): the system is shown
        DEGRADED until that settles, rather than changing back and forth."""
        return len(status.warn_flips) * 2 >= self.thresholds.flap_threshold

    def _announce(
        self, status: SystemStatus, new: State, why: Why, now: float, events: list[Event]
    ) -> None:
        old = status.announced
        if new == old:
            return
        reason = _english(why)
        status.announced, status.since, status.reason, status.why = new, now, reason, why
        events.append(Event(now, status.agency, status.system, old, new, reason, self.vantage, why))
        if new in _FAILING or old in _FAILING or new in _REACHABLE or old is State.MAINTENANCE:
            # Children's verdicts depend on this one: re-judge them now, not at their next probe.
            for child_key in self.children.get(status.key, ()):
                child = self.systems.get(child_key)
                if child is not None:
                    self._evaluate(child, now, events)


def _english(why: Why) -> str:
    """The English text of a reason: logs, the API's ``reason`` and older readers."""
    return say(why, "en", why.code)


def _check_why(check: CheckStatus) -> Why:
    """``check tcp: connect: refused``, as a code."""
    last = check.last
    inner: Why = Why("failing")
    if last is not None:
        inner = last.why or Why("text", {"text": last.reason})
    return Why("check", {"id": check.key.rsplit("/", 1)[-1], "why": inner})


def _failing_since(status: SystemStatus) -> float:
    """When the system's current failures began (its earliest unhealthy check's first failure)."""
    return min((c.fail_since for c in status.checks.values() if c.healthy is False), default=0.0)


def _count(check: CheckStatus, result: ProbeResult, now: float) -> bool:
    """Update a check's counters; return True when a quick recheck should confirm a failure."""
    check.last, check.last_time = result, now
    if result.ok:
        check.last_ok = now
        check.fail_since = float("inf")
        check.successes += 1
        check.failures = 0
        check.awaiting_recheck = False
        if check.healthy is not True and check.successes >= check.success_threshold:
            check.healthy = True
        # A warning is confirmed and cleared like a failure: one slow answer is not news.
        if result.degraded:
            check.warnings, check.cleans = check.warnings + 1, 0
            if check.warnings >= check.failure_threshold:
                check.warning = True
        else:
            check.warnings, check.cleans = 0, check.cleans + 1
            if check.cleans >= check.success_threshold:
                check.warning = False
        return False
    if check.failures == 0:
        check.fail_since = now
    check.failures += 1
    check.successes = 0
    if check.healthy is False:
        return False
    if check.failures == check.failure_threshold:
        check.awaiting_recheck = True
        return True
    if check.failures > check.failure_threshold:
        check.healthy = False
        check.awaiting_recheck = False
    return False


def _is_flip(old: State, new: State) -> bool:
    return (old in _REACHABLE and new in _FAILING) or (old in _FAILING and new in _REACHABLE)
