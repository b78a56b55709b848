"""Scheduled reports (issue 14, item 3) on the injected clock: the triggers on the working-day
calendar (after Tết, after a 3-day holiday weekend, the 2026 swaps), the desk's misfire rule
(down at 08:00 and started at 10:00: once; a second start: nothing; two leaders racing: one),
the e-mail with its HTML body and CSV attachment through a real local SMTP server, the inbox
entry and its link, the API and the pages by the access rules, and ``report send --now``."""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import email.message
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from monitor import accounts, inbox_store
from monitor.alerting.notices import NoticeSender
from monitor.alerting.outbox import Outbox, OutboxWorker
from monitor.alerting.route import Router
from monitor.app import Daemon
from monitor.cli.report import add_report_commands
from monitor.config import Config, load_config
from monitor.config.alerting import OutboxSettings
from monitor.config.reports import ReportsSettings, TriggerSettings
from monitor.contacts import store as contacts_store
from monitor.contacts.model import StoredContact
from monitor.registry import Registry
from monitor.reports import runs_store
from monitor.reports.periods import parse_period, previous_period
from monitor.reports.produce import Producer
from monitor.reports.schedule import ReportDesk, periods_of
from monitor.reports.triggers import NthWorkingDayTrigger, last_fire, trigger_of
from monitor.rules.desk import RulesContext
from monitor.state import Event, State
from monitor.store import Store
from monitor.workdays import WorkCalendar
from notifiers.email import EmailNotifier
from notifiers.settings import EmailSettings

from .conftest import ManualClock, StateLocation, TcpTarget
from .peers.smtp import Certs, SmtpPeer
from .test_api import Caller, fleet
from .test_daemon import Running, write_config

VN = dt.timezone(dt.timedelta(hours=7))
CAL = WorkCalendar()
BASE = "https://giamsat.example"
OPS = "vpcp@ops.example"
HN_TECH, HN_HIGH, BYT_TECH = "kt@ha-noi.example", "ld@ha-noi.example", "kt@byt.example"


def hanoi(*args: int) -> float:
    return dt.datetime(*args, tzinfo=VN).timestamp()


def local(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, VN)


# ----- the triggers ---------------------------------------------------------------------------


def fire_after(settings: TriggerSettings, *moment: int) -> dt.datetime:
    nxt = trigger_of(settings, CAL).get_next_fire_time(None, dt.datetime(*moment, tzinfo=VN))
    assert nxt is not None
    return nxt.astimezone(VN)


FIRST_OF_MONTH = TriggerSettings(working_day=1, of="month", at="08:00")
FIRST_OF_WEEK = TriggerSettings(working_day=1, of="week", at="08:00")


def test_first_working_day_of_the_month_skips_tet_and_the_2026_swaps() -> None:
    # Tết 2025 ran to Saturday 1 February (mùng bốn), then a Sunday: Monday 3 February.
    assert fire_after(FIRST_OF_MONTH, 2025, 1, 31) == dt.datetime(2025, 2, 3, 8, tzinfo=VN)
    # New Year 2026: the 1st a holiday, the 2nd a day off swapped with Saturday 10 January.
    assert fire_after(FIRST_OF_MONTH, 2026, 1, 1) == dt.datetime(2026, 1, 5, 8, tzinfo=VN)
    # National Day 2026: 31 August swapped off, 1-2 September holidays: Thursday 3 September.
    assert fire_after(FIRST_OF_MONTH, 2026, 8, 30) == dt.datetime(2026, 9, 3, 8, tzinfo=VN)
    # An ordinary month, and the last working day (-1) of December 2026.
    assert fire_after(FIRST_OF_MONTH, 2026, 11, 2) == dt.datetime(2026, 11, 2, 8, tzinfo=VN)
    last = TriggerSettings(working_day=-1, of="month", at="16:30")
    assert fire_after(last, 2026, 12, 1) == dt.datetime(2026, 12, 31, 16, 30, tzinfo=VN)


