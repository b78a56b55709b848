"""The whole daemon in-process against real loopback targets: metrics, API, restart, reload."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from monitor import accounts
from monitor.app import Daemon
from monitor.config import load_config
from monitor.engine import Engine
from monitor.metrics import DaemonMetrics
from monitor.state import State
from monitor.store import Store
from monitor.web.app import build_app
from probes import ProbeEnv

from .conftest import TcpTarget, eventually


def config_dict(tmp_path: Path, targets: dict[str, int]) -> dict[str, Any]:
    return {
        "vantage": "gw-test",
        "listen": "127.0.0.1:0",
        "state_db": str(tmp_path / "state.db"),
        "defaults": {
            "interval": "200ms",
            "timeout": "100ms",
            "failure_threshold": 1,
            "recheck_delay": "10ms",
        },
        "agencies": [
            {
                "id": "bo-tai-chinh",
                "kind": "ministry",
                "name_vi": "Bộ Tài chính",
                "name_en": "Ministry of Finance",
                "code": "BTC",
                "systems": [
                    {
                        "id": name,
                        "kind": "secure-server" if name == "secure-server" else "one-stop",
                        "name": name,
                        **({"depends_on": "secure-server"} if name != "secure-server" else {}),
                        "checks": [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": port}],
                    }
                    for name, port in targets.items()
                ],
            }
        ],
    }


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


class Running:
    def __init__(self, daemon: Daemon, task: asyncio.Task[None]) -> None:
        self.daemon = daemon
        self.task = task
        self._token: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.daemon.http_port}"

    async def token(self) -> str:
        """A national-admin's token (made once, straight in the daemon's database)."""
        if self._token is None:
            engine = self.daemon.engine
            assert engine is not None
            _, self._token = await accounts.create(
                engine.store,
                actor=None,
                account_id="test-admin",
                name="Test admin",
                role="national-admin",
                agency=None,
                agencies=set(),
                now=time.time(),
            )
        return self._token

    async def get(self, path: str) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {await self.token()}"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.base + path, headers=headers) as response,
        ):
            return response.status, await response.text()

    async def api(self, path: str) -> Any:
        status, text = await self.get(path)
        assert status == 200, text
        return json.loads(text)

    def state_of(self, key: str) -> State:
        engine = self.daemon.engine
        assert engine is not None
        return engine.state.display_state(engine.state.systems[key])

    async def stop(self) -> None:
        self.daemon.request_stop()
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def start() -> AsyncIterator[Callable[[Path], Awaitable[Running]]]:
    running: list[Running] = []

    async def go(path: Path) -> Running:
        ready = asyncio.Event()
        daemon = Daemon(path, load_config(path))
        task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))
        await asyncio.wait_for(ready.wait(), 10)
        running.append(Running(daemon, task))
        return running[-1]

    yield go
    for r in running:
        if not r.task.done():
            await r.stop()


def metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            got = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(got.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


async def test_probes_state_metrics_and_api(
    tmp_path: Path,
    tcp_target: Callable[[], Awaitable[TcpTarget]],
    start: Callable[[Path], Awaitable[Running]],
) -> None:
    mcbm, motcua = await tcp_target(), await tcp_target()
    path = write_config(
        tmp_path / "c.yaml",
        config_dict(tmp_path, {"secure-server": mcbm.port, "one-stop": motcua.port}),
    )
    run = await start(path)
    await eventually(lambda: run.state_of("bo-tai-chinh/one-stop") is State.UP)
    await eventually(lambda: run.state_of("bo-tai-chinh/secure-server") is State.UP)

    status, text = await run.get("/metrics")
    assert status == 200
    labels = {"agency": "bo-tai-chinh", "system": "secure-server", "check": "tcp", "kind": "tcp"}
    assert metric(text, "npsp_probe_success", **labels) == 1.0
    assert 0 < (metric(text, "npsp_probe_duration_seconds", **labels) or 0) < 0.1
    assert (
        metric(text, "npsp_system_up", agency="bo-tai-chinh", system="one-stop", kind="one-stop")
        == 1.0
    )
    assert metric(text, "npsp_system_state", system="one-stop", state="up") == 1.0
    assert metric(text, "npsp_config_last_reload_successful") == 1.0
    assert (metric(text, "npsp_scheduler_lag_seconds_count") or 0) > 0
    assert (await run.api("/healthz"))["status"] == "ok"

    # The secure server loses its connection; the one-stop system behind it too.
    await mcbm.down()
    await motcua.down()
    await eventually(lambda: run.state_of("bo-tai-chinh/secure-server") is State.DOWN)
    await eventually(lambda: run.state_of("bo-tai-chinh/one-stop") is State.UNREACHABLE)
    view = await run.api("/api/v1/systems/bo-tai-chinh/secure-server")
    assert view["state"] == "down"
    assert view["reason"] == "check tcp: connect: refused"
    assert view["checks"][0]["recent"][-1]["reason"] == "connect: refused"
    assert view["checks"][0]["recent"][-1]["vantage"] == "gw-test"
    await run.daemon.engine.flush()  # type: ignore[union-attr]
    changes = (await run.api("/api/v1/state-changes?limit=10"))["state_changes"]
    assert [(c["system"], c["old"], c["new"]) for c in changes[:2]] == [
        ("one-stop", "up", "unreachable"),
        ("secure-server", "up", "down"),
    ]
    status, text = await run.get("/api/v1/systems/bo-tai-chinh/nope")
    assert status == 404 and "unknown system" in text
    status, _ = await run.get("/api/v1/state-changes?limit=abc")
    assert status == 400


async def test_state_survives_a_restart(
    tmp_path: Path,
    tcp_target: Callable[[], Awaitable[TcpTarget]],
    start: Callable[[Path], Awaitable[Running]],
) -> None:
    target = await tcp_target()
    await target.down()
    data = config_dict(tmp_path, {"secure-server": target.port})
    path = write_config(tmp_path / "c.yaml", data)
    first = await start(path)
    await eventually(lambda: first.state_of("bo-tai-chinh/secure-server") is State.DOWN)
    await first.stop()

    # Restart with a long interval: before any new probe, the state is already known.
    data["defaults"]["interval"] = "1h"
    second = await start(write_config(path, data))
    assert second.state_of("bo-tai-chinh/secure-server") is State.DOWN
    view = await second.api("/api/v1/systems/bo-tai-chinh/secure-server")
    assert view["state"] == "down" and view["reason"] == "check tcp: connect: refused"
    await second.stop()
    store = await Store.open(tmp_path / "state.db")
    try:
        changes = await store.changes(10)
    finally:
        await store.close()
    # one PENDING->DOWN from the first run; the restart announced nothing again
    assert [(e.old, e.new) for e in changes] == [(State.PENDING, State.DOWN)]


async def test_reload_keeps_old_config_on_error_and_drops_removed_series(
    tmp_path: Path,
    tcp_target: Callable[[], Awaitable[TcpTarget]],
    start: Callable[[Path], Awaitable[Running]],
) -> None:
    a, b = await tcp_target(), await tcp_target()
    data = config_dict(tmp_path, {"secure-server": a.port, "one-stop": b.port})
    path = write_config(tmp_path / "c.yaml", data)
    run = await start(path)
    await eventually(lambda: run.state_of("bo-tai-chinh/one-stop") is State.UP)
    await eventually(lambda: run.state_of("bo-tai-chinh/secure-server") is State.UP)
    engine = run.daemon.engine
    assert engine is not None
    kept = engine.state.systems["bo-tai-chinh/secure-server"].checks[
        "bo-tai-chinh/secure-server/tcp"
    ]

    path.write_text(path.read_text() + "\nbogus: 1\n")
    assert await run.daemon.reload() is False
    _, text = await run.get("/metrics")
    assert metric(text, "npsp_config_last_reload_successful") == 0.0
    assert metric(text, "npsp_probe_success", system="one-stop") == 1.0  # old config still runs

    data["agencies"][0]["systems"] = data["agencies"][0]["systems"][:1]
    write_config(path, data)
    run.daemon.request_reload()  # as SIGHUP does
    await eventually(lambda: "bo-tai-chinh/one-stop" not in engine.registry.systems)
    _, text = await run.get("/metrics")
    assert metric(text, "npsp_config_last_reload_successful") == 1.0
    assert "one-stop" not in text
    # the unchanged check kept its state object (counters, verdict, history)
    assert (
        engine.state.systems["bo-tai-chinh/secure-server"].checks["bo-tai-chinh/secure-server/tcp"]
        is kept
    )
    assert engine.state.systems["bo-tai-chinh/secure-server"].announced is State.UP


async def test_healthz_fails_when_the_scheduler_makes_no_progress(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", config_dict(tmp_path, {"secure-server": 9}))
    config = load_config(path)
    now = [1000.0]
    store = await Store.open(config.state_db)
    try:
        engine = Engine(config, store, ProbeEnv(), monotonic=lambda: now[0])
        await engine.start()
        async with TestClient(TestServer(build_app(engine, DaemonMetrics()))) as client:
            assert (await client.get("/healthz")).status == 200
            now[0] += 31  # the dispatcher has not run for 31 s (limit 30 s)
            response = await client.get("/healthz")
            assert response.status == 503
            assert "no progress for 31s" in (await response.json())["error"]
    finally:
        await store.close()


async def test_a_bad_config_at_start_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from monitor.cli import main

    path = tmp_path / "c.yaml"
    path.write_text("listen: nowhere\n")
    assert await asyncio.to_thread(main, ["run", "-c", str(path)]) == 2
    assert f"{path}:1: listen: listen must be HOST:PORT" in capsys.readouterr().err


async def test_the_outbox_backlog_is_current_at_every_scrape(
    tmp_path: Path, start: Callable[[Path], Awaitable[Running]]
) -> None:
    """Issue 9.15: after a kill the gauge read 417 pending while 412 were already delivered
    (it was refreshed every 5 s). Rows appear and go without any worker: the scrape right
    after each change must show it."""
    from monitor.alerting.outbox import OutboxItem

    path = write_config(tmp_path / "c.yaml", config_dict(tmp_path, {"secure-server": 9}))
    run = await start(path)
    outbox = run.daemon.outbox
    assert outbox is not None
    items = [
        OutboxItem(f"k{i}", "sms", "+84900000001", "p", "s", "t", "t", None, None, "vi")
        for i in range(3)
    ]  # no SMS channel configured: no worker takes them
    await outbox.enqueue(items)
    _, text = await run.get("/metrics")
    assert metric(text, "npsp_outbox_pending", channel="sms") == 3.0
    await outbox.store.transact(lambda db: db.execute("UPDATE outbox SET status = 'sent'"))
    _, text = await run.get("/metrics")
    assert metric(text, "npsp_outbox_pending", channel="sms") == 0.0
