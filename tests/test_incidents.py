"""Incidents and their SLA clock, on an injected clock: opened on DOWN with the alert pipeline's
id, acknowledged (which stops the pipeline's escalation), no due time for outages, support
requests' reminders at 50 % and 100 % of the SLA in working hours from their receipt, the breach
counter, auto-resolution, the command line, restarts.

A real SQLite store, a real alert pipeline and outbox as the notice sink; the channels are
function fakes at the outermost seam (real channels: test_notify_*).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from monitor.alerting.notices import NoticeSender, RunningRouter
from monitor.alerting.outbox import Outbox, OutboxWorker
from monitor.alerting.pipeline import AlertPipeline
from monitor.cli.incidents import add_incident_commands
from monitor.config import Config
from monitor.registry import Registry
from monitor.rules.desk import RulesContext
from monitor.rules.incidents import (
    IncidentDesk,
    IncidentError,
    acknowledge,
    get_incident,
    list_incidents,
    open_incident,
    resolve,
)
from monitor.state import Event, State
from monitor.store import Store
from monitor.workdays import WorkCalendar
from notifiers.base import Delivery, Message

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
KT = "kt@ha-noi.dvc.example"  # technical admin (e-mail + inbox + SMS)
KT_INBOX = "kt.ha-noi"
KT_PHONE = "+84900000001"
CC = "cc@ha-noi.dvc.example"  # high-level admin, reads English
OPS = "ops@vpcp.dvc.example"
KT_YTE = "kt@bo-y-te.dvc.example"


def hanoi(*args: int) -> float:
    """Epoch seconds of a wall-clock time in Hanoi."""
    return dt.datetime(*args, tzinfo=HANOI).timestamp()  # type: ignore[misc]


def agency(aid: str, systems: list[str], *, sms: bool = False) -> dict[str, Any]:
    return {
        "id": aid,
        "kind": "province",
        "name_vi": f"Tỉnh {aid}",
        "name_en": f"{aid} Province",
        "code": aid[:4].upper(),
        "contacts": [
            {
                "name": f"KT {aid}",
                "role": "technical-admin",
                "email": f"kt@{aid}.dvc.example",
                "portal_account": f"kt.{aid}",
                **({"phone": KT_PHONE, "channels": ["sms", "email", "inbox"]} if sms else {}),
            },
            {
                "name": f"CC {aid}",
                "role": "high-level-admin",
                "email": f"cc@{aid}.dvc.example",
                "channels": ["email"],
                "language": "en",
            },
        ],
        "systems": [
            {
                "id": s,
                "kind": "one-stop",
                "name": f"Hệ thống {s}",
                "checks": [{"id": "tcp", "kind": "tcp", "host": "h.example", "port": 1}],
            }
            for s in systems
        ],
    }


def config_data(state_db: Path, **alerting: Any) -> dict[str, Any]:
    return {
        "state_db": str(state_db),
        "agencies": [
            agency("ha-noi", ["portal", "one-stop"], sms=True),
            agency("bo-y-te", ["portal"]),
        ],
        "alerting": {
            "operations": [
                {"name": "VPCP trực", "email": OPS, "channels": ["email"]},
            ],
            **alerting,
        },
        "channels": {  # never used here: the tests hand messages to fakes
            "sms": {
                "account_sid": "AC" + "0" * 32,
                "auth_token": {"env": "NPSP_TEST_UNUSED_TOKEN"},
                "from_number": "+84900000000",
            },
            "email": {"host": "127.0.0.1", "port": 25, "from_addr": "npsp@dvc.example"},
        },
        "calendar": {
            # bo-y-te works 07:30–11:30 and 13:30–17:30
            "agency_working_hours": {"bo-y-te": [["07:30", "11:30"], ["13:30", "17:30"]]},
        },
    }


class Sent:
    """Everything handed to the fake channels."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def channel(self, name: str) -> Any:
        sent = self

        class Fake:
            channel = name

            async def send(self, message: Message) -> Delivery:
                sent.messages.append(message)
                return Delivery(f"id-{len(sent.messages)}")

            async def aclose(self) -> None:
                return None

        return Fake()

    def to(self, address: str, about: str = "") -> list[Message]:
        """Messages to ``address`` whose subject mentions ``about``."""
        return [m for m in self.messages if m.to == address and about in m.subject]

    def incident(self, incident_id: str) -> list[Message]:
        """The SLA notices of one incident (alerts name systems, not incident ids)."""
        return [m for m in self.messages if incident_id in m.subject or incident_id in m.text]