def test_first_working_day_of_the_week_after_tet_and_after_a_holiday_weekend() -> None:
    # Tết 2026 filled the week of 16 February: the first working day after it is Monday 23rd.
    assert fire_after(FIRST_OF_WEEK, 2026, 2, 10, 9) == dt.datetime(2026, 2, 23, 8, tzinfo=VN)
    # Hùng Kings 2026: Saturday 25, Sunday 26 and Monday 27 April off: Tuesday 28 April.
    assert fire_after(FIRST_OF_WEEK, 2026, 4, 25) == dt.datetime(2026, 4, 28, 8, tzinfo=VN)
    # The make-up Saturday 10 January 2026 is that week's sixth working day, not its first.
    sixth = TriggerSettings(working_day=6, of="week", at="08:00")
    assert fire_after(sixth, 2026, 1, 5) == dt.datetime(2026, 1, 10, 8, tzinfo=VN)
    # A cron line is APScheduler's CronTrigger in Hanoi time: 01:00 UTC is 08:00.
    cron = TriggerSettings(cron="0 8 1 * *")
    assert fire_after(cron, 2026, 2, 1, 7) == dt.datetime(2026, 2, 1, 8, tzinfo=VN)


def test_last_fire_walks_to_the_last_time_at_or_before_now() -> None:
    trigger = NthWorkingDayTrigger(CAL, 1, "week", dt.time(8))
    at_eight = hanoi(2026, 2, 23, 8, 0)
    assert last_fire(trigger, at_eight, 40 * 86400) == at_eight  # at the very second
    assert last_fire(trigger, at_eight - 1, 40 * 86400) == hanoi(2026, 2, 9, 8, 0)
    assert last_fire(trigger, at_eight - 1, 86400) is None  # nothing in the last day


def test_periods_of_a_fire_include_the_week_tet_left_without_a_report() -> None:
    fired, previous = hanoi(2026, 2, 23, 8), hanoi(2026, 2, 9, 8)
    assert [p.label for p in periods_of("week", fired, previous)] == ["2026-W07", "2026-W08"]
    assert [p.label for p in periods_of("week", hanoi(2026, 3, 2, 8), fired)] == ["2026-W09"]
    assert [p.label for p in periods_of("month", hanoi(2026, 2, 2, 8), hanoi(2026, 1, 5, 8))] == [
        "2026-01"
    ]
    week = parse_period("2026-W08")
    assert (local(week.starts), local(week.ends)) == (
        dt.datetime(2026, 2, 16, tzinfo=VN),
        dt.datetime(2026, 2, 23, tzinfo=VN),
    )
    assert previous_period("month", hanoi(2026, 1, 5, 8)).label == "2025-12"


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="cron"):
        ReportsSettings.model_validate(
            {"schedules": {"x": {"scope": "national", "period": "month",
                                 "trigger": {"cron": "0 25 1 * *"}, "recipients": ["operations"]}}}
        )  # fmt: skip
    with pytest.raises(ValueError, match="either working_day"):
        TriggerSettings.model_validate({"working_day": 1, "cron": "0 8 1 * *"})
    with pytest.raises(ValueError, match="quoted"):
        TriggerSettings.model_validate({"working_day": 1, "at": 480})
    off = ReportsSettings.model_validate({"schedules": {"agency-weekly": {"enabled": False}}})
    assert not off.schedules["agency-weekly"].enabled
    assert off.schedules["agency-weekly"].recipients == ["technical-admins", "high-level-admins"]
    assert off.schedules["national-monthly"].enabled


# ----- the desk on the injected clock ---------------------------------------------------------


