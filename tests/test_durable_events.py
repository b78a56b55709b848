"""A state change is committed before anything reads it (issue 9, item 1).

The engine runs for real against a closed loopback port; each subscriber, when it is handed a
batch, looks in the database through its *own* connection (as a daemon restarted after a
kill -9 would): every event it is given must already be there.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from monitor.config import load_config
from monitor.engine import Engine
from monitor.state import Event, State
from monitor.store import Store
from probes import ProbeEnv
from tests.peers import free_port

from .conftest import eventually
from .test_daemon import config_dict, write_config


async def test_subscribers_see_only_committed_state_changes(tmp_path: Path) -> None:
    # Nothing listens: the secure server goes down, the 30 systems behind it unreachable.
    targets = {"secure-server": free_port(), **{f"s{i}": free_port() for i in range(30)}}
    config = load_config(write_config(tmp_path / "c.yaml", config_dict(tmp_path, targets)))
    store = await Store.open(config.state_db)
    seen: list[Event] = []
    missing: list[Event] = []

    def sink(events: list[Event]) -> None:
        with sqlite3.connect(config.state_db) as db:
            stored = {
                (a, s, n, t)
                for a, s, n, t in db.execute(
                    "SELECT agency, system, new_state, ts FROM state_changes"
                )
            }
        for e in events:
            seen.append(e)
            if (e.agency, e.system, e.new.value, e.time) not in stored:
                missing.append(e)

    engine = Engine(config, store, ProbeEnv())
    engine.subscribers.append(sink)
    try:
        await engine.start()
        tasks = [
            asyncio.create_task(engine.scheduler.run()),
            asyncio.create_task(engine.persist_forever()),
        ]
        await eventually(lambda: len({e.system for e in seen}) == len(targets))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await store.close()
    assert missing == [], f"{len(missing)} events reached a subscriber before their commit"


async def test_a_failing_store_holds_events_back_until_they_are_saved(tmp_path: Path) -> None:
    """While the database refuses writes, no subscriber hears of the change; once it accepts
    them again the same events are saved, then delivered, in order."""
    port = free_port()
    config = load_config(
        write_config(tmp_path / "c.yaml", config_dict(tmp_path, {"secure-server": port}))
    )
    store = await Store.open(config.state_db)
    seen: list[Event] = []
    engine = Engine(config, store, ProbeEnv())
    engine.subscribers.append(seen.extend)
    blocker = sqlite3.connect(config.state_db, timeout=0)
    try:
        await engine.start()
        # Fail fast in the test (the daemon waits up to 10 s for a lock).
        await store.transact(lambda db: db.execute("PRAGMA busy_timeout=50"))
        blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        tasks = [
            asyncio.create_task(engine.scheduler.run()),
            asyncio.create_task(engine.persist_forever()),
        ]
        await eventually(lambda: engine.store_failures >= 1)
        assert seen == []
        blocker.execute("ROLLBACK")
        await eventually(lambda: any(e.new is State.DOWN for e in seen))
        with sqlite3.connect(config.state_db) as db:
            rows = db.execute("SELECT new_state FROM state_changes").fetchall()
        assert ("down",) in rows
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        blocker.close()
        await store.close()
