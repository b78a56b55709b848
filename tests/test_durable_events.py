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
    try:
        await engine.start()
        tasks = [
            asyncio.create_task(engine.scheduler.run()),
            asyncio.create_task(engine.persist_forever([sink])),
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
    blocker = sqlite3.connect(config.state_db, timeout=0)
    try:
        await engine.start()
        # Fail fast in the test (the daemon waits up to 10 s for a lock).
        await store.transact(lambda db: db.execute("PRAGMA busy_timeout=50"))
        blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        tasks = [
            asyncio.create_task(engine.scheduler.run()),
            asyncio.create_task(engine.persist_forever([seen.extend])),
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


async def test_the_database_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """Issue 10.10: the command-line tools and the demo created state.db 0644 under umask 022
    (the unit's UMask=0077 covers only the service): it holds accounts, audit and contacts."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        store = await Store.open(tmp_path / "state" / "state.db")
        await store.transact(lambda db: db.execute("CREATE TABLE t (x)"))
        for suffix in ("-wal", "-shm"):  # while open, as the running daemon has them
            side = tmp_path / "state" / f"state.db{suffix}"
            assert stat.S_IMODE(side.stat().st_mode) == 0o600, side
        await store.close()
        existing = tmp_path / "by-hand"
        existing.mkdir(mode=0o755)
        loose = existing / "loose.db"
        loose.touch(mode=0o644)
        await (await Store.open(loose)).close()
        assert stat.S_IMODE(existing.stat().st_mode) == 0o700  # an open folder is tightened
        # A shared folder (here 1777, as /tmp; or one holding other files) is left as it is.
        shared = tmp_path / "shared"
        shared.mkdir()
        shared.chmod(0o1777)
        await (await Store.open(shared / "state.db")).close()
        assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
        busy = tmp_path / "busy"
        busy.mkdir(mode=0o755)
        (busy / "someone-elses.txt").touch()
        await (await Store.open(busy / "state.db")).close()
        assert stat.S_IMODE(busy.stat().st_mode) == 0o755
    finally:
        os.umask(old)
    for path in (tmp_path / "state" / "state.db", tmp_path / "state" / "state.db-wal", loose):
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


async def test_a_flush_from_outside_the_store_writer_reaches_its_subscribers(
    tmp_path: Path,
) -> None:
    """Review of issue 12: the subscribers were named only to the store-writer's loop, so a
    flush from elsewhere (the shutdown's, a test's) saved a batch and handed it to nobody: an
    outage the pipeline never heard of. The engine keeps the subscribers its writer runs with."""
    from npsp_common.types import Why

    config = load_config(
        write_config(tmp_path / "c.yaml", config_dict(tmp_path, {"secure-server": free_port()}))
    )
    store = await Store.open(config.state_db)
    seen: list[Event] = []
    engine = Engine(config, store, ProbeEnv())
    try:
        await engine.start()
        writer = asyncio.create_task(engine.persist_forever([seen.extend]))
        await asyncio.sleep(0)  # the writer starts, then waits for events
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        key = next(iter(engine.registry.systems))
        engine.set_maintenance({key: Why("maintenance.window", {"id": 1})})
        assert await engine.flush()
    finally:
        await store.close()
    assert [(f"{e.agency}/{e.system}", e.new) for e in seen] == [(key, State.MAINTENANCE)]