def config_data(state_db: Path | str, smtp_port: int = 25, **extra: Any) -> dict[str, Any]:
    def system(sid: str) -> dict[str, Any]:
        return {
            "id": sid,
            "kind": "secure-server",
            "name": f"Máy chủ {sid}",
            "checks": [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": 9}],
        }

    return {
        "state_db": str(state_db),
        "agencies": [
            {
                "id": "ha-noi", "kind": "province", "name_vi": "Thành phố Hà Nội",
                "name_en": "Hanoi City", "code": "HN", "systems": [system("secure-server")],
                "contacts": [
                    {"name": "KT Hà Nội", "role": "technical-admin", "email": HN_TECH,
                     "portal_account": "kt.ha-noi", "channels": ["email", "inbox"]},
                    {"name": "LĐ Hà Nội", "role": "high-level-admin", "email": HN_HIGH,
                     "channels": ["email"], "language": "en"},
                ],
            },
            {
                "id": "bo-y-te", "kind": "ministry", "name_vi": "Bộ Y tế",
                "name_en": "Ministry of Health", "code": "BYT", "systems": [system("portal")],
                "contacts": [
                    {"name": "KT BYT", "role": "technical-admin", "email": BYT_TECH,
                     "phone": "+84901234567", "channels": ["sms", "email"]},
                ],
            },
        ],
        "alerting": {
            "web_url": BASE,
            "operations": [
                {"name": "Trực VPCP", "email": OPS, "portal_account": "vpcp.truc",
                 "channels": ["email", "inbox"]},
            ],
        },
        "channels": {
            "email": {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                      "from_addr": "giamsat@npsp.example"},
            "sms": {"account_sid": "AC" + "0" * 32, "auth_token": {"env": "NPSP_TEST_NONE"},
                    "from_number": "+84900000000"},
        },
        **extra,
    }  # fmt: skip


class World:
    """One store, the config's registry and router, and desks on an injected clock."""

    def __init__(self, store: Store, config: Config, clock: ManualClock) -> None:
        self.store, self.config, self.clock = store, config, clock
        self.registry = Registry.from_config(config)
        self.router = Router(config.alerting, [e.agency for e in self.registry.systems.values()])
        self.outbox = Outbox(store, OutboxSettings(), clock=clock)

    def desk(self) -> ReportDesk:
        """A desk as a freshly started daemon builds it."""
        ctx = RulesContext(
            self.store,
            WorkCalendar(self.config.calendar),
            NoticeSender(self.outbox, lambda: self.router, lambda: self.config.alerting),
            lambda: self.registry,
            clock=self.clock,
        )
        producer = Producer(
            self.store, lambda: self.registry, lambda: self.router, lambda: BASE,
            wake=lambda channel: self.outbox.wakeup(channel).set(),
        )  # fmt: skip
        return ReportDesk(ctx, producer, lambda: self.config.reports)

    async def runs(self) -> list[runs_store.Run]:
        return await self.store.transact(lambda db: runs_store.listed(db, None, 100))

    async def outbox_rows(self) -> list[tuple[str, str, str]]:
        rows = await self.store.transact(
            lambda db: db.execute("SELECT channel, address, subject FROM outbox").fetchall()
        )
        return sorted((str(c), str(a), str(s)) for c, a, s in rows)


async def history(store: Store, since: float) -> None:
    """Both systems monitored from ``since``: Hà Nội's down for an hour on 10 February 2026."""
    hn, byt = ("ha-noi", "secure-server"), ("bo-y-te", "portal")
    down = hanoi(2026, 2, 10, 10, 0)
    await store.record(
        [
            Event(since, *hn, State.PENDING, State.UP, "ok", "gw-1"),
            Event(since, *byt, State.PENDING, State.UP, "ok", "gw-1"),
            Event(down, *hn, State.UP, State.DOWN, "refused", "gw-1"),
            Event(down + 3600, *hn, State.DOWN, State.UP, "ok", "gw-1"),
        ]
    )


def weekly_only(national: bool = False) -> dict[str, Any]:
    off = "agency-weekly" if national else "national-monthly"
    return {"reports": {"schedules": {off: {"enabled": False}}}}


@pytest.fixture
async def world(state_location: StateLocation) -> AsyncIterator[World]:
    store = await state_location.open()
    location = state_location.location
    config = Config.model_validate(config_data(location if isinstance(location, Path) else "x.db"))
    yield World(store, config, ManualClock(hanoi(2026, 3, 2, 7, 59)))
    await store.close()


async def test_down_at_eight_started_at_ten_sends_the_monthly_report_once(world: World) -> None:
    world.config = world.config.model_copy(
        update={"reports": ReportsSettings.model_validate(weekly_only(national=True)["reports"])}
    )
    await history(world.store, hanoi(2026, 1, 20))
    # The first working day of March 2026 is Monday the 2nd; the daemon was down at 08:00.
    desk = world.desk()
    await desk.tick(hanoi(2026, 3, 1, 23, 0))  # running the evening before: nothing due yet
    await desk.tick(hanoi(2026, 3, 2, 7, 59, 59))
    assert await world.runs() == []

    started = world.desk()  # the start at 10:00
    await started.tick(hanoi(2026, 3, 2, 10, 0))
    (run,) = await world.runs()
    assert (run.schedule, run.period, run.agency) == ("national-monthly", "2026-02", None)
    assert local(run.fired_at) == dt.datetime(2026, 3, 2, 8, tzinfo=VN)
    # To the operations team only, by e-mail and in the inbox (its channels).
    assert [(c, a) for c, a, _ in await world.outbox_rows()] == [
        ("email", OPS),
        ("inbox", "vpcp.truc"),
    ]
    assert run.queued == 2
    await started.tick(hanoi(2026, 3, 2, 10, 0, 1))
    await started.tick(hanoi(2026, 3, 2, 15, 0))
    again = world.desk()  # a second start: nothing
    await again.tick(hanoi(2026, 3, 2, 16, 0))
    await again.tick(hanoi(2026, 3, 3, 8, 0))
    assert len(await world.runs()) == 1 and len(await world.outbox_rows()) == 2

    # The next month's, on time, while running: April 1st 2026 is a Wednesday.
    await again.tick(hanoi(2026, 4, 1, 7, 59, 59))
    assert len(await world.runs()) == 1
    await again.tick(hanoi(2026, 4, 1, 8, 0, 0))
    assert [r.period for r in await world.runs()] == ["2026-03", "2026-02"]


async def test_a_miss_older_than_the_grace_is_skipped_and_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    await history(world.store, hanoi(2026, 1, 20))
    # Both schedules fired on Monday 2 March 2026 at 08:00; started 3 days and 1 s later:
    with caplog.at_level(logging.WARNING, logger="monitor.reports.schedule"):
        await world.desk().tick(hanoi(2026, 3, 5, 8, 0, 1))
    assert await world.runs() == [] and await world.outbox_rows() == []
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert sorted(getattr(r, "period", "") for r in skipped) == ["2026-02", "2026-W09"]
    # Started at 3 days exactly (the grace), both are made: the most recent fire of each.
    await world.desk().tick(hanoi(2026, 3, 5, 8, 0, 0))
    assert sorted((r.schedule, r.period, r.agency or "") for r in await world.runs()) == [
        ("agency-weekly", "2026-W09", "bo-y-te"),
        ("agency-weekly", "2026-W09", "ha-noi"),
        ("national-monthly", "2026-02", ""),
    ]


async def test_a_new_database_does_not_catch_up_a_month_it_did_not_watch(world: World) -> None:
    installed = hanoi(2026, 3, 2, 9, 0)  # after the fire
    await world.store.record(
        [Event(installed, "ha-noi", "secure-server", State.PENDING, State.UP, "ok", "gw-1")]
    )
    await world.desk().tick(hanoi(2026, 3, 2, 10, 0))
    assert await world.runs() == []


async def test_two_leaders_racing_produce_one_report_and_one_message_each(world: World) -> None:
    await history(world.store, hanoi(2026, 1, 20))
    first, second = world.desk(), world.desk()
    now = hanoi(2026, 2, 23, 8, 0, 1)  # the Monday after Tết
    await asyncio.gather(first.tick(now), second.tick(now), first.tick(now + 1))
    runs = await world.runs()
    # The week before Tết had no working day to be reported on: both weeks now, per agency.
    assert sorted((r.period, r.agency) for r in runs) == [
        ("2026-W07", "bo-y-te"),
        ("2026-W07", "ha-noi"),
        ("2026-W08", "bo-y-te"),
        ("2026-W08", "ha-noi"),
    ]
    rows = await world.outbox_rows()
    # Hà Nội: its technical admin (e-mail and inbox) and its high-level admin (e-mail, in
    # English); the ministry's admin lists SMS and e-mail: e-mail only. Per week, once.
    assert [(c, a) for c, a, _ in rows] == sorted(
        [(c, a) for c, a in [("email", BYT_TECH), ("email", HN_HIGH), ("email", HN_TECH),
                             ("inbox", "kt.ha-noi")] for _ in range(2)]
    )  # fmt: skip
    assert any("Hanoi City" in s and "2026-W08" in s for _, a, s in rows if a == HN_HIGH)
    assert sum(r.queued for r in runs) == len(rows) == 8


# ----- delivery: e-mail with the CSV attached, inbox with a link ------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs.make(tmp_path_factory.mktemp("smtp-certs"))


def parts(message: email.message.EmailMessage) -> dict[str, email.message.EmailMessage]:
    return {
        str(p.get_filename() or p.get_content_type()): p
        for p in message.walk()
        if not p.is_multipart()
    }


async def test_the_report_mail_has_the_html_body_and_the_csv_attached(
    tmp_path: Path, certs: Certs
) -> None:
    async with SmtpPeer(certs, mode="plain") as smtp:
        config = Config.model_validate(config_data(tmp_path / "state.db", smtp.port))
        store = await Store.open(tmp_path / "state.db")
        try:
            w = World(store, config, ManualClock(hanoi(2026, 3, 2, 8, 0, 1)))
            await history(store, hanoi(2026, 1, 20))
            await w.desk().tick(hanoi(2026, 3, 2, 8, 0, 1))
            worker = OutboxWorker(w.outbox, EmailNotifier(EmailSettings(
                host="127.0.0.1", port=smtp.port, security="none",
                from_addr="giamsat@npsp.example",
            )))  # fmt: skip
            while await worker.run_once():
                pass
            inbox = await store.transact(lambda db: inbox_store.messages(db, "vpcp.truc", 10))
            runs = await w.runs()
        finally:
            await store.close()
        await asyncio.sleep(0.05)
    mails = {m.rcpt_tos[0]: m.message for m in smtp.received}
    assert sorted(mails) == sorted([OPS, HN_TECH, HN_HIGH, BYT_TECH])

    national = mails[OPS]
    assert national.get_content_type() == "multipart/mixed"
    assert "Báo cáo khả dụng tháng 2026-02" in str(national["Subject"])
    got = parts(national)
    page = got["text/html"].get_content()
    assert page.startswith("<!DOCTYPE html>") and "Báo cáo khả dụng tháng 02/2026" in page
    assert "Thành phố Hà Nội" in page and "Bộ Y tế" in page
    attached = got["npsp-national-monthly-2026-02.csv"]
    assert attached.get_content_type() == "text/csv"
    assert attached.get_content_disposition() == "attachment"
    table = list(csv.reader(io.StringIO(attached.get_content())))
    assert table[0][:2] == ["month", "scope"]
    hn = next(row for row in table if row[1] == "agency" and row[2] == "ha-noi")
    assert hn[3] == "Thành phố Hà Nội" and hn[8] == "99.851"  # 1 h down in 28 days
    national_run = next(r for r in runs if r.agency is None)
    text = got["text/plain"].get_content()
    assert f"{BASE}/reports/{national_run.id}" in text and "đính kèm" in text

    # The weekly one for Hà Nội: the agency's page, the week's CSV with its "period" column;
    # the high-level admin reads English.
    weekly = mails[HN_HIGH]
    got = parts(weekly)
    assert "Availability report, week 2026-W09" in got["text/html"].get_content()
    week_csv = list(csv.reader(io.StringIO(got["npsp-agency-weekly-2026-W09-ha-noi.csv"]
                                           .get_content())))  # fmt: skip
    assert week_csv[0][0] == "period" and {row[2] for row in week_csv[1:]} == {"ha-noi"}
    assert "Bộ Y tế" not in got["text/html"].get_content()

    # The inbox entry: a few lines and the link to the report's page.
    (entry,) = inbox
    assert entry.subject == "Báo cáo khả dụng tháng 2026-02"
    assert f"{BASE}/reports/{national_run.id}" in entry.text
    assert f"{BASE}/api/v1/reports/{national_run.id}?format=csv" in entry.text


# ----- the API and the pages ------------------------------------------------------------------


class Served:
    def __init__(self, running: Running) -> None:
        self.running = running
        self.tokens: dict[str, str] = {}

    @property
    def store(self) -> Store:
        engine = self.running.daemon.engine
        assert engine is not None
        return engine.store

    async def caller(self, role: str, agency: str | None) -> Caller:
        key = f"{role}-{agency or 'vpcp'}"
        if key not in self.tokens:
            _, self.tokens[key] = await accounts.create(
                self.store, actor=None, account_id=key, name=key, role=role,
                agency=agency, agencies={"bo-a", "bo-b"}, now=time.time(),
            )  # fmt: skip
        return Caller(self.running.base, self.tokens[key])


@pytest.fixture
async def served(
    tmp_path: Path, tcp_target: Callable[[], Awaitable[TcpTarget]]
) -> AsyncIterator[Served]:
    target = await tcp_target()
    data = fleet(tmp_path, target.port)
    # The schedules off: the reports are made below, on a chosen period.
    data["reports"] = {
        "schedules": {"national-monthly": {"enabled": False}, "agency-weekly": {"enabled": False}}
    }
    path = write_config(tmp_path / "npsp.yaml", data)
    ready = asyncio.Event()
    daemon = Daemon(path, load_config(path))
    task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))
    await asyncio.wait_for(ready.wait(), 10)
    running = Running(daemon, task)
    assert daemon.rules is not None  # the daemon runs the reports' desk with the others
    assert any(isinstance(d, ReportDesk) for d in daemon.rules.desks())
    served = Served(running)
    config = load_config(path)
    registry = Registry.from_config(config)
    router = Router(config.alerting, [e.agency for e in registry.systems.values()])
    producer = Producer(served.store, lambda: registry, lambda: router, lambda: BASE)
    now = time.time()
    for name in ("national-monthly", "agency-weekly"):
        schedule = config.reports.schedules[name]
        await producer.produce(name, schedule, previous_period(schedule.period, now), now, now)
    yield served
    await running.stop()