class World:
    """One daemon: pipeline, outbox, incident desk, wired as monitor/app.py should wire them."""

    def __init__(self, store: Store, config: Config, now: float) -> None:
        self.now = now
        self.store = store
        self.config = config
        self.registry = Registry.from_config(config)
        self.calendar = WorkCalendar(config.calendar)
        self.outbox = Outbox(
            store, config.alerting.outbox, clock=lambda: self.now, jitter=lambda: 0.5
        )
        # Built in dependency order, as monitor/build.py does: notices, desk, pipeline.
        settings = lambda: config.alerting  # noqa: E731
        notices = NoticeSender(
            self.outbox, RunningRouter(settings, lambda: self.registry), settings
        )
        self.breaches = 0
        self.ctx = RulesContext(
            store=store,
            calendar=self.calendar,
            notices=notices,
            registry=lambda: self.registry,
            clock=lambda: self.now,
            counters={"incident_sla_breaches": self._breach},
        )
        self.desk = IncidentDesk(self.ctx)
        self.pipeline = AlertPipeline(
            config.alerting,
            self.registry,
            self.outbox,
            acks=self.desk,
            clock=lambda: self.now,
        )
        self.recorded: list[Event] = []  # events the engine has not saved yet
        self.sent = Sent()
        self.workers = [
            OutboxWorker(self.outbox, self.sent.channel(c)) for c in ("sms", "email", "inbox")
        ]

    def _breach(self) -> None:
        self.breaches += 1

    async def start(self) -> None:
        """What the daemon does at start-up (after the engine restored the states)."""
        await self.desk.refresh()  # the daemon loads the desks first (RulesService.load)
        states = await self.store.states()
        self.pipeline.restore(states, await self.outbox.told())
        await self.desk.restore(states)

    def event(self, key: str, old: State, new: State, reason: str = "connect: refused") -> None:
        agency_id, system = key.split("/")
        events = [Event(self.now, agency_id, system, old, new, reason, "gw")]
        # The engine records events, then hands them to every subscriber.
        self.recorded.extend(events)
        self.pipeline.on_events(events)
        self.desk.on_events(events)

    async def step(self) -> None:
        """One turn of the daemon's loops at ``now``: store, desks, pipeline, outbox."""
        if self.recorded:
            await self.store.record(self.recorded)
            self.recorded.clear()
        await self.desk.refresh()  # run_desks refreshes when another process wrote
        await self.desk.tick(self.now)
        await self.pipeline.tick()
        for worker in self.workers:
            while await worker.run_once():
                pass

    async def at(self, moment: float) -> None:
        assert moment >= self.now
        self.now = moment
        await self.step()

    async def walk(self, until: float, every: float = 1800) -> None:
        """Let time pass in steps (so escalations and reminders are seen as they fall due)."""
        while self.now + every < until:
            await self.at(self.now + every)
        await self.at(until)


def make_world(store: Store, tmp_path: Path, now: float, **alerting: Any) -> World:
    return World(store, Config.model_validate(config_data(tmp_path / "state.db", **alerting)), now)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "state.db")
    yield s
    await s.close()


# ----- opening and resolving outage incidents ------------------------------------------------


async def test_down_opens_an_incident_with_the_pipeline_incident_id(
    store: Store, tmp_path: Path
) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 11, 30, 9, 0))  # Monday
    w.event("ha-noi/portal", State.UP, State.DOWN)
    await w.step()
    (incident,) = await list_incidents(store)
    assert incident.id == w.pipeline.alerts["ha-noi/portal"].incident
    assert incident.id == f"ha-noi/portal@{int(hanoi(2026, 11, 30, 9, 0))}"
    assert (incident.agency, incident.system, incident.source) == ("ha-noi", "portal", "outage")
    assert "connect: refused" in incident.summary
    # An outage has no working-hours due time: it escalates around the clock instead.
    assert incident.due_at == float("inf") and incident.received_at is None

    # Still failing (UNREACHABLE, then DOWN again): the same outage, the same incident.
    w.now += 60
    w.event("ha-noi/portal", State.DOWN, State.UNREACHABLE, "ha-noi/one-stop is down")
    w.now += 60
    w.event("ha-noi/portal", State.UNREACHABLE, State.DOWN)
    await w.step()
    assert [i.id for i in await list_incidents(store)] == [incident.id]
    assert w.pipeline.alerts["ha-noi/portal"].incident == incident.id


