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
import yaml
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
                    await asyncio.sleep(1.5)  # a last will firing after a clean stop shows now
                    assert seen[-1]["status"] == "stopped"
                else:
                    daemon.kill()
                    await daemon.wait()
                    await wait_until(lambda: seen[-1]["status"] == "dead", 10, "the last will")
                    assert "ts" not in seen[-1]  # written at start: its time would mislead
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


async def test_a_heartbeat_system_in_the_running_daemon(
    tmp_path: Path, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon wires the receiver: heartbeats over HTTP and MQTT keep the system UP; when
    they stop, it goes DOWN after period + grace."""
    import aiohttp

    from monitor.app import Daemon
    from monitor.config import load_config
    from monitor.state import State

    from .test_daemon import Running

    token = "hb-token-0123456789abcdef"
    monkeypatch.setenv("NPSP_TEST_HB_TOKEN", token)
    path = config(tmp_path, broker.port, free_port())
    data = yaml.safe_load(path.read_text())
    data["agencies"][0]["systems"].append(
        {
            "id": "sync",
            "kind": "integration",
            "name": "Đồng bộ",
            "checks": [
                {
                    "id": "hb",
                    "kind": "heartbeat",
                    "period": "1s",
                    "interval": "500ms",
                    "timeout": "200ms",
                    "token": {"env": "NPSP_TEST_HB_TOKEN"},
                }
            ],
        }
    )
    write_config(path, data)
    ready = asyncio.Event()
    daemon = Daemon(path, load_config(path))
    task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))
    await asyncio.wait_for(ready.wait(), 10)
    running = Running(daemon, task)
    url = f"{running.base}/api/v1/heartbeat/bo-a/sync"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 202
            async with session.post(
                url, headers={"Authorization": "Bearer wrong-token-xxxxxxxx"}
            ) as r:
                assert r.status == 401 and token not in await r.text()
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="agency-sender") as sender:
            for _ in range(8):  # one a second over MQTT: stays UP past period + grace
                await sender.publish(
                    "npsp/heartbeat/bo-a/sync", json.dumps({"token": token}), qos=1
                )
                await asyncio.sleep(1.0)
        assert running.state_of("bo-a/sync") is State.UP
        await wait_until(
            lambda: running.state_of("bo-a/sync") is State.DOWN, 15, "DOWN when silent"
        )
        await running.stop()
        # A restart must not announce the silent system as recovered during its start-up grace.
        ready = asyncio.Event()
        daemon = Daemon(path, load_config(path))
        task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))
        await asyncio.wait_for(ready.wait(), 10)
        running = Running(daemon, task)
        await asyncio.sleep(2.0)  # four probes, all inside period + grace
        assert running.state_of("bo-a/sync") is State.DOWN
        async with aiohttp.ClientSession() as session:
            url = f"{running.base}/api/v1/heartbeat/bo-a/sync"
            async with session.post(url, headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 202
        await wait_until(lambda: running.state_of("bo-a/sync") is State.UP, 10, "UP on a heartbeat")
    finally:
        if not running.task.done():
            await running.stop()