async def test_the_api_lists_and_serves_reports_by_the_access_rules(served: Served) -> None:
    national = await served.caller("national-admin", None)
    status, listing = await national.call("GET", "/api/v1/reports")
    assert status == 200
    reports = {(r["schedule"], r["agency"]): r for r in listing["reports"]}
    assert set(reports) == {
        ("national-monthly", None),
        ("agency-weekly", "bo-a"),
        ("agency-weekly", "bo-b"),
    }
    mine = reports[("agency-weekly", "bo-a")]
    other = reports[("agency-weekly", "bo-b")]
    whole = reports[("national-monthly", None)]
    assert mine["scope"] == "agency" and whole["scope"] == "national"
    assert mine["links"]["csv"] == f"/api/v1/reports/{mine['id']}?format=csv"

    status, got = await national.call("GET", whole["links"]["json"])
    assert status == 200 and {a["id"] for a in got["report"]["agencies"]} == {"bo-a", "bo-b"}
    status, text = await national.call("GET", mine["links"]["csv"])
    assert status == 200 and text.startswith("period,scope,agency")

    viewer = await served.caller("viewer", "bo-a")
    status, listing = await viewer.call("GET", "/api/v1/reports")
    assert status == 200 and [r["id"] for r in listing["reports"]] == [mine["id"]]
    status, got = await viewer.call("GET", f"/api/v1/reports/{mine['id']}")
    assert status == 200 and [a["id"] for a in got["report"]["agencies"]] == ["bo-a"]
    for refused in (other, whole):  # another agency's, and the portal's own
        for path in (refused["links"]["json"], refused["links"]["csv"]):
            status, body = await viewer.call("GET", path)
            assert status == 403, (path, body)
    for bad, code in (("/api/v1/reports/999999", 404), ("/api/v1/reports/x", 404),
                      (f"/api/v1/reports/{mine['id']}?format=pdf", 400)):  # fmt: skip
        status, _ = await viewer.call("GET", bad)
        assert status == code, bad
    status, _ = await Caller(served.running.base, None).call("GET", "/api/v1/reports")
    assert status == 401

    # The pages: the agency's list and the report itself, by the same rule.
    async def page(token: str, path: str) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as s,
            s.get(
                served.running.base + path,
                headers={"Authorization": f"Bearer {token}"},
                allow_redirects=False,
            ) as r,
        ):
            return r.status, await r.text()

    token = served.tokens["viewer-bo-a"]
    status, text = await page(token, "/agency/bo-a")
    assert status == 200 and 'href="/agency/bo-a/reports"' in text
    status, text = await page(token, "/agency/bo-a/reports")
    assert status == 200 and f'data-id="{mine["id"]}"' in text and "agency-weekly" in text
    status, text = await page(token, f"/reports/{mine['id']}?lang=en")
    assert status == 200 and "Availability report, week" in text
    for path in ("/agency/bo-b/reports", f"/reports/{other['id']}", f"/reports/{whole['id']}"):
        status, _ = await page(token, path)
        assert status == 403, path
    status, text = await page(served.tokens["national-admin-vpcp"], "/reports")
    assert status == 200 and all(f'data-id="{r["id"]}"' in text for r in reports.values())


