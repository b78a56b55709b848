"""Shared fixtures: real loopback servers only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.peers import free_port


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