async def test_flapping_opens_one_unreachable_and_gateway_do_not(
    store: Store, tmp_path: Path
) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 11, 30, 9, 0))
    w.event("ha-noi/one-stop", State.UP, State.UNREACHABLE, "ha-noi/portal is down")
    w.desk.on_events(
        [Event(w.now, "_gateway", "uplink", State.UP, State.DOWN, "gateway cut off", "gw")]
    )
    w.event("ha-noi/unknown-system", State.UP, State.DOWN)  # not in the registry
    await w.step()
    assert await list_incidents(store) == []
    w.event("bo-y-te/portal", State.UP, State.FLAPPING, "6 flips in 1h")
    await w.step()
    (incident,) = await list_incidents(store)
    assert incident.id == w.pipeline.alerts["bo-y-te/portal"].incident
    assert incident.summary.startswith("bo-y-te/portal flapping")


async def test_up_resolves_the_outage_incident_but_not_a_support_request(
    store: Store, tmp_path: Path
) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 11, 30, 9, 0))
    request = await open_incident(
        store,
        w.registry,
        w.calendar,
        agency="ha-noi",
        system="portal",
        summary="Hồ sơ không đồng bộ",
        now=w.now,
    )
    w.event("ha-noi/portal", State.UP, State.DOWN)
    await w.step()
    outage_id = w.pipeline.alerts["ha-noi/portal"].incident
    await w.at(hanoi(2026, 11, 30, 9, 45))
    w.event("ha-noi/portal", State.DOWN, State.UP)
    await w.step()
    outage = await get_incident(store, outage_id)
    assert outage is not None
    assert (outage.resolved_at, outage.resolved_by, outage.resolution) == (
        hanoi(2026, 11, 30, 9, 45),
        "system",
        "connection restored",
    )
    assert [i.id for i in await list_incidents(store)] == [request.id]  # only a person closes it
    # Down again later: a new outage, a new incident.
    await w.at(hanoi(2026, 11, 30, 10, 0))
    w.event("ha-noi/portal", State.UP, State.DOWN)
    await w.step()
    ids = {i.id for i in await list_incidents(store)}
    assert ids == {request.id, f"ha-noi/portal@{int(hanoi(2026, 11, 30, 10, 0))}"}
    # The resolved outage never gets a reminder, even long after its due time.
    await w.walk(hanoi(2026, 12, 2, 12, 0), every=3600)
    assert w.sent.incident(outage_id) == []


# ----- acknowledgement and the pipeline's escalation ------------------------------------------


async def test_acknowledging_stops_the_pipelines_escalation(store: Store, tmp_path: Path) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 11, 30, 9, 0))
    w.event("ha-noi/portal", State.UP, State.DOWN)
    w.event("ha-noi/one-stop", State.UP, State.DOWN)
    await w.at(w.now + 31)
    assert len(w.sent.to(KT, "mất kết nối")) == 1  # the alert itself went out
    portal = w.pipeline.alerts["ha-noi/portal"].incident
    assert not w.desk.acknowledged(portal)
    await acknowledge(store, portal, "Nguyễn Văn A", w.now)
    await w.step()
    assert w.desk.acknowledged(portal)
    await w.walk(hanoi(2026, 11, 30, 9, 45), every=60)  # the ladder's first step: 30 min
    # Only the unacknowledged system is escalated to the high-level admins.
    (escalation,) = w.sent.to(CC)
    assert "Hệ thống one-stop" in escalation.subject
    assert "Hệ thống portal" not in escalation.subject
    # The step taken is recorded on the incident; the acknowledged one has none.
    one_stop = await get_incident(store, w.pipeline.alerts["ha-noi/one-stop"].incident)
    assert one_stop is not None
    assert (one_stop.escalation_step, one_stop.escalated_to) == (1, "high-level-admins")
    assert one_stop.escalated_at is not None
    assert hanoi(2026, 11, 30, 9, 30) <= one_stop.escalated_at < hanoi(2026, 11, 30, 9, 31)
    acknowledged = await get_incident(store, portal)
    assert acknowledged is not None and acknowledged.escalation_step == 0


async def test_acknowledged_after_restart_even_when_the_pipeline_id_moved(
    store: Store, tmp_path: Path
) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 11, 30, 9, 0))
    w.event("ha-noi/portal", State.UP, State.DOWN)
    await w.at(w.now + 31)
    first = w.pipeline.alerts["ha-noi/portal"].incident
    await acknowledge(store, first, "Nguyễn Văn A", w.now)
    # Behind its parent for a while, then DOWN again: the stored state's "since" moves.
    w.now += 60
    w.event("ha-noi/portal", State.DOWN, State.UNREACHABLE, "ha-noi/one-stop is down")
    w.now += 60
    w.event("ha-noi/portal", State.UNREACHABLE, State.DOWN)
    await w.step()

    restarted = make_world(store, tmp_path, w.now)
    await restarted.start()
    rebuilt = restarted.pipeline.alerts["ha-noi/portal"].incident
    assert rebuilt != first  # the pipeline rebuilt the id from the stored state's "since"
    assert restarted.desk.acknowledged(rebuilt)
    assert [i.id for i in await list_incidents(store)] == [first]  # no second incident
    await restarted.walk(hanoi(2026, 11, 30, 14, 0))
    assert restarted.sent.to(CC, "Chưa được xử lý") == []