# ----- report send --now ----------------------------------------------------------------------


def test_report_send_now_queues_once_per_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "npsp.yaml"
    path.write_text(
        yaml.safe_dump(config_data(tmp_path / "state.db"), allow_unicode=True), encoding="utf-8"
    )

    async def prepare() -> None:
        store = await Store.open(tmp_path / "state.db")
        try:
            await history(store, hanoi(2026, 1, 20))
        finally:
            await store.close()

    asyncio.run(prepare())
    now = hanoi(2026, 3, 10, 15, 0)
    parser = argparse.ArgumentParser(prog="npsp-monitor")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", type=Path, required=True)

    add_report_commands(sub, with_config, clock=lambda: now)

    def run(*argv: str) -> tuple[int, str, str]:
        args = parser.parse_args(["report", *argv])
        code: int = args.func(args)
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, err = run("send", "-c", str(path), "--now", "--schedule", "national-monthly")
    assert (code, err) == (0, "") and "national-monthly 2026-02: 1 produced, 2 messages" in out
    code, out, _ = run("-c", str(path), "send", "--now", "--schedule", "national-monthly")
    assert code == 0 and "produced already" in out
    code, out, _ = run("send", "-c", str(path), "--now")  # every enabled schedule
    assert code == 0 and "agency-weekly 2026-W10: 2 produced, 4 messages" in out
    assert "national-monthly 2026-02: produced already" in out
    code, out, _ = run("send", "-c", str(path), "--now", "--schedule", "agency-weekly",
                       "--period", "2026-W08")  # fmt: skip
    assert code == 0 and "agency-weekly 2026-W08: 2 produced" in out
    # Bad input: 2 with one line; the month's report command still works.
    for argv in (("--period", "2026-13"), ("--schedule", "nope"),
                 ("--schedule", "agency-weekly", "--period", "2026-02")):  # fmt: skip
        code, _, err = run("send", "-c", str(path), "--now", *argv)
        assert code == 2 and err.count("\n") == 1, (argv, err)
    code, out, _ = run("-c", str(path), "--month", "2026-02", "--format", "json")
    assert code == 0 and json.loads(out)["month"] == "2026-02"
    code, _, err = run("-c", str(path))
    assert code == 2 and "--month" in err

    async def count() -> tuple[int, int]:
        store = await Store.open(tmp_path / "state.db")
        try:
            return await store.transact(
                lambda db: (
                    int(db.execute("SELECT COUNT(*) FROM report_runs").fetchone()[0]),
                    int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]),
                )
            )
        finally:
            await store.close()

    assert asyncio.run(count()) == (5, 10)


