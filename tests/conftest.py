"""Shared fixtures: real loopback servers only."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.dblocation import PostgresUrl
from monitor.pglocal import LocalPostgres, find_bindir
from monitor.store import Store
from tests.peers import free_port


@pytest.fixture(autouse=True)
def _collect_leaks() -> Iterator[None]:
    """Collect garbage when each test ends (after its loop has closed): a transport or socket
    it left open is then reported as that test's ResourceWarning, not as a random later
    test's (the garbage collector runs whenever it likes; a fresh-clone CI run once failed a
    PostgreSQL-outage test on an unclosed transport whose owner was never found)."""
    yield
    gc.collect()


class TcpTarget:
    """A loopback TCP server that can be taken down and brought back on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: asyncio.Server | None = None

    async def up(self) -> None:
        async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", self.port, reuse_address=True)

    async def down(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


@pytest.fixture
async def tcp_target() -> AsyncIterator[Callable[[], Awaitable[TcpTarget]]]:
    made: list[TcpTarget] = []

    async def make() -> TcpTarget:
        target = TcpTarget()
        await target.up()
        made.append(target)
        return target

    yield make
    for target in made:
        await target.down()


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a condition the daemon reaches on its own (bounded; fails with a clear message)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not reached within {timeout}s")
        await asyncio.sleep(0.02)


# --- PostgreSQL (issue 13): one throwaway server for the run, a fresh database per test --------


@pytest.fixture(scope="session")
def local_postgres() -> Iterator[LocalPostgres]:
    """One real PostgreSQL on 127.0.0.1 for the whole run (monitor/pglocal.py).

    Without PostgreSQL installed the tests that need it are skipped, except on CI (``$CI`` set):
    there they fail, so that a machine without it never passes by skipping the PostgreSQL half.
    """
    if find_bindir() is None:
        reason = (
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no $PG_BINDIR); "
            "scripts/test-services.sh installs it"
        )
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI: {reason}", pytrace=False)
        pytest.skip(reason)
    server = LocalPostgres()
    server.start_blocking()
    yield server
    server.stop_blocking()


@pytest.fixture
def pg_url(local_postgres: LocalPostgres, request: pytest.FixtureRequest) -> tuple[str, Path]:
    """``(url, password_file)`` of a fresh, empty database owned by ``npsp``, for this test only."""
    stem = re.sub(r"[^a-z0-9_]+", "_", request.node.name.lower())[:40].strip("_") or "t"
    name = f"t_{stem}_{secrets.token_hex(4)}"
    if not local_postgres.is_running():  # an earlier test stopped or killed it and then failed
        local_postgres.start_server_blocking()
    return local_postgres.create_database_blocking(name), local_postgres.password_file


@dataclass(frozen=True)
class StateLocation:
    """Where a store-level test keeps its database, on one backend or the other."""

    location: Path | PostgresUrl
    password: str | None

    async def open(self, *, create: bool = True) -> Store:
        return await Store.open(self.location, create=create, password=self.password)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_location(request: pytest.FixtureRequest, tmp_path: Path) -> StateLocation:
    """The store-level suites run on both backends: a SQLite file, and a fresh database of the
    real PostgreSQL (``pg_url``; skipped without PostgreSQL, failed on CI)."""
    if request.param == "sqlite":
        return StateLocation(tmp_path / "state.db", None)
    url, password_file = request.getfixturevalue("pg_url")
    return StateLocation(PostgresUrl(url), Path(password_file).read_text().strip())


@pytest.fixture
async def pg_store(pg_url: tuple[str, Path]) -> AsyncIterator[Store]:
    """A store open on a fresh database of the real PostgreSQL (the cluster's tables in it)."""
    url, password_file = pg_url
    opened = await Store.open(PostgresUrl(url), password=password_file.read_text().strip())
    yield opened
    await opened.close()


class ManualClock:
    """A monotonic or wall clock that moves only when a test moves it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
