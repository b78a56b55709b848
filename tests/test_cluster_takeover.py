"""A takeover brings the new leader's state machine and the store together (issue 13, item 5).

Found by bench/cluster_failover.py: with the leader killed every few seconds during a storm, a
host that took over resolved outages everyone had been told about (its own view, restored at
its restart, was older than what the last leader recorded) and re-opened them under new
incidents, so agencies got the same 20-system digest up to five times. Here the real engine,
state machine and vote board of one host, on the injected clock, against a store written as the
last leader left it.
"""

from __future__ import annotations

from pathlib import Path

from monitor.changes_store import StoredState
from monitor.cluster.votes import VoteBoard
from monitor.config import load_config
from monitor.config.cluster import ClusterSettings
from monitor.engine import Engine
from monitor.state import Event, State
from monitor.store import Store
from npsp_common.types import ProbeResult
from probes import ProbeEnv

from .conftest import ManualClock
from .test_daemon import config_dict, write_config

KEY = "bo-tai-chinh/secure-server"
CHECK = f"{KEY}/tcp"
OK = ProbeResult(True, "connected", 0.001)
REFUSED = ProbeResult(False, "connect: refused", 0.001)


class Host:
    """One gateway host's engine as a follower: results go through its state machine (and its
    vote board, alone: no other vantage has written), nothing is recorded until it leads."""

    def __init__(self, engine: Engine, clock: ManualClock) -> None:
        self.engine, self.clock = engine, clock
        self.recorded: list[Event] = []

    def see(self, result: ProbeResult, times: int = 1) -> None:
        """Results of the check, one a second, down the path the scheduler's callback takes
        (the vote board, the state machine, recording when this host leads)."""
        job = self.engine.scheduler.jobs()[CHECK]
        for _ in range(times):
            self.clock.now += 1.0
            self.engine._on_result(job, result, self.clock.now)

    async def flush(self) -> list[Event]:
        await self.engine.flush()
        return self.recorded

    def announced(self) -> State:
        return self.engine.state.systems[KEY].announced


async def host(tmp_path: Path) -> tuple[Host, Store]:
    data = config_dict(tmp_path, {"secure-server": 9})
    data["defaults"].update(failure_threshold=2, success_threshold=2)
    config = load_config(write_config(tmp_path / "c.yaml", data))
    store = await Store.open(config.state_db)
    clock = ManualClock(1_000_000.0)
    votes = VoteBoard(store, ClusterSettings(), "gw-2", "gw-2:1", wall_clock=clock)
    engine = Engine(config, store, ProbeEnv(), wall_clock=clock, votes=votes)
    await engine.start()
    h = Host(engine, clock)
    engine._subscribers = (h.recorded.extend,)  # what persist_forever would set, without its loop
    return h, store


def stored(state: State, since: float) -> dict[str, StoredState]:
    return {KEY: StoredState(state, since, "check tcp: connect: refused", None)}


async def test_a_stale_view_takes_the_recorded_outage_and_does_not_resolve_it(
    tmp_path: Path,
) -> None:
    h, store = await host(tmp_path)
    try:
        h.see(OK, 2)
        assert h.announced() is State.UP
        # The last leader recorded (and paged) the outage after this host's last look.
        h.engine.take_over(stored(State.DOWN, h.clock.now + 5), "gw-2")
        assert await h.flush() == [], "no change to hand on: the store is newer"
        assert h.announced() is State.DOWN
        # One good result is not a recovery: the counts start afresh after the takeover.
        h.see(OK)
        h.see(REFUSED, 3)
        assert await h.flush() == [], "still down: nothing to say"
        h.see(OK, 2)
        [recovered] = await h.flush()
        assert (recovered.old, recovered.new) == (State.DOWN, State.UP)
    finally:
        await store.close()


async def test_a_change_the_last_leader_did_not_record_is_handed_on_dated_when_seen(
    tmp_path: Path,
) -> None:
    h, store = await host(tmp_path)
    try:
        h.see(OK, 2)
        up_since = h.clock.now
        h.see(REFUSED, 3)
        assert h.announced() is State.DOWN
        seen_at = h.engine.state.systems[KEY].since
        assert await h.flush() == [], "a follower records nothing"
        h.clock.now += 30  # the takeover comes later
        h.engine.take_over(stored(State.UP, up_since), "gw-2")
        [event] = await h.flush()
        assert (event.old, event.new, event.time) == (State.UP, State.DOWN, seen_at)
        [(state, since)] = [(s.state, s.since) for s in (await store.states()).values()]
        assert (state, since) == (State.DOWN, seen_at)
    finally:
        await store.close()


async def test_the_same_outage_is_not_recorded_again(tmp_path: Path) -> None:
    """Both saw it down, the last leader first: nothing to hand on, and the store keeps the
    outage's recorded start (its incident, and who was told of it, stay the same)."""
    h, store = await host(tmp_path)
    try:
        h.see(OK, 2)
        h.see(REFUSED, 3)
        h.engine.take_over(stored(State.DOWN, h.clock.now - 2), "gw-2")
        assert await h.flush() == []
        h.see(REFUSED, 3)
        assert await h.flush() == []
    finally:
        await store.close()


async def test_changes_seen_while_taking_over_are_left_to_reconcile(tmp_path: Path) -> None:
    """Between taking the lease and reconciling, this host's view may be older than the
    store's: what it announces then is not recorded (reconcile compares it afterwards); after
    it steps down nothing is recorded either, not even what it queued as the leader."""
    h, store = await host(tmp_path)
    try:
        h.see(OK, 2)
        h.see(REFUSED, 3)  # announced while the takeover reads the store
        assert await h.flush() == []
        h.engine.take_over(stored(State.DOWN, h.clock.now - 1), "gw-2")
        h.see(OK, 2)
        [recovered] = await h.flush()
        assert recovered.new is State.UP
        h.see(REFUSED, 3)  # queued as the leader, not written yet...
        h.engine.step_down()  # ...when the lease is lost
        h.see(OK, 2)
        assert h.announced() is State.UP
        assert await h.flush() == [recovered], "recorded after stepping down"
        assert [s.state for s in (await store.states()).values()] == [State.UP]
    finally:
        await store.close()