def test_report_send_now_reaches_an_agencys_own_contacts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command routes as the daemon does: the registry's people and the agency's own."""
    path = tmp_path / "npsp.yaml"
    path.write_text(
        yaml.safe_dump(config_data(tmp_path / "state.db"), allow_unicode=True), encoding="utf-8"
    )
    own = StoredContact(
        id="c-0123456789ab", agency="ha-noi", name="Trực ca Hà Nội", role="technical-admin",
        phone=None, email="truc@ha-noi.dvc.example", portal_account=None, webhook=None,
        channels=("email",), language="vi", account_id=None, created_at=hanoi(2026, 1, 2),
        updated_at=hanoi(2026, 1, 2), confirmed_at=None, removed_at=None,
    )  # fmt: skip

    async def prepare() -> None:
        store = await Store.open(tmp_path / "state.db")
        try:
            await history(store, hanoi(2026, 1, 20))
            await store.transact(lambda db: contacts_store.add(db, own))
        finally:
            await store.close()

    asyncio.run(prepare())
    parser = argparse.ArgumentParser(prog="npsp-monitor")
    sub = parser.add_subparsers(dest="command", required=True)
    add_report_commands(
        sub,
        lambda p: p.add_argument("-c", "--config", type=Path, required=True),
        clock=lambda: hanoi(2026, 3, 10, 15, 0),
    )
    args = parser.parse_args(
        ["report", "send", "-c", str(path), "--now", "--schedule", "agency-weekly"]
    )
    assert args.func(args) == 0, capsys.readouterr().err

    async def addresses() -> set[str]:
        store = await Store.open(tmp_path / "state.db")
        try:
            rows = await store.transact(
                lambda db: db.execute("SELECT address FROM outbox").fetchall()
            )
            return {str(r[0]) for r in rows}
        finally:
            await store.close()

    assert "truc@ha-noi.dvc.example" in asyncio.run(addresses())
