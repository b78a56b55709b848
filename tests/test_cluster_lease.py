"""Leadership on a real PostgreSQL: one holder at a time, a fencing epoch, and a deposed leader
that can neither claim outbox rows nor record state changes (monitor/cluster/lease.py).

The database's clock decides expiry; a test moves a lease's expiry in the database (the outer
seam) rather than sleeping, and moves each host's monotonic clock by hand."""

from __future__ import annotations

import asyncio

import pytest

from monitor.alerting.outbox import Outbox, OutboxItem
from monitor.cluster.lease import Deposed, Leadership, current
from monitor.config.alerting import OutboxSettings
from monitor.config.cluster import ClusterSettings
from monitor.state import Event, State
from monitor.store import Store
from tests.conftest import ManualClock

SETTINGS = ClusterSettings(failover_after="15s")


@pytest.fixture
def store(pg_store: Store) -> Store:
    return pg_store


async def expire_lease(store: Store) -> None:
    """What the passing of ``lease_ttl`` does, in the database's clock."""
    await store.transact(
        lambda db: db.execute("UPDATE leader_lease SET expires_at = now() - interval '1 second'")
    )


def item(key: str) -> OutboxItem:
    return OutboxItem(key, "email", "ops@example.org", "p", "s", "t", "t", None, None, "vi")


async def test_one_holder_at_a_time_and_renewal_keeps_the_epoch(store: Store) -> None:
    a = Leadership(store, SETTINGS, "gw-1")
    b = Leadership(store, SETTINGS, "gw-2")
    assert await a.step()
    assert a.epoch == 1
    assert not await b.step()
    assert b.epoch is None and not b.holds
    assert await a.step()
    assert a.epoch == 1, "a renewal is not a takeover"
    holder = await store.transact(current)
    assert holder is not None and holder.vantage == "gw-1" and holder.expires_in > 8.0


async def test_an_expired_lease_is_taken_with_a_new_epoch_and_the_old_leader_is_fenced(
    store: Store,
) -> None:
    a = Leadership(store, SETTINGS, "gw-1")
    b = Leadership(store, SETTINGS, "gw-2")
    outbox_a = Outbox(store, OutboxSettings(), workers_store=store.fenced(a.fence))
    outbox_b = Outbox(store, OutboxSettings(), workers_store=store.fenced(b.fence))
    assert await a.step()
    await outbox_a.enqueue([item("k1"), item("k2")])
    claimed = await outbox_a.claim("email", 2e9)
    assert claimed is not None and claimed.item.key == "k1"

    await expire_lease(store)  # gw-1 paused past its lease
    assert await b.step()
    assert b.epoch == 2

    # gw-1 wakes up still believing it leads (its monotonic clock did not move): the fence says no.
    with pytest.raises(Deposed):
        await outbox_a.claim("email", 2e9)
    with pytest.raises(Deposed):
        await store.fenced(a.fence).record(
            [Event(1.0, "bo-a", "cong", State.UP, State.DOWN, "x", "gw-1")]
        )
    assert await store.states() == {}, "the deposed leader recorded nothing"
    # The new leader takes back the row caught mid-send and sends both.
    assert await outbox_b.recover() == 1
    keys = set()
    for _ in range(2):
        got = await outbox_b.claim("email", 2e9)
        assert got is not None
        keys.add(got.item.key)
    assert keys == {"k1", "k2"}
    # And the old leader's next step sees it lost the lease.
    assert not await a.step()
    assert not a.holds


async def test_a_released_lease_is_taken_at_once_and_a_restart_is_a_new_epoch(store: Store) -> None:
    a = Leadership(store, SETTINGS, "gw-1")
    assert await a.step()
    await a._release()
    b = Leadership(store, SETTINGS, "gw-2")
    assert await b.step() and b.epoch == 2
    await b._release()
    again = Leadership(store, SETTINGS, "gw-2")  # the same host, restarted: a new holder
    assert await again.step() and again.epoch == 3


async def test_a_leader_that_cannot_renew_stops_leading_by_its_own_clock(store: Store) -> None:
    clock = ManualClock()
    a = Leadership(store, SETTINGS, "gw-1", monotonic=clock)
    assert await a.step()
    a._gained = True  # what run() sets once the takeover is done
    assert a.leading
    clock.now += SETTINGS.lease_ttl - 0.1
    assert a.leading
    clock.now += 0.2
    assert not a.leading and not a.holds, "past its lease it must assume another took over"


async def test_an_ineligible_host_gives_the_lease_up(store: Store) -> None:
    a = Leadership(store, SETTINGS, "gw-1")
    assert await a.step()
    a.eligible = lambda: False  # its uplink canaries fail while others vote
    assert not await a.step()
    b = Leadership(store, SETTINGS, "gw-2")
    assert await b.step()


async def test_run_calls_the_hooks_once_per_takeover(store: Store) -> None:
    """run() with a real (short) renewal period: gw-1 gains, is deposed, gains again."""
    settings = ClusterSettings(failover_after="3s")
    a = Leadership(store, settings, "gw-1")
    said: list[str] = []

    async def gain() -> None:
        said.append(f"gain {a.epoch}")

    async def loss() -> None:
        said.append("loss")

    task = asyncio.create_task(a.run(gain, loss))
    try:
        for _ in range(100):
            if said:
                break
            await asyncio.sleep(0.05)
        assert said == ["gain 1"]
        assert a.leading
        # Another host takes the lease over (gw-1's expired in the database's clock).
        await expire_lease(store)
        b = Leadership(store, settings, "gw-2")
        assert await b.step()
        for _ in range(100):
            if "loss" in said:
                break
            await asyncio.sleep(0.05)
        assert said == ["gain 1", "loss"]
        await b._release()
        for _ in range(100):
            if len(said) == 3:
                break
            await asyncio.sleep(0.05)
        assert said == ["gain 1", "loss", "gain 3"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    holder = await store.transact(current)
    assert holder is not None and holder.expires_in <= 0, "a stopped leader frees its lease"