async def test_an_outage_closed_by_a_person_is_neither_escalated_nor_reminded(
    store: Store, tmp_path: Path
) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 11, 30, 9, 0))
    w.event("ha-noi/portal", State.UP, State.DOWN)
    await w.at(w.now + 31)
    outage = w.pipeline.alerts["ha-noi/portal"].incident
    await resolve(store, outage, "Nguyễn Văn A", "đơn vị đang chuyển máy chủ", w.now)
    await w.step()
    assert w.desk.acknowledged(outage)
    # Still failing (behind its parent, then DOWN again): the same outage, not a new incident.
    w.now += 60
    w.event("ha-noi/portal", State.DOWN, State.UNREACHABLE, "ha-noi/one-stop is down")
    w.now += 60
    w.event("ha-noi/portal", State.UNREACHABLE, State.DOWN)
    await w.walk(hanoi(2026, 12, 1, 12, 0))
    assert await list_incidents(store) == []
    assert w.sent.to(CC) == []  # no escalation, no breach
    assert w.sent.incident(outage) == []
    stored = await get_incident(store, outage)
    assert stored is not None and stored.resolved_by == "Nguyễn Văn A"


async def test_a_resolution_written_just_before_a_tick_wins(store: Store, tmp_path: Path) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 12, 4, 16, 0))
    incident = await open_incident(
        store, w.registry, w.calendar, agency="ha-noi", summary="x", now=w.now
    )
    await w.step()
    # The command line resolves it after the desk's last refresh: the tick must not remind.
    await resolve(store, incident.id, "Lê C", "xong", hanoi(2026, 12, 7, 10, 59))
    await w.desk.tick(hanoi(2026, 12, 7, 16, 30))
    await w.pipeline.tick()
    for worker in w.workers:
        while await worker.run_once():
            pass
    assert w.sent.messages == []
    assert w.breaches == 0


# ----- the SLA clock ---------------------------------------------------------------------------


async def test_sla_due_time_skips_weekends_holidays_and_follows_agency_hours(
    store: Store, tmp_path: Path
) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 12, 4, 16, 0))

    async def due(agency_id: str, now: float) -> dt.datetime:
        incident = await open_incident(
            store, w.registry, w.calendar, agency=agency_id, summary="Yêu cầu hỗ trợ", now=now
        )
        return dt.datetime.fromtimestamp(incident.due_at, HANOI)

    # Friday 16:00 + 8 working hours: 1 h on Friday, the weekend skipped, 7 h on Monday.
    assert await due("ha-noi", hanoi(2026, 12, 4, 16, 0)) == dt.datetime(
        2026, 12, 7, 16, 0, tzinfo=HANOI
    )
    # Friday 2026-08-28: Monday 31/8 is a day off (swap), 1/9 and 2/9 are National Day.
    assert await due("ha-noi", hanoi(2026, 8, 28, 16, 0)) == dt.datetime(
        2026, 9, 3, 16, 0, tzinfo=HANOI
    )
    # bo-y-te works until 17:30: 1.5 h on Friday, then 07:30–11:30 and 13:30–16:00 on Monday.
    assert await due("bo-y-te", hanoi(2026, 12, 4, 16, 0)) == dt.datetime(
        2026, 12, 7, 16, 0, tzinfo=HANOI
    )
    assert await due("bo-y-te", hanoi(2026, 12, 4, 17, 15)) == dt.datetime(
        2026, 12, 7, 17, 15, tzinfo=HANOI
    )
    # ha-noi's day ended at 17:00: the clock starts on Monday 08:00.
    assert await due("ha-noi", hanoi(2026, 12, 4, 17, 15)) == dt.datetime(
        2026, 12, 7, 17, 0, tzinfo=HANOI
    )
    assert [i.id for i in await list_incidents(store)] == [
        "req-2",
        "req-1",
        "req-3",
        "req-4",
        "req-5",
    ]


