"""The dead man's switch: "alive" retained on MQTT and pinged over HTTP while the scheduler
progresses; "stopped" on a clean stop; "dead" published by the broker (the last will) when the
daemon is killed; nothing said while the scheduler is stuck."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from aiohttp import web

from monitor.deadman import DeadmanSettings, DeadMansSwitch
from tests.peers import free_port, wait_until
from tests.peers.mosquitto import Mosquitto, available

from .test_daemon import write_config

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not available(), reason="mosquitto is not installed"),
]


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    async with Mosquitto(tmp_path) as server:
        yield server


class PingServer:
    def __init__(self) -> None:
        self.hits = 0
        self.port = free_port()

    async def __aenter__(self) -> PingServer:
        async def ping(_request: web.Request) -> web.Response:
            self.hits += 1
            return web.Response(text="OK")

        app = web.Application()
        app.router.add_get("/ping/npsp", ping)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


def config(tmp_path: Path, broker: int, ping: int) -> Path:
    return write_config(
        tmp_path / "npsp.yaml",
        {
            "vantage": "gw-test",
            "listen": f"127.0.0.1:{free_port()}",
            "state_db": str(tmp_path / "state.db"),
            "defaults": {"interval": "1s", "timeout": "500ms"},
            "channels": {"mqtt": {"host": "127.0.0.1", "port": broker, "reconnect_max": "1s"}},
            "deadman": {"interval": "200ms", "ping_url": f"http://127.0.0.1:{ping}/ping/npsp"},
            "agencies": [
                {
                    "id": "bo-a",
                    "kind": "ministry",
                    "name_vi": "Bộ A",
                    "name_en": "Ministry A",
                    "code": "BA",
                    "systems": [
                        {
                            "id": "s",
                            "kind": "other",
                            "name": "S",
                            "checks": [
                                {"id": "t", "kind": "tcp", "host": "127.0.0.1", "port": free_port()}
                            ],
                        }
                    ],
                }
            ],
        },
    )


async def statuses(port: int, seen: list[dict[str, Any]]) -> None:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"watch-{uuid.uuid4().hex[:6]}") as c:
        await c.subscribe("npsp/monitor/+/alive", qos=1)
        async for m in c.messages:
            assert isinstance(m.payload, bytes)
            seen.append(json.loads(m.payload))


async def test_alive_while_running_stopped_on_stop_dead_when_killed(
    tmp_path: Path, broker: Mosquitto
) -> None:
    seen: list[dict[str, Any]] = []
    watcher = asyncio.create_task(statuses(broker.port, seen))
    try:
        async with PingServer() as ping:
            path = config(tmp_path, broker.port, ping.port)
            for ending in ("SIGTERM", "SIGKILL"):
                seen.clear()
                daemon = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "monitor", "run", "-c", str(path),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                await wait_until(
                    lambda: sum(s["status"] == "alive" for s in seen) >= 3, 20, "alive x3"
                )
                assert seen[-1]["vantage"] == "gw-test" and seen[-1]["checks"] == 1
                assert ping.hits >= 2
                if ending == "SIGTERM":
                    daemon.send_signal(signal.SIGTERM)
                    assert await daemon.wait() == 0
                    await wait_until(lambda: seen[-1]["status"] == "stopped", 10, "stopped")
                else:
                    daemon.kill()
                    await daemon.wait()
                    await wait_until(lambda: seen[-1]["status"] == "dead", 10, "the last will")
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def test_nothing_is_said_while_the_scheduler_is_stuck() -> None:
    said: list[bytes] = []

    async def publish(_topic: str, payload: bytes) -> None:
        said.append(payload)

    progressing = True
    switch = DeadMansSwitch(
        DeadmanSettings(interval="1s"), "gw-1", progressing=lambda: progressing, publish=publish
    )
    await switch.beat(None)
    progressing = False
    await switch.beat(None)
    await switch.beat(None)
    assert len(said) == 1 and json.loads(said[0])["status"] == "alive"
    await switch.stop()
    assert json.loads(said[-1])["status"] == "stopped"
