"""Push heartbeats: the probe on an injected clock, the HTTP route on a real loopback server,
MQTT through a real Mosquitto broker, and the engine turning silence into DOWN."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from monitor.broker import MqttPublisher, Settings
from monitor.config import ConfigError, load_config
from monitor.engine import Engine
from monitor.heartbeats import MAX_BODY, TOPIC_FILTER, HeartbeatReceiver, heartbeat_route
from monitor.metrics import DaemonMetrics
from monitor.registry import Registry
from monitor.state import State
from monitor.store import Store
from monitor.web.app import build_app
from monitor.web.routes import aiohttp_routes
from npsp_common.types import ProbeResult
from probes import PROBES, Probe, ProbeEnv
from probes.heartbeat import HeartbeatBoard, Spec
from tests.peers import wait_until
from tests.peers.mosquitto import Mosquitto, available

from .conftest import eventually
from .test_daemon import write_config

pytestmark = pytest.mark.timeout(60)

# Made up, long enough, and searched for in logs, answers and reprs.
TOKEN_A = "hb-token-A-7Qm2xV9pLk4sT8wZ"
TOKEN_B = "hb-token-B-3Fj6nR1cYd5uH0eG"
T0 = 10_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def system(sid: str, checks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": sid, "kind": "integration", "name": sid, "checks": checks}


def hb_check(
    token_file: Path | None = None, *, env: str | None = None, **extra: Any
) -> dict[str, Any]:
    source = {"env": env} if env is not None else {"file": str(token_file)}
    return {"id": "hb", "kind": "heartbeat", "period": "5m", "token": source, **extra}


def config_data(tmp_path: Path, systems: list[dict[str, Any]], **defaults: Any) -> dict[str, Any]:
    return {
        "vantage": "gw-test",
        "listen": "127.0.0.1:0",
        "state_db": str(tmp_path / "state.db"),
        "defaults": defaults,
        "agencies": [
            {
                "id": "bo-noi-vu",
                "kind": "ministry",
                "name_vi": "Bộ Nội vụ",
                "name_en": "Ministry of Home Affairs",
                "code": "BNV",
                "systems": systems,
            }
        ],
    }


def token_file(tmp_path: Path, name: str, token: str) -> Path:
    path = tmp_path / name
    path.write_text(token + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


class Fleet:
    """A registry of two heartbeat systems (own tokens) and one probed system, on one board."""

    def __init__(self, tmp_path: Path, clock: Clock, *systems: dict[str, Any]) -> None:
        self.clock = clock
        self.board = HeartbeatBoard(clock=clock)
        self.env = ProbeEnv(heartbeats=self.board)
        if not systems:
            file_a = token_file(tmp_path, "a.token", TOKEN_A)
            file_b = token_file(tmp_path, "b.token", TOKEN_B)
            systems = (
                system("sync-job", [hb_check(file_a, grace="30s")]),
                system("one-stop", [hb_check(file_b, grace="30s")]),
                system("portal", [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": 9}]),
            )
        path = write_config(tmp_path / "c.yaml", config_data(tmp_path, list(systems)))
        self.registry = Registry.from_config(load_config(path))
        self.receiver = HeartbeatReceiver(self.board, lambda: self.registry)

    def probe(self, system_id: str, *, now: bool = False) -> Probe:
        """The system's heartbeat probe, built when the daemon started (``now``: built now,
        as a reload does)."""
        entry = self.registry.checks[f"bo-noi-vu/{system_id}/hb"]
        saved = self.clock.now
        if not now:
            self.clock.now = self.board.started
        try:
            return PROBES["heartbeat"].build(entry.spec, self.env)
        finally:
            self.clock.now = saved

    def send(self, system_id: str, token: str | None, **options: Any) -> tuple[int, str]:
        return self.receiver.accept("bo-noi-vu", system_id, token, **options)


async def run(probe: Probe) -> ProbeResult:
    return await probe(1.0)


# --------------------------------------------------------------------------------------------
# The probe, on an injected clock


async def test_ok_until_period_plus_grace_then_down_then_ok_after_a_new_heartbeat(
    tmp_path: Path,
) -> None:
    clock = Clock()
    fleet = Fleet(tmp_path, clock)
    probe = fleet.probe("sync-job")
    clock.now = T0 + 400  # past the start-up grace: only a heartbeat can make it pass now
    assert not (await run(probe)).ok

    assert fleet.send("sync-job", TOKEN_A) == (202, "accepted")
    beat = clock.now
    clock.now = beat + 12
    result = await run(probe)
    assert result.ok and result.reason == "heartbeat 12s ago"
    clock.now = beat + 330  # period 5m + grace 30s: still in time
    assert (await run(probe)).ok
    clock.now = beat + 330.5
    assert not (await run(probe)).ok
    clock.now = beat + 331
    result = await run(probe)
    assert not result.ok
    assert result.reason == "no heartbeat for 5m31s (period 5m, grace 30s)"

    clock.now += 2
    assert fleet.send("sync-job", TOKEN_A)[0] == 202
    clock.now += 1
    result = await run(probe)
    assert result.ok and result.reason == "heartbeat 1s ago"


async def test_no_heartbeat_yet_passes_for_period_plus_grace_after_start(tmp_path: Path) -> None:
    clock = Clock()
    fleet = Fleet(tmp_path, clock)
    probe = fleet.probe("sync-job")
    for waited in (0.0, 100.0, 330.0):
        clock.now = T0 + waited
        result = await run(probe)
        assert result.ok, waited
        assert result.reason == "no heartbeat received yet (waiting up to 5m30s)"
    clock.now = T0 + 331
    result = await run(probe)
    assert not result.ok
    assert result.reason == "no heartbeat received yet (none in 5m31s; period 5m, grace 30s)"


async def test_a_system_stored_as_down_gets_no_start_up_grace(tmp_path: Path) -> None:
    """After a restart, a system that had gone silent (stored DOWN) must not be announced as
    recovered during the start-up grace; one stored UP keeps its grace."""
    from monitor.state import State
    from monitor.store import StoredState

    clock = Clock()
    fleet = Fleet(tmp_path, clock)
    fleet.receiver.silent_since_before(
        {
            "bo-noi-vu/sync-job": StoredState(State.DOWN, T0 - 600, "no heartbeat for 10m"),
            "bo-noi-vu/one-stop": StoredState(State.UP, T0 - 600, "heartbeat 3s ago"),
        }
    )
    silent, fine = fleet.probe("sync-job"), fleet.probe("one-stop")
    clock.now = T0 + 1
    result = await run(silent)
    assert not result.ok and "none before the restart either" in result.reason
    assert (await run(fine)).ok
    assert fleet.send("sync-job", TOKEN_A)[0] == 202  # it speaks again: up at once
    assert (await run(silent)).ok


async def test_a_check_added_by_a_reload_gets_its_own_start_up_grace(tmp_path: Path) -> None:
    clock = Clock()
    fleet = Fleet(tmp_path, clock)
    clock.now = T0 + 86_400  # the board (the daemon) has run for a day
    probe = fleet.probe("sync-job", now=True)  # as a reload does
    clock.now += 300
    assert (await run(probe)).ok
    clock.now += 31
    assert not (await run(probe)).ok


async def test_a_heartbeat_counts_only_for_its_own_system(tmp_path: Path) -> None:
    clock = Clock()
    fleet = Fleet(tmp_path, clock)
    job, one_stop = fleet.probe("sync-job"), fleet.probe("one-stop")
    clock.now = T0 + 1000
    assert fleet.send("sync-job", TOKEN_A)[0] == 202
    assert (await run(job)).ok
    assert not (await run(one_stop)).ok
    # the other system's token does not open this one
    assert fleet.send("one-stop", TOKEN_A) == (401, "invalid token")
    assert not (await run(one_stop)).ok


def test_default_grace_interval_and_threshold() -> None:
    def spec(**fields: Any) -> Spec:
        return Spec.model_validate(
            {"id": "hb", "kind": "heartbeat", "token": {"env": "X"}, **fields}
        )

    assert spec(period="5m").grace_seconds == 30.0  # 10% of the period
    assert spec(period="20s").grace_seconds == 5.0  # at least 5s
    assert spec(period="5m", grace="2m").deadline == 420.0
    hb = spec(period="1h")
    assert (hb.interval, hb.timeout, hb.failure_threshold) == (10.0, 1.0, 1)
    assert hb.target_host() == "heartbeat"
    with pytest.raises(ValueError, match="period must be at least 1s"):
        spec(period="500ms")
    with pytest.raises(ValueError, match="Field required"):
        Spec.model_validate({"id": "hb", "kind": "heartbeat", "token": {"env": "X"}})


def test_the_config_accepts_a_heartbeat_check_and_rejects_a_bad_one(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "c.yaml",
        config_data(tmp_path, [system("sync-job", [hb_check(env="HB_SYNC", period="1m")])]),
    )
    registry = Registry.from_config(load_config(path))
    entry = registry.checks["bo-noi-vu/sync-job/hb"]
    assert entry.kind == "heartbeat" and entry.interval == 10.0 and entry.failure_threshold == 1
    assert isinstance(entry.spec, Spec) and entry.spec.period == 60.0

    bad = config_data(tmp_path, [system("sync-job", [hb_check(env="HB_SYNC", period=5)])])
    with pytest.raises(ConfigError, match=r"period: duration 5 has no unit"):
        load_config(write_config(tmp_path / "bad.yaml", bad))


async def test_an_unusable_token_fails_the_probe_and_the_receiver_says_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("HB_MISSING", raising=False)
    monkeypatch.setenv("HB_SHORT", "short-token")
    clock = Clock()
    fleet = Fleet(
        tmp_path,
        clock,
        system("missing", [hb_check(env="HB_MISSING")]),
        system("short", [hb_check(env="HB_SHORT")]),
    )
    result = await run(fleet.probe("missing"))
    assert not result.ok
    assert result.reason == (
        "heartbeat token cannot be used: environment variable HB_MISSING is not set"
    )
    result = await run(fleet.probe("short"))
    assert not result.ok
    assert "variable HB_SHORT is shorter than 16 characters" in result.reason
    assert "short-token" not in result.reason
    with caplog.at_level(logging.DEBUG):
        status, reason = fleet.send("short", "short-token")
    assert status == 503 and "cannot read this system's heartbeat token" in reason
    assert "HB_MISSING is not set" in caplog.text  # logged once, at the first heartbeat
    assert "short-token" not in caplog.text


async def test_two_systems_sharing_check_id_and_token_are_refused_and_fail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = token_file(tmp_path, "shared.token", TOKEN_A)
    clock = Clock()
    fleet = Fleet(
        tmp_path,
        clock,
        system("sync-job", [hb_check(shared)]),
        system("one-stop", [hb_check(shared)]),
    )
    job = fleet.probe("sync-job")
    with caplog.at_level(logging.ERROR):
        status, reason = fleet.send("sync-job", TOKEN_A)
    assert status == 409 and "shares its heartbeat" in reason
    assert "bo-noi-vu/one-stop, bo-noi-vu/sync-job have a heartbeat check" in caplog.text
    result = await run(job)
    assert not result.ok
    assert result.reason == (
        "one heartbeat check id and token serve bo-noi-vu/one-stop, bo-noi-vu/sync-job: "
        "give each system its own token"
    )


async def test_failed_attempts_are_throttled_per_source_and_system(tmp_path: Path) -> None:
    clock = Clock()
    fleet = Fleet(tmp_path, clock)
    clock.now = T0 + 1000
    probe = fleet.probe("sync-job")
    for _ in range(10):
        assert (
            fleet.send("sync-job", "wrong-token-but-long-enough", source="198.51.100.7")[0] == 401
        )
    # now that address is refused at once, without comparing what it sends (issue 10.8):
    # a throttled sender learns nothing, the right token included, until the minute is over
    status, reason = fleet.send("sync-job", "wrong-token-but-long-enough", source="198.51.100.7")
    assert (status, reason) == (429, "too many failed attempts; retry in 60s")
    assert fleet.send("sync-job", TOKEN_A, source="198.51.100.7")[0] == 429
    assert fleet.receiver.retry_after("198.51.100.7", "bo-noi-vu", "sync-job") == 60
    assert not (await run(probe)).ok
    # another sender, or another system, is not held back
    assert fleet.send("sync-job", TOKEN_A, source="203.0.113.9")[0] == 202
    assert (await run(probe)).ok
    assert fleet.send("one-stop", TOKEN_B, source="198.51.100.7")[0] == 202
    clock.now += 61  # the minute is over: the address may try again
    assert fleet.send("sync-job", TOKEN_A, source="198.51.100.7")[0] == 202
    # Over MQTT (one source for every broker client) a flood of wrong tokens never holds back
    # the right one: that would let any broker client make a live system look DOWN.
    for _ in range(20):
        assert fleet.send("sync-job", "wrong-token-but-long-enough", source="mqtt")[0] in (401, 429)
    assert fleet.send("sync-job", TOKEN_A, source="mqtt")[0] == 202


async def test_malformed_and_oversized_tokens(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, Clock())
    assert fleet.receiver.accept("Bo Noi Vu", "sync-job", TOKEN_A)[0] == 400
    assert fleet.receiver.accept("bo-noi-vu", "../sync-job", TOKEN_A)[0] == 400
    assert fleet.send("sync-job", "x" * 257) == (400, "token longer than 256 characters")
    assert fleet.send("sync-job", "") == (401, "missing token")
    assert fleet.send("sync-job", None) == (401, "missing token")
    assert fleet.send("nope", TOKEN_A) == (404, "unknown system bo-noi-vu/nope")
    assert fleet.send("portal", TOKEN_A) == (404, "system bo-noi-vu/portal has no heartbeat check")


async def test_a_reload_with_a_new_token_is_picked_up(tmp_path: Path) -> None:
    clock = Clock()
    fleet = Fleet(tmp_path, clock)
    clock.now = T0 + 1000
    assert fleet.send("sync-job", TOKEN_A)[0] == 202
    new_token = "hb-token-A2-Zr8kW4mQ1bN6yP3t"
    token_file(tmp_path, "a.token", new_token)
    fleet.registry = Registry.from_config(load_config(tmp_path / "c.yaml"))  # as SIGHUP does
    assert fleet.send("sync-job", TOKEN_A) == (401, "invalid token")
    assert fleet.send("sync-job", new_token)[0] == 202
    assert (await run(fleet.probe("sync-job"))).ok  # a rebuilt probe reads the new slot


def test_no_secret_in_reprs(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, Clock())
    fleet.send("sync-job", TOKEN_A)
    spec = fleet.registry.checks["bo-noi-vu/sync-job/hb"].spec
    texts = [repr(fleet.board), repr(fleet.receiver), repr(spec), spec.model_dump_json()]
    texts += [repr(vars(fleet.receiver)), repr(vars(fleet.board))]  # what a debugger shows
    for text in texts:
        assert TOKEN_A not in text


# --------------------------------------------------------------------------------------------
# HTTP, on a real loopback server


@pytest.fixture
async def http(
    tmp_path: Path,
) -> AsyncIterator[tuple[Fleet, TestClient[web.Request, web.Application]]]:
    fleet = Fleet(tmp_path, Clock())
    fleet.clock.now = T0 + 1000  # past the start-up grace of probes built at the start
    app = web.Application(client_max_size=64 * 1024)  # as monitor.web.app.build_app
    app.add_routes(aiohttp_routes([heartbeat_route(fleet.receiver)]))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield fleet, client


URL = "/api/v1/heartbeat/bo-noi-vu/{}"


async def test_http_right_token_is_accepted_and_marks_the_board(
    http: tuple[Fleet, TestClient[web.Request, web.Application]],
) -> None:
    fleet, client = http
    job, one_stop = fleet.probe("sync-job"), fleet.probe("one-stop")
    assert not (await run(job)).ok
    response = await client.post(
        URL.format("sync-job"), headers={"Authorization": f"Bearer {TOKEN_A}"}
    )
    assert response.status == 202
    assert await response.json() == {"accepted": True}
    assert (await run(job)).ok
    response = await client.post(
        URL.format("one-stop"), headers={"X-Heartbeat-Token": TOKEN_B}, data=b'{"status": "ok"}'
    )
    assert response.status == 202
    assert (await run(one_stop)).ok


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Authorization": "Bearer hb-token-wrong-Qq1Ww2Ee3Rr4"}, "invalid token"),
        ({"X-Heartbeat-Token": TOKEN_B}, "invalid token"),  # another system's token
        ({"Authorization": f"Basic {TOKEN_A}"}, "missing token"),  # not a bearer token
        ({}, "missing token"),
    ],
)
async def test_http_wrong_or_missing_token_is_401_without_echo(
    http: tuple[Fleet, TestClient[web.Request, web.Application]],
    headers: dict[str, str],
    reason: str,
) -> None:
    fleet, client = http
    response = await client.post(URL.format("sync-job"), headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    text = await response.text()
    assert json.loads(text) == {"error": reason}
    assert TOKEN_A not in text and TOKEN_B not in text and "Qq1Ww2" not in text
    assert not (await run(fleet.probe("sync-job"))).ok


async def test_http_unknown_system_or_no_heartbeat_check_is_404(
    http: tuple[Fleet, TestClient[web.Request, web.Application]],
) -> None:
    _, client = http
    auth = {"Authorization": f"Bearer {TOKEN_A}"}
    response = await client.post(URL.format("khong-co"), headers=auth)
    assert response.status == 404
    assert await response.json() == {"error": "unknown system bo-noi-vu/khong-co"}
    response = await client.post(URL.format("portal"), headers=auth)
    assert response.status == 404
    assert await response.json() == {"error": "system bo-noi-vu/portal has no heartbeat check"}
    response = await client.post("/api/v1/heartbeat/BO/sync-job", headers=auth)
    assert response.status == 400
    response = await client.get(URL.format("sync-job"), headers=auth)
    assert response.status == 405


async def test_http_oversize_body_is_413_and_not_counted(
    http: tuple[Fleet, TestClient[web.Request, web.Application]],
) -> None:
    fleet, client = http
    auth = {"Authorization": f"Bearer {TOKEN_A}"}
    response = await client.post(URL.format("sync-job"), headers=auth, data=b"x" * (MAX_BODY + 1))
    assert response.status == 413
    assert "larger than 1024 bytes" in (await response.json())["error"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(8):
            yield b"y" * 200

    response = await client.post(URL.format("sync-job"), headers=auth, data=chunked())
    assert response.status == 413
    assert not (await run(fleet.probe("sync-job"))).ok
    response = await client.post(URL.format("sync-job"), headers=auth, data=b"x" * MAX_BODY)
    assert response.status == 202


async def test_http_throttle_answers_429_with_retry_after(
    http: tuple[Fleet, TestClient[web.Request, web.Application]],
) -> None:
    _, client = http
    for _ in range(10):
        response = await client.post(URL.format("sync-job"), headers={"X-Heartbeat-Token": "nope"})
        assert response.status == 401
    response = await client.post(URL.format("sync-job"), headers={"X-Heartbeat-Token": "nope"})
    assert response.status == 429
    assert response.headers["Retry-After"] == "60"
    response = await client.post(URL.format("sync-job"), headers={"X-Heartbeat-Token": TOKEN_A})
    assert response.status == 429  # nothing is compared for a throttled address (issue 10.8)


async def test_behind_a_trusted_proxy_senders_are_told_apart(tmp_path: Path) -> None:
    """Review of issue 10: behind a reverse proxy every sender was the proxy's address, so
    ten wrong tokens from anyone kept a live system's heartbeats out (a false DOWN). With the
    proxy in http.trusted_proxies, the address it forwards is the sender."""
    fleet = Fleet(tmp_path, Clock())
    fleet.clock.now = T0 + 1000
    app = web.Application()
    app.add_routes(
        aiohttp_routes([heartbeat_route(fleet.receiver, lambda: [ip_network("127.0.0.0/8")])])
    )
    url = URL.format("sync-job")
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        for _ in range(12):  # an attacker behind the proxy
            headers = {"X-Heartbeat-Token": "nope", "X-Forwarded-For": "203.0.113.66"}
            assert (await client.post(url, headers=headers)).status in (401, 429)
        # The real sender behind the same proxy is not held back ...
        headers = {"X-Heartbeat-Token": TOKEN_A, "X-Forwarded-For": "198.51.100.7"}
        assert (await client.post(url, headers=headers)).status == 202
        # ... and a client cannot pick its own address through a header the proxy appends to.
        headers = {"X-Heartbeat-Token": "nope", "X-Forwarded-For": "198.51.100.7, 203.0.113.66"}
        assert (await client.post(url, headers=headers)).status == 429


async def test_http_token_never_logged(
    http: tuple[Fleet, TestClient[web.Request, web.Application]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fleet, client = http
    wrong = "hb-token-wrong-Zz9Yy8Xx7Ww6"
    with caplog.at_level(logging.DEBUG):
        for headers in (
            {"Authorization": f"Bearer {TOKEN_A}"},
            {"Authorization": f"Bearer {wrong}"},
            {"X-Heartbeat-Token": TOKEN_B},
            {"X-Heartbeat-Token": "x" * 300},
        ):
            for target in ("sync-job", "one-stop", "portal", "khong-co"):
                await client.post(URL.format(target), headers=headers)
    assert "heartbeat for bo-noi-vu/sync-job refused" in caplog.text  # logging did happen
    for secret in (TOKEN_A, TOKEN_B, wrong, "x" * 300):
        assert secret not in caplog.text
        assert all(secret not in str(r.args) for r in caplog.records)
    assert fleet.receiver.counts[202] == 2


# --------------------------------------------------------------------------------------------
# MQTT, through a real broker

mqtt_only = pytest.mark.skipif(not available(), reason="mosquitto is not installed")


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    async with Mosquitto(tmp_path) as server:
        yield server


async def publish(port: int, items: list[tuple[str, bytes, bool]]) -> None:
    """Publish from a separate client (the agency's side), QoS 1, in order."""
    client = aiomqtt.Client("127.0.0.1", port, identifier=f"agency-{uuid.uuid4().hex[:8]}")
    async with client:
        for topic, payload, retain in items:
            await client.publish(topic, payload, qos=1, retain=retain)


@mqtt_only
async def test_mqtt_heartbeat_marks_the_board_and_bad_ones_are_ignored_with_a_warning(
    tmp_path: Path, broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = Fleet(tmp_path, Clock())
    fleet.clock.now = T0 + 1000  # past the start-up grace of probes built at the start
    job, one_stop = fleet.probe("sync-job"), fleet.probe("one-stop")
    publisher = MqttPublisher(
        Settings.model_validate(
            {
                "host": "127.0.0.1",
                "port": broker.port,
                "client_id": f"npsp-monitor-test-{uuid.uuid4().hex[:8]}",
                "timeout": "3s",
                "reconnect_max": "200ms",
            }
        )
    )
    publisher.subscribe(TOPIC_FILTER, fleet.receiver.on_mqtt)
    topic = "npsp/heartbeat/bo-noi-vu/{}"
    try:
        with caplog.at_level(logging.WARNING):
            # sent before the daemon subscribed: replayed to it as a retained copy, ignored
            retained = json.dumps({"token": TOKEN_B}).encode()
            await publish(broker.port, [(topic.format("one-stop"), retained, True)])
            await publisher.start()
            await wait_until(lambda: publisher.connected, 10.0, "publisher connected")
            await publish(
                broker.port,
                [
                    (topic.format("one-stop"), b"{not json", False),
                    (topic.format("one-stop"), json.dumps({"token": TOKEN_A}).encode(), False),
                    (topic.format("one-stop"), json.dumps([TOKEN_B]).encode(), False),
                    (topic.format("one-stop"), b"{" + b" " * 2000 + b"}", False),
                    (topic.format("sync-job"), json.dumps({"token": TOKEN_A}).encode(), False),
                ],
            )
            await wait_until(lambda: fleet.receiver.counts[202] == 1, 10.0, "heartbeat received")
    finally:
        await publisher.aclose()
    assert (await run(job)).ok
    assert not (await run(one_stop)).ok  # wrong token, malformed, retained: none counted
    messages = [r.getMessage() for r in caplog.records]
    assert any("not JSON" in m for m in messages)
    assert any("one-stop refused (mqtt" in m and "invalid token" in m for m in messages)
    assert any('must be a JSON object {"token": "..."}' in m for m in messages)
    assert any("larger than 1024 bytes" in m for m in messages)
    assert any("ignoring retained message" in m for m in messages)
    assert not any("handler for" in m for m in messages)  # no handler raised
    assert TOKEN_A not in caplog.text and TOKEN_B not in caplog.text


# --------------------------------------------------------------------------------------------
# End to end: the engine turns silence into DOWN


async def test_engine_marks_a_silent_system_down_after_period_plus_grace(tmp_path: Path) -> None:
    file_a = token_file(tmp_path, "a.token", TOKEN_A)
    data = config_data(
        tmp_path,
        [
            system(
                "sync-job",
                [hb_check(file_a, period="1m", grace="10s", interval="50ms", timeout="20ms")],
            )
        ],
        recheck_delay="10ms",
    )
    config = load_config(write_config(tmp_path / "c.yaml", data))
    clock = Clock()
    store = await Store.open(config.state_db)
    engine = Engine(config, store, ProbeEnv(heartbeats=HeartbeatBoard(clock=clock)))
    receiver = HeartbeatReceiver(engine.probe_env.heartbeats, lambda: engine.registry)
    app = build_app(engine, DaemonMetrics())
    app.add_routes(aiohttp_routes([heartbeat_route(receiver)]))
    scheduler: asyncio.Task[None] | None = None
    key = "bo-noi-vu/sync-job"

    def state() -> State:
        return engine.state.systems[key].announced

    try:
        await engine.start()
        scheduler = asyncio.create_task(engine.scheduler.run())
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:

            async def beat() -> None:
                response = await client.post(
                    URL.format("sync-job"), headers={"Authorization": f"Bearer {TOKEN_A}"}
                )
                assert response.status == 202

            await eventually(lambda: state() is State.UP)  # start-up grace: no flap to DOWN
            clock.now += 60
            await beat()
            clock.now += 70  # exactly period + grace: still in time
            await asyncio.sleep(0.3)
            assert state() is State.UP
            clock.now += 1
            await eventually(lambda: state() is State.DOWN)
            assert (
                "no heartbeat for 1m11s (period 1m, grace 10s)" in engine.state.systems[key].reason
            )
            await beat()
            await eventually(lambda: state() is State.UP)
            response = await client.get(f"/api/v1/systems/{key}")
            assert TOKEN_A not in await response.text()
    finally:
        engine.scheduler.stop()
        if scheduler is not None:
            await asyncio.wait_for(scheduler, 5)
        await engine.scheduler.drain(1.0)
        await store.close()