async def test_reminders_at_50_and_100_percent_once_each_to_the_right_people(
    store: Store, tmp_path: Path
) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 12, 4, 16, 0))  # Friday
    incident = await open_incident(
        store,
        w.registry,
        w.calendar,
        agency="ha-noi",
        system="portal",
        summary="Không nộp được hồ sơ",
        now=w.now,
    )
    await acknowledge(store, incident.id, "Trần Văn B", w.now + 600)
    await w.walk(hanoi(2026, 12, 7, 10, 59))  # Monday 10:59: 3 h 59 min used
    assert w.sent.incident("req-1") == []

    # 50 %: Friday 16–17 and Monday 08–11 are four working hours.
    await w.walk(hanoi(2026, 12, 7, 12, 0), every=60)
    half = w.sent.incident("req-1")
    assert sorted(m.to for m in half) == sorted([KT, KT_INBOX, KT_PHONE])  # technical admins
    email = next(m for m in half if m.to == KT)
    assert email.subject == "[NPSP] Sự cố req-1: đã dùng một nửa thời hạn xử lý"
    assert "còn 4.0 giờ làm việc" in email.text
    assert "Đã tiếp nhận: Trần Văn B lúc 16:10 04/12/2026." in email.text
    assert "Hạn xử lý: 16:00 07/12/2026 (8 giờ làm việc, QĐ 31/2021/QĐ-TTg" in email.text
    assert "Hệ thống: Hệ thống portal (ha-noi/portal)" in email.text
    assert "Hỗ trợ:" in email.text  # the pipeline's footer
    sms = next(m for m in half if m.to == KT_PHONE)
    assert sms.text.startswith("NPSP: sự cố req-1 còn 4.0 giờ làm việc")
    assert len(sms.text) <= 140
    assert w.breaches == 0
    stored = await get_incident(store, "req-1")
    assert stored is not None and (stored.reminded, stored.breached_at) == (50, None)

    # 100 %: Monday 16:00, once, to technical and high-level admins and operations.
    await w.walk(hanoi(2026, 12, 7, 15, 59), every=1800)
    assert len(w.sent.incident("req-1")) == 3
    await w.walk(hanoi(2026, 12, 7, 18, 0), every=60)
    breach = w.sent.incident("req-1")[3:]
    assert sorted(m.to for m in breach) == sorted([KT, KT_INBOX, KT_PHONE, CC, OPS])
    english = next(m for m in breach if m.to == CC)
    assert english.subject == "[NPSP] Incident req-1 breached its SLA"
    assert "Acknowledged by Trần Văn B at 16:10 04/12/2026." in english.text
    assert english.thread_key == email.thread_key  # the incident's e-mails thread together
    assert w.breaches == 1
    stored = await get_incident(store, "req-1")
    assert stored is not None
    assert stored.reminded == 100 and stored.breached_at == hanoi(2026, 12, 7, 16, 0)

    # Nothing more, however long it stays open; resolving late counts no second breach.
    await w.walk(hanoi(2026, 12, 9, 9, 0), every=3600)
    await resolve(store, "req-1", "Trần Văn B", "đã sửa", w.now)
    await w.walk(hanoi(2026, 12, 9, 10, 0))
    assert len(w.sent.incident("req-1")) == 8
    assert w.breaches == 1


async def test_resolved_in_time_gets_no_reminder_and_no_breach(
    store: Store, tmp_path: Path
) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 12, 4, 16, 0))
    incident = await open_incident(
        store, w.registry, w.calendar, agency="ha-noi", summary="Lỗi chữ ký số", now=w.now
    )
    await w.walk(hanoi(2026, 12, 7, 9, 0))
    await resolve(store, incident.id, "Trần Văn B", "đã gia hạn chứng thư", w.now)
    await w.walk(hanoi(2026, 12, 8, 9, 0))
    assert w.sent.incident(incident.id) == []
    assert w.breaches == 0


async def test_reminders_missed_while_the_daemon_was_stopped(store: Store, tmp_path: Path) -> None:
    thursday, friday = hanoi(2026, 12, 3, 16, 0), hanoi(2026, 12, 4, 16, 0)
    w = make_world(store, tmp_path, hanoi(2026, 12, 7, 12, 0))
    for summary, opened in (("một", thursday), ("hai", friday), ("ba", thursday)):
        await open_incident(
            store, w.registry, w.calendar, agency="ha-noi", summary=summary, now=opened
        )
    # req-1 (due Friday 16:00) is resolved late on Saturday, while the daemon is stopped.
    await resolve(store, "req-1", "Lê C", "xong", hanoi(2026, 12, 5, 10, 0))

    # Back on Monday 12:00.
    await w.start()
    await w.step()
    await w.at(w.now + 60)
    # req-1: a breach, counted once, but nobody is told about something already handled.
    assert w.sent.incident("req-1") == []
    # req-2: half its SLA used (due 16:00): the 50 % reminder only.
    half = w.sent.incident("req-2")
    assert sorted(m.to for m in half) == sorted([KT, KT_INBOX, KT_PHONE])
    assert all("một nửa" in m.subject for m in half if m.to == KT)
    # req-3: due since Friday: the breach only; "4 hours left" would be false by now.
    breach = w.sent.incident("req-3")
    assert sorted(m.to for m in breach) == sorted([KT, KT_INBOX, KT_PHONE, CC, OPS])
    assert not any("một nửa" in m.subject for m in breach if m.channel != "sms")
    # One SMS budget per number: the reminder and the breach reach the phone as one SMS.
    (sms,) = w.sent.to(KT_PHONE)
    assert "req-2" in sms.text and "req-3" in sms.text
    assert w.breaches == 2
    stored = await get_incident(store, "req-1")
    assert stored is not None and stored.breached_at == hanoi(2026, 12, 7, 12, 0)

    await w.walk(hanoi(2026, 12, 7, 16, 30), every=900)
    assert len(w.sent.incident("req-2")) == 3 + 5
    assert len(w.sent.incident("req-3")) == 5
    assert w.breaches == 3


