"""Freshness in working hours: the age of a check's data (a JSON field of an http answer, the
last push of a heartbeat) counted in its agency's working hours — across a weekend, a public
holiday, a swapped Saturday and an agency's own hours — on an injected clock, with a real HTTP
server on loopback and the real engine, state machine and metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from monitor.config import ConfigError, load_config
from monitor.engine import Engine
from monitor.freshness import FreshnessJudge
from monitor.heartbeats import HeartbeatReceiver, heartbeat_route
from monitor.metrics import DaemonMetrics, render
from monitor.state import State
from monitor.store import Store
from monitor.web.app import build_app
from monitor.web.routes import aiohttp_routes
from monitor.workdays import CalendarSettings, WorkCalendar
from npsp_common.types import DataTime, Freshness
from probes import ProbeEnv
from probes import api as api_probe
from probes import http as http_probe
from probes.heartbeat import HeartbeatBoard
from probes.heartbeat import Spec as HeartbeatSpec
from probes.httpbody import timestamp_of

from .conftest import eventually
from .test_daemon import write_config

pytestmark = pytest.mark.timeout(60)

HANOI = dt.timezone(dt.timedelta(hours=7))
TOKEN = "freshness-token-4Kq9Zr2Wm7Xt"


def hanoi(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> float:
    return dt.datetime(y, m, d, hh, mm, tzinfo=HANOI).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ----- the age in working hours, on the calendar ---------------------------------------------


def judge(**calendar: Any) -> FreshnessJudge:
    cal = WorkCalendar(CalendarSettings(**calendar))
    return FreshnessJudge(lambda: cal)


def test_a_weekend_is_not_counted() -> None:
    # Friday 2026-12-11 16:30 → Monday 2026-12-14 08:05: half an hour on Friday, five minutes.
    age = judge().age(hanoi(2026, 12, 11, 16, 30), hanoi(2026, 12, 14, 8, 5), "ha-noi")
    assert age == pytest.approx(0.5 + 5 / 60)


def test_silent_since_thursday_ten_is_eight_hours_old_on_friday_at_ten() -> None:
    j = judge()
    thursday = hanoi(2026, 12, 10, 10, 0)
    assert j.age(thursday, hanoi(2026, 12, 11, 10, 0), "ha-noi") == pytest.approx(8.0)
    assert j.age(thursday, hanoi(2026, 12, 11, 10, 30), "ha-noi") == pytest.approx(8.5)
    # The lunch break and the night do not count: Thursday 11:00 → 14:00 is two hours.
    assert j.age(hanoi(2026, 12, 10, 11), hanoi(2026, 12, 10, 14), "ha-noi") == pytest.approx(2)


def test_a_public_holiday_and_its_swapped_monday_are_not_counted() -> None:
    # 2026: Monday 31/8 is off (swapped with Saturday 22/8), 1/9 and 2/9 are National Day.
    cal = WorkCalendar()
    assert not any(cal.is_working_day(dt.date(2026, m, d)) for m, d in ((8, 31), (9, 1), (9, 2)))
    age = judge().age(hanoi(2026, 8, 28, 16, 0), hanoi(2026, 9, 3, 8, 30), "ha-noi")
    assert age == pytest.approx(1.5)


def test_a_swapped_saturday_counts_and_an_ordinary_one_does_not() -> None:
    j = judge()
    # Saturday 22/8/2026 is a make-up working day: Friday 16:00 → Saturday 10:00 is 3 hours.
    assert j.age(hanoi(2026, 8, 21, 16), hanoi(2026, 8, 22, 10), "x") == pytest.approx(3.0)
    # Saturday 15/8/2026 is not: one hour (Friday 16:00-17:00).
    assert j.age(hanoi(2026, 8, 14, 16), hanoi(2026, 8, 15, 10), "x") == pytest.approx(1.0)


def test_an_agency_with_its_own_hours_counts_them() -> None:
    j = judge(agency_working_hours={"hue": [("07:00", "11:00"), ("13:30", "17:30")]})
    start, end = hanoi(2026, 12, 10, 7, 0), hanoi(2026, 12, 10, 8, 0)
    assert j.age(start, end, "hue") == pytest.approx(1.0)
    assert j.age(start, end, "ha-noi") == pytest.approx(0.0)  # the country's day starts at 8


def test_a_time_in_the_future_is_zero_hours_old_and_years_old_data_is_bounded() -> None:
    j = judge()
    now = hanoi(2026, 12, 10, 10)
    assert j.age(now + 3600, now, "x") == 0.0
    assert j.age(0.0, now, "x") > 10_000  # 1970: stale whatever the limit, and computed


# ----- the probe dates the data ----------------------------------------------------------------


def test_timestamps_without_an_offset_are_vietnam_time() -> None:
    assert timestamp_of("2026-12-10T10:00:00") == hanoi(2026, 12, 10, 10)
    assert timestamp_of("2026-12-10T03:00:00Z") == hanoi(2026, 12, 10, 10)
    assert timestamp_of(hanoi(2026, 12, 10, 10) * 1000) == hanoi(2026, 12, 10, 10)
    assert timestamp_of("yesterday") is None
    assert timestamp_of(True) is None
    assert timestamp_of("2026-12-10T10:00:00" + " " * 100) is None  # bounded input


def http_spec(url: str, **freshness: Any) -> http_probe.Spec:
    return http_probe.Spec.model_validate(
        {"id": "sync", "kind": "http", "url": url, "freshness": freshness}
    )


def test_freshness_config_errors_name_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="names the JSON field"):
        http_spec("http://a.example/", max_working_hours=8)
    with pytest.raises(ValidationError, match="must start with"):
        http_spec("http://a.example/", path="last", max_working_hours=8)
    with pytest.raises(ValidationError, match="greater than 0"):
        http_spec("http://a.example/", path="$.last", max_working_hours=0)
    with pytest.raises(ValidationError, match="HEAD has none"):
        http_probe.Spec.model_validate(
            {
                "id": "s",
                "kind": "http",
                "url": "http://a.example/",
                "method": "HEAD",
                "freshness": {"path": "$.t", "max_working_hours": 8},
            }
        )
    with pytest.raises(ValidationError, match="no path"):
        HeartbeatSpec.model_validate(
            {
                "id": "hb",
                "kind": "heartbeat",
                "period": "1d",
                "token": {"env": "X"},
                "freshness": {"path": "$.t", "max_working_hours": 8},
            }
        )
    with pytest.raises(ValidationError, match="severity"):
        Freshness.model_validate({"max_working_hours": 8, "severity": "critical"})


class JsonServer:
    """A loopback HTTP server answering what the test sets."""

    def __init__(self) -> None:
        self.body: bytes = b"{}"
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        async def handle(_request: web.Request) -> web.Response:
            return web.Response(body=self.body, content_type="application/json")

        app = web.Application()
        app.router.add_get("/sync", handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/sync"

    def answer(self, document: object) -> None:
        self.body = json.dumps(document).encode()


@pytest.fixture
async def server() -> AsyncIterator[JsonServer]:
    s = JsonServer()
    await s.start()
    yield s
    assert s.runner is not None
    await s.runner.cleanup()


async def test_the_http_probe_reads_the_time_and_fails_as_the_condition_says(
    server: JsonServer,
) -> None:
    probe = http_probe.build(
        http_spec(server.url, path="$.sync.last", max_working_hours=8), ProbeEnv()
    )
    server.answer({"sync": {"last": "2026-12-10T10:00:00"}})
    result = await probe(2.0)
    assert result.ok and not result.degraded
    assert result.data == DataTime(hanoi(2026, 12, 10, 10))
    server.answer({"sync": {}})  # no time: cannot be judged; degraded, as the condition says
    result = await probe(2.0)
    assert result.ok and result.degraded and result.data is None
    assert "JSON $.sync.last is missing" in result.reason
    server.answer({"sync": {"last": "soon"}})
    down = http_probe.build(
        http_spec(server.url, path="$.sync.last", max_working_hours=8, severity="down"), ProbeEnv()
    )
    result = await down(2.0)
    assert not result.ok and "is not a timestamp" in result.reason
    server.body = b"<html>"
    result = await probe(2.0)
    assert not result.ok and result.reason == "body is not JSON"


def api_spec(url: str, **freshness: Any) -> api_probe.Spec:
    return api_probe.Spec.model_validate(
        {
            "id": "lookup",
            "kind": "api",
            "url": url,
            "steps": [{"name": "tra cứu", "path": "/sync"}],
            "freshness": freshness,
        }
    )


async def test_the_api_probe_dates_the_last_steps_answer(
    server: JsonServer, tmp_path: Path
) -> None:
    base = server.url.removesuffix("/sync")
    probe = api_probe.build(api_spec(base, path="$.updated", max_working_hours=8), ProbeEnv())
    server.answer({"updated": "2026-12-10T10:00:00"})  # no offset: Vietnam time, as http reads it
    result = await probe(2.0)
    assert result.ok and result.data == DataTime(hanoi(2026, 12, 10, 10))
    server.answer({"other": 1})
    down = api_probe.build(
        api_spec(base, path="$.updated", max_working_hours=8, severity="down"), ProbeEnv()
    )
    result = await down(2.0)
    assert not result.ok and "$.updated" in result.reason and result.data is None
    with pytest.raises(ValidationError, match="names the JSON field"):
        api_spec(base, max_working_hours=8)
    bearer = tmp_path / "bearer"
    bearer.write_text("not-a-real-bearer")
    with pytest.raises(ValidationError, match="there is none"):
        api_probe.Spec.model_validate(
            {
                "id": "t",
                "kind": "api",
                "url": base,
                "steps": [{"name": "token", "token": {"token_file": str(bearer)}}],
                "freshness": {"path": "$.t", "max_working_hours": 8},
            }
        )


# ----- end to end: the engine judges with the calendar -----------------------------------------


def fleet_config(tmp_path: Path, checks: list[dict[str, Any]], **calendar: Any) -> Path:
    data: dict[str, Any] = {
        "vantage": "gw-test",
        "listen": "127.0.0.1:0",
        "state_db": str(tmp_path / "state.db"),
        "defaults": {"interval": "100ms", "timeout": "90ms", "recheck_delay": "10ms"},
        "calendar": calendar,
        "agencies": [
            {
                "id": "hue",
                "kind": "province",
                "name_vi": "Huế",
                "name_en": "Hue",
                "code": "HUE",
                "systems": [
                    {"id": "one-stop", "kind": "one-stop", "name": "Một cửa", "checks": checks}
                ],
            }
        ],
    }
    return write_config(tmp_path / "c.yaml", data)


async def run_engine(
    config_path: Path, wall: Clock, env: ProbeEnv
) -> tuple[Engine, Store, asyncio.Task[None]]:
    config = load_config(config_path)
    store = await Store.open(config.state_db)
    engine = Engine(config, store, env, wall_clock=wall)
    calendar = WorkCalendar(config.calendar)
    engine.freshness = FreshnessJudge(lambda: calendar)
    await engine.start()
    return engine, store, asyncio.create_task(engine.scheduler.run())


async def stop_engine(engine: Engine, store: Store, task: asyncio.Task[None]) -> None:
    engine.scheduler.stop()
    await asyncio.wait_for(task, 5)
    await engine.scheduler.drain(1.0)
    await store.close()


async def metric_lines(engine: Engine) -> list[str]:
    text = "".join([chunk async for chunk in render(engine, DaemonMetrics())])
    return [line for line in text.splitlines() if line.startswith("npsp_data_age_working_hours{")]


async def test_the_engine_turns_stale_data_degraded_in_working_hours(
    tmp_path: Path, server: JsonServer
) -> None:
    check = {
        "id": "sync",
        "kind": "http",
        "url": server.url,
        "freshness": {"path": "$.last_sync", "max_working_hours": 8},
    }
    wall = Clock(hanoi(2026, 12, 10, 10, 0))  # Thursday
    server.answer({"last_sync": "2026-12-10T10:00:00+07:00"})
    engine, store, task = await run_engine(fleet_config(tmp_path, [check]), wall, ProbeEnv())
    key = "hue/one-stop"

    def state() -> State:
        return engine.state.systems[key].announced

    try:
        await eventually(lambda: state() is State.UP)
        assert await metric_lines(engine) == [
            'npsp_data_age_working_hours{agency="hue",system="one-stop",check="sync",'
            'kind="http"} 0.0'
        ]
        wall.now = hanoi(2026, 12, 11, 9, 59)  # Friday: 7.98 working hours, still fresh
        await asyncio.sleep(0.3)
        assert state() is State.UP
        wall.now = hanoi(2026, 12, 11, 10, 30)
        await eventually(lambda: state() is State.DEGRADED)
        reason = engine.state.systems[key].reason
        assert "JSON $.last_sync: data 8.5 working hours old (limit 8 working hours)" in reason
        assert "10:00 10/12/2026" in reason  # when it was last new, in Hanoi time
        assert (await metric_lines(engine))[0].endswith(" 8.5")
        # New data: fresh again.
        server.answer({"last_sync": "2026-12-11T10:25:00+07:00"})
        await eventually(lambda: state() is State.UP)
        # Friday 16:30 → Monday 08:05 is 0.58 working hours: no alarm on Monday morning.
        server.answer({"last_sync": "2026-12-11T16:30:00+07:00"})
        wall.now = hanoi(2026, 12, 14, 8, 5)
        await asyncio.sleep(0.3)
        assert state() is State.UP
    finally:
        await stop_engine(engine, store, task)


async def test_stale_data_is_down_when_the_condition_says_so_and_a_failing_answer_keeps_its_reason(
    tmp_path: Path, server: JsonServer
) -> None:
    check = {
        "id": "sync",
        "kind": "http",
        "url": server.url,
        "expected_status": [200],
        "freshness": {"path": "$.t", "max_working_hours": 4, "severity": "down"},
    }
    wall = Clock(hanoi(2026, 12, 10, 14, 0))
    server.answer({"t": hanoi(2026, 12, 10, 8, 0)})  # epoch seconds: 5 working hours ago
    engine, store, task = await run_engine(
        fleet_config(tmp_path, [check], agency_working_hours={"hue": [("07:00", "17:00")]}),
        wall,
        ProbeEnv(),
    )
    key = "hue/one-stop"
    try:
        await eventually(lambda: engine.state.systems[key].announced is State.DOWN)
        # Hue works 07:00-17:00 without a break: 08:00 → 14:00 is 6 hours there.
        assert (
            "data 6 working hours old (limit 4 working hours)" in engine.state.systems[key].reason
        )
        server.body = b"not json"  # the answer's own failure is the reason, not staleness

        def last_reason() -> str:
            last = engine.state.systems[key].checks["hue/one-stop/sync"].last
            return "" if last is None else last.reason

        await eventually(lambda: last_reason() == "body is not JSON")
    finally:
        await stop_engine(engine, store, task)


def push_check(tmp_path: Path, **freshness: Any) -> dict[str, Any]:
    token = tmp_path / "hb.token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    return {
        "id": "dossiers",
        "kind": "heartbeat",
        "period": "7d",  # pushes come when dossiers sync: the period only catches a dead sender
        "token": {"file": str(token)},
        "interval": "50ms",
        "timeout": "20ms",
        "freshness": freshness,
    }


async def test_a_heartbeat_silent_for_a_working_day_is_stale_and_the_weekend_does_not_count(
    tmp_path: Path,
) -> None:
    check = push_check(tmp_path, max_working_hours=8)
    mono = Clock(1000.0)
    wall = Clock(hanoi(2026, 12, 10, 9, 0))  # Thursday

    def advance(seconds: float) -> None:
        mono.now += seconds
        wall.now += seconds

    env = ProbeEnv(heartbeats=HeartbeatBoard(clock=mono, wall_clock=wall))
    engine, store, task = await run_engine(fleet_config(tmp_path, [check]), wall, env)
    receiver = HeartbeatReceiver(env.heartbeats, lambda: engine.registry)
    app = build_app(engine, DaemonMetrics())
    app.add_routes(aiohttp_routes([heartbeat_route(receiver)]))
    key = "hue/one-stop"
    state: Callable[[], State] = lambda: engine.state.systems[key].announced  # noqa: E731
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            await eventually(lambda: state() is State.UP)
            advance(3600)  # 10:00: the push
            response = await client.post(
                "/api/v1/heartbeat/hue/one-stop", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert response.status == 202
            advance(24 * 3600 - 60)  # Friday 09:59
            await asyncio.sleep(0.3)
            assert state() is State.UP
            advance(31 * 60)  # Friday 10:30
            await eventually(lambda: state() is State.DEGRADED)
            assert "no push for 8.5 working hours" in engine.state.systems[key].reason
            await client.post(
                "/api/v1/heartbeat/hue/one-stop", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            await eventually(lambda: state() is State.UP)
            # Monday 08:30: Friday 10:30 → 12:00 and 13:00 → 17:00, then half an hour: 6 hours.
            advance(3 * 86400 - 2 * 3600)
            await asyncio.sleep(0.3)
            assert state() is State.UP
            assert (await metric_lines(engine))[0].endswith(" 6.0")
    finally:
        await stop_engine(engine, store, task)


async def test_a_heartbeat_never_heard_since_the_start_counts_from_the_start(
    tmp_path: Path,
) -> None:
    check = push_check(tmp_path, max_working_hours=2, severity="down")
    mono = Clock(1000.0)
    wall = Clock(hanoi(2026, 12, 10, 9, 0))
    env = ProbeEnv(heartbeats=HeartbeatBoard(clock=mono, wall_clock=wall))
    engine, store, task = await run_engine(fleet_config(tmp_path, [check]), wall, env)
    key = "hue/one-stop"
    try:
        await eventually(lambda: engine.state.systems[key].announced is State.UP)
        mono.now += 3 * 3600
        wall.now += 3 * 3600  # 12:00: three hours of the morning
        await eventually(lambda: engine.state.systems[key].announced is State.DOWN)
        reason = engine.state.systems[key].reason
        assert "no push for 3 working hours since the monitor started at 09:00 10/12/2026" in reason
    finally:
        await stop_engine(engine, store, task)


def test_check_config_names_the_freshness_field(tmp_path: Path) -> None:
    check = {
        "id": "sync",
        "kind": "http",
        "url": "http://one-stop.hue.example/sync",
        "freshness": {"path": "$.t", "max_working_hours": "8h"},
    }
    with pytest.raises(ConfigError) as error:
        load_config(fleet_config(tmp_path, [check]))
    assert "freshness" in str(error.value) and "max_working_hours" in str(error.value)