async def test_the_breach_counter_counts_each_breach_once(store: Store, tmp_path: Path) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 11, 30, 9, 0))
    await open_incident(  # due Tuesday 09:00
        store, w.registry, w.calendar, agency="ha-noi", summary="một", now=w.now
    )
    # An outage as long has no SLA: it escalates on wall-clock time, never "breaches".
    w.event("ha-noi/one-stop", State.UP, State.DOWN)
    await w.at(hanoi(2026, 11, 30, 13, 0))
    await open_incident(  # 13:30–17:30, 07:30–11:30: Tuesday 11:30
        store, w.registry, w.calendar, agency="bo-y-te", summary="hai", now=w.now
    )
    await w.step()
    await w.walk(hanoi(2026, 12, 1, 8, 59))
    assert w.breaches == 0
    await w.walk(hanoi(2026, 12, 1, 11, 29), every=60)
    assert w.breaches == 1
    await w.walk(hanoi(2026, 12, 1, 11, 45), every=60)  # ha-noi's hours would say 12:00
    assert w.breaches == 2
    outage = w.pipeline.alerts["ha-noi/one-stop"].incident
    assert w.sent.incident(outage) == []  # no SLA reminder, no breach notice
    stored = await get_incident(store, outage)
    assert stored is not None and (stored.reminded, stored.breached_at) == (0, None)
    restarted = make_world(store, tmp_path, w.now)
    await restarted.start()
    await restarted.walk(hanoi(2026, 12, 2, 10, 0))
    assert restarted.breaches == 0


async def test_restart_continues_the_clock_and_resolves_what_recovered_meanwhile(
    store: Store, tmp_path: Path
) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 11, 30, 9, 0))
    request = await open_incident(
        store, w.registry, w.calendar, agency="ha-noi", system="portal", summary="x", now=w.now
    )
    w.event("ha-noi/one-stop", State.UP, State.DOWN)
    await w.walk(hanoi(2026, 11, 30, 14, 30))  # 50 % at 14:00
    assert len(w.sent.incident(request.id)) == 3
    # one-stop recovers; the daemon stops before its desk wrote the resolution.
    # bo-y-te/portal fails; its state is saved but the daemon dies before the incident is.
    w.now = hanoi(2026, 11, 30, 14, 40)
    await store.record(
        [
            Event(w.now, "ha-noi", "one-stop", State.DOWN, State.UP, "ok", "gw"),
            Event(w.now, "bo-y-te", "portal", State.UP, State.DOWN, "connect: timed out", "gw"),
        ]
    )

    restarted = make_world(store, tmp_path, hanoi(2026, 11, 30, 15, 0))
    await restarted.start()
    one_stop = await get_incident(store, f"ha-noi/one-stop@{int(hanoi(2026, 11, 30, 9, 0))}")
    assert one_stop is not None and one_stop.resolved_by == "system"
    assert one_stop.resolved_at == hanoi(2026, 11, 30, 14, 40)
    bo_y_te = restarted.pipeline.alerts["bo-y-te/portal"].incident
    assert bo_y_te in {i.id for i in await list_incidents(store)}
    # The 50 % reminder is not sent again; the breach comes once, on Tuesday 09:00.
    await restarted.walk(hanoi(2026, 12, 1, 9, 30), every=300)
    notices = restarted.sent.incident(request.id)
    assert sorted(m.to for m in notices) == sorted([KT, KT_INBOX, KT_PHONE, CC, OPS])
    assert restarted.breaches == 1


# ----- store functions and the command line ---------------------------------------------------


async def test_store_function_errors(store: Store, tmp_path: Path) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 12, 4, 16, 0))
    with pytest.raises(IncidentError, match="unknown agency 'bo-xyz'"):
        await open_incident(store, w.registry, w.calendar, agency="bo-xyz", summary="x", now=0)
    with pytest.raises(IncidentError, match="has no system 'nope'"):
        await open_incident(
            store, w.registry, w.calendar, agency="ha-noi", system="nope", summary="x", now=0
        )
    with pytest.raises(IncidentError, match="summary must not be empty"):
        await open_incident(store, w.registry, w.calendar, agency="ha-noi", summary=" ", now=0)
    with pytest.raises(IncidentError, match="unknown incident 'req-9'"):
        await acknowledge(store, "req-9", "A", w.now)
    incident = await open_incident(
        store, w.registry, w.calendar, agency="ha-noi", summary="x", now=w.now
    )
    await acknowledge(store, incident.id, "A", w.now)
    await acknowledge(store, incident.id, "A", w.now + 1)  # the same person again: a no-op
    with pytest.raises(IncidentError, match="already acknowledged by A"):
        await acknowledge(store, incident.id, "B", w.now)
    await resolve(store, incident.id, "A", "done", w.now + 5)
    with pytest.raises(IncidentError, match="already resolved"):
        await resolve(store, incident.id, "B", "again", w.now + 6)
    with pytest.raises(IncidentError, match="already resolved"):
        await acknowledge(store, incident.id, "B", w.now + 6)
    stored = await get_incident(store, incident.id)
    assert stored is not None
    assert (stored.acknowledged_at, stored.resolved_by, stored.resolution) == (
        w.now,
        "A",
        "done",
    )


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "npsp.yaml"
    path.write_text(
        yaml.safe_dump(config_data(tmp_path / "state.db"), allow_unicode=True), encoding="utf-8"
    )
    return path


class Cli:
    """The ``incident`` commands on a fresh parser, at a chosen time."""

    def __init__(self, config: Path, now: float) -> None:
        self.config = config
        self.now = now
        self.parser = argparse.ArgumentParser(prog="npsp-monitor")
        sub = self.parser.add_subparsers(dest="command", required=True)

        def with_config(p: argparse.ArgumentParser) -> None:
            p.add_argument("-c", "--config", type=Path, required=True)

        add_incident_commands(sub, with_config, clock=lambda: self.now)

    def __call__(
        self, capsys: pytest.CaptureFixture[str], command: str, *argv: str
    ) -> tuple[int, str, str]:
        args = self.parser.parse_args(["incident", command, "-c", str(self.config), *argv])
        code = args.func(args)
        out = capsys.readouterr()
        return code, out.out, out.err


def test_cli_open_ack_resolve_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = Cli(write_config(tmp_path), hanoi(2026, 12, 4, 16, 0))
    code, out, _ = cli(
        capsys, "open", "--agency", "ha-noi", "--system", "portal", "--summary", "Mất hồ sơ",
        "--init",
    )  # fmt: skip
    assert code == 0
    assert out.splitlines() == [
        "opened req-1 for ha-noi/portal: Mất hồ sơ",
        "due    2026-12-07T16:00+07:00 (8 working hours, QĐ 31/2021/QĐ-TTg, Điều 52 khoản 1)",
    ]
    code, out, _ = cli(capsys, "open", "--agency", "bo-y-te", "--summary", "Hỏi", "--json")
    assert code == 0
    opened = json.loads(out)
    assert opened["id"] == "req-2" and opened["system"] is None
    assert opened["due"] == "2026-12-07T16:00+07:00"
    assert opened["remaining_working_hours"] == 8.0

    cli.now = hanoi(2026, 12, 7, 9, 0)  # Monday: 2 working hours used
    code, out, _ = cli(capsys, "list")
    assert code == 0
    header, first, second = out.splitlines()
    assert header.split() == ["ID", "CONCERNS", "SINCE", "DUE", "CLOCK", "STATUS", "SUMMARY"]
    assert first.split() == [
        "req-1",
        "ha-noi/portal",
        "2026-12-04T16:00+07:00",
        "2026-12-07T16:00+07:00",
        "6.0h",
        "open",
        "Mất",
        "hồ",
        "sơ",
    ]
    assert second.split()[4] == "5.0h"  # bo-y-te: 16:00–17:30 and 07:30–09:00 used

    code, out, err = cli(capsys, "ack", "req-1", "--by", "Phạm D")
    assert (code, err) == (0, "")
    assert out == "req-1 acknowledged by Phạm D at 2026-12-07T09:00+07:00\n"

    async def daemon_sees_it() -> None:
        # A running daemon: its refresh picks up what the command line wrote.
        store = await Store.open(tmp_path / "state.db")
        try:
            w = make_world(store, tmp_path, cli.now)
            await w.start()
            assert w.desk.acknowledged("req-1")
            assert not w.desk.acknowledged("req-2")
        finally:
            await store.close()

    asyncio.run(daemon_sees_it())

    cli.now = hanoi(2026, 12, 7, 17, 0)
    code, out, _ = cli(capsys, "list", "--json")
    rows = {r["id"]: r for r in json.loads(out)}
    assert rows["req-1"]["acknowledged_by"] == "Phạm D"
    assert rows["req-1"]["remaining_working_hours"] == -1.0 and rows["req-1"]["late"] is True
    code, out, _ = cli(capsys, "resolve", "req-1", "--by", "Phạm D", "--resolution", "khôi phục")
    assert code == 0
    assert out == (
        "req-1 resolved by Phạm D at 2026-12-07T17:00+07:00 (after its due time): khôi phục\n"
    )
    code, out, _ = cli(capsys, "resolve", "req-2", "--by", "Phạm D")
    assert code == 0 and out.endswith(": resolved\n")
    code, out, _ = cli(capsys, "list")
    assert (code, out) == (0, "no open incidents\n")
    code, out, _ = cli(capsys, "list", "--all")
    lines = out.splitlines()
    assert len(lines) == 3
    assert "resolved by Phạm D, LATE" in lines[1]
    assert lines[1].split()[4] == "-"


def test_cli_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(write_config(tmp_path), hanoi(2026, 12, 4, 16, 0))
    assert cli(capsys, "list", "--init")[0] == 0  # no database is made by surprise

    def fails(*argv: str) -> str:
        code, out, err = cli(capsys, *argv)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and err.startswith("npsp-monitor: ")
        return err

    assert "unknown agency 'bo-xyz'" in fails("open", "--agency", "bo-xyz", "--summary", "x")
    assert "has no system 'api'" in fails(
        "open", "--agency", "ha-noi", "--system", "api", "--summary", "x"
    )
    assert "unknown incident 'req-7'" in fails("ack", "req-7", "--by", "A")
    assert "unknown incident 'req-7'" in fails("resolve", "req-7", "--by", "A")
    assert cli(capsys, "open", "--agency", "ha-noi", "--summary", "x")[0] == 0
    assert cli(capsys, "resolve", "req-1", "--by", "A")[0] == 0
    assert "already resolved" in fails("resolve", "req-1", "--by", "A")
    assert "already resolved" in fails("ack", "req-1", "--by", "B")
    assert "must not be empty" in fails("ack", "req-1", "--by", " ")


async def test_a_storm_of_incidents_gives_one_reminder_per_person_not_one_per_incident(
    store: Store, tmp_path: Path
) -> None:
    """12 requests about systems of one province arrive at once (and one elsewhere): at 50 %
    its technical admin gets one list per channel; at the breach operations get one list."""
    data = config_data(tmp_path / "state.db")
    data["agencies"][0]["systems"] += [
        {
            "id": f"s{n}",
            "kind": "one-stop",
            "name": f"Hệ thống {n}",
            "checks": [{"id": "tcp", "kind": "tcp", "host": "h.example", "port": 1}],
        }
        for n in range(10)
    ]
    w = World(store, Config.model_validate(data), hanoi(2026, 11, 30, 9, 0))
    for key in [
        *(f"ha-noi/{s}" for s in ["portal", "one-stop", *(f"s{n}" for n in range(10))]),
        "bo-y-te/portal",
    ]:
        agency_id, system = key.split("/")
        await open_incident(
            store, w.registry, w.calendar, agency=agency_id, system=system, summary="x", now=w.now
        )
    await w.walk(hanoi(2026, 11, 30, 14, 30), every=300)  # past 50 %
    half = [m for m in w.sent.to(KT) if "một nửa" in m.subject]
    assert len(half) == 1 and half[0].subject.startswith("[NPSP] 12 sự cố của")
    assert all(f"(ha-noi/s{n})" in half[0].text for n in range(10))
    assert len([m for m in w.sent.messages if m.to == KT_PHONE and "nửa" in m.text]) == 1
    await w.walk(hanoi(2026, 12, 1, 10, 0), every=300)  # past every breach
    ops = [m for m in w.sent.to(OPS) if "quá hạn" in m.subject]
    assert len(ops) == 1 and ops[0].subject == "[NPSP] 13 sự cố của nhiều đơn vị quá hạn xử lý"
    assert "(bo-y-te/portal)" in ops[0].text and "(ha-noi/s9)" in ops[0].text
    assert len([m for m in w.sent.to(CC) if "breached" in m.subject]) == 1
    assert w.breaches == 13
