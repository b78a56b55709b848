"""DEGRADED and MAINTENANCE from end to end (issue 11, item 1).

* the alert pipeline on an injected clock (a real SQLite outbox; the channels are function fakes
  at the outermost seam, as in test_alert_pipeline): a degraded system is told by e-mail, not
  SMS, in its own words; an outage ending degraded is resolved and the degradation told; a
  degraded system going down is paged as an outage; no escalation; a restart keeps it;
* incidents, driven by the real state machine, maintenance desk and incident desk: none for
  DEGRADED or MAINTENANCE, one when a window ends on a system still down;
* the store: a state's reason as a code survives a restart;
* the whole daemon on loopback with real peers (aiosmtpd, the Twilio-API peer, Mosquitto):
  a dead system inside a maintenance window shows ``maintenance`` and pages nobody until the
  window ends; a slow HTTP server is ``degraded`` on /metrics and the MQTT status topic, told by
  e-mail and not by SMS.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from monitor.alerting.escalation import Acknowledgements
from monitor.alerting.mute import Muter
from monitor.alerting.notices import NoticeSender, RunningRouter
from monitor.alerting.outbox import Outbox, OutboxWorker
from monitor.alerting.pipeline import AlertPipeline
from monitor.app import Daemon
from monitor.config import Config, load_config
from monitor.reasons import say
from monitor.registry import Registry
from monitor.rules.desk import RulesContext
from monitor.rules.incidents import IncidentDesk, list_incidents
from monitor.rules.maintenance import MaintenanceDesk, schedule
from monitor.state import (
    CheckStatus,
    Event,
    State,
    StateMachine,
    SystemStatus,
    Thresholds,
)
from monitor.store import Store
from monitor.workdays import WorkCalendar
from npsp_common.types import ProbeResult, Why
from probes.reasons import warn, why
from tests.peers import free_port, wait_until
from tests.peers.mosquitto import Mosquitto, available
from tests.peers.smtp import SMTP_PASSWORD, SMTP_USER, Certs, SmtpPeer
from tests.peers.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio
from tests.probe_servers import delayed, http_server, response
from tests.test_alert_pipeline import Sent
from tests.test_daemon import Running, metric

VN = dt.timezone(dt.timedelta(hours=7))
MONDAY = dt.datetime(2026, 11, 30, 9, 0, tzinfo=VN).timestamp()  # a working Monday morning

KT = "kt@ha-noi.dvc.example"  # technical admin: [sms, email]
KT_PHONE = "+84900000101"
TRUC = "truc@ha-noi.dvc.example"  # technical admin on duty: [sms] only, with an e-mail address
TRUC_PHONE = "+84900000102"
CC = "cc@ha-noi.dvc.example"  # high-level admin: only on escalation
OPS = "ops@vpcp.dvc.example"

SLOW_WHY = Why(
    "system.degraded",
    {
        "checks": (
            Why("check", {"id": "http", "why": Why("http.slow", {"elapsed": 1.5, "limit": 1.0})}),
        )
    },
)
DOWN_WHY = Why(
    "system.checks",
    {
        "checks": (
            Why("check", {"id": "http", "why": Why("connect", {"error": Why("os.refused")})}),
        )
    },
)


def hanoi_agency(systems: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": "ha-noi",
        "kind": "province",
        "name_vi": "Thành phố Hà Nội",
        "name_en": "Hanoi",
        "code": "01",
        "contacts": [
            {
                "name": "KT Hà Nội",
                "role": "technical-admin",
                "phone": KT_PHONE,
                "email": KT,
                "portal_account": "kt.ha-noi",
                "channels": ["sms", "email"],
            },
            {
                "name": "Trực ban Hà Nội",
                "role": "technical-admin",
                "phone": TRUC_PHONE,
                "email": TRUC,
                "channels": ["sms"],
            },
            {"name": "CC Hà Nội", "role": "high-level-admin", "email": CC, "channels": ["email"]},
        ],
        "systems": [
            {
                "id": s,
                "kind": "secure-server" if s == "secure-server" else "public-service-portal",
                "name": "Máy chủ bảo mật" if s == "secure-server" else "Cổng dịch vụ công",
                "checks": [{"id": "http", "kind": "tcp", "host": "h.example", "port": 1}],
            }
            for s in systems or ["portal"]
        ],
    }


def pipeline_config(**alerting: Any) -> Config:
    return Config.model_validate(
        {
            "defaults": {"failure_threshold": 1, "success_threshold": 1},
            "agencies": [hanoi_agency(["secure-server", "portal"])],
            "alerting": {
                "operations": [{"name": "VPCP trực", "email": OPS, "channels": ["email"]}],
                **alerting,
            },
        }
    )


class World:
    """The alert pipeline and its outbox on an injected clock (as tests/test_alert_pipeline)."""

    def __init__(
        self,
        store: Store,
        config: Config,
        now: float = MONDAY,
        *,
        outbox: Outbox | None = None,
        muters: list[Muter] | None = None,
        acks: Acknowledgements | None = None,
    ) -> None:
        self.now = now
        self.store = store
        self.outbox = outbox or Outbox(
            store, config.alerting.outbox, clock=lambda: self.now, jitter=lambda: 0.5
        )
        self.pipeline = AlertPipeline(
            config.alerting,
            Registry.from_config(config),
            self.outbox,
            muters=muters,
            acks=acks,
            clock=lambda: self.now,
        )
        self.sent = Sent()
        self.workers = [
            OutboxWorker(self.outbox, self.sent.channel(c)) for c in ("sms", "email", "inbox")
        ]

    def event(self, old: State, new: State, w: Why | None, key: str = "ha-noi/portal") -> Event:
        agency, system = key.split("/")
        reason = "" if w is None else say(w, "en", w.code)
        e = Event(self.now, agency, system, old, new, reason, "gw", w)
        self.pipeline.on_events([e])
        return e

    async def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            await self.pipeline.tick()
            for worker in self.workers:
                while await worker.run_once():
                    pass
            due = self.pipeline.grouper.next_due()
            if due is None or due > end:
                break
            self.now = max(self.now, due)
        self.now = end
        await self.pipeline.tick()
        for worker in self.workers:
            while await worker.run_once():
                pass

    async def rows(self, channel: str) -> list[tuple[str, str]]:
        """The outbox's rows of one channel (address, subject), oldest first."""
        found = await self.store.transact(
            lambda db: db.execute(
                "SELECT address, subject FROM outbox WHERE channel = ? ORDER BY id", (channel,)
            ).fetchall()
        )
        return [(str(a), str(s)) for a, s in found]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "state.db")
    yield s
    await s.close()


# ----- the alert pipeline --------------------------------------------------------------------


async def test_degraded_is_told_by_email_in_its_own_words_and_not_by_sms(store: Store) -> None:
    w = World(store, pipeline_config())
    w.event(State.UP, State.DEGRADED, SLOW_WHY)
    await w.advance(31)
    assert await w.rows("sms") == []  # lower urgency: nobody is woken by SMS
    (mail,) = w.sent.to(KT)
    assert mail.channel == "email"
    assert mail.subject == "[NPSP] Cổng dịch vụ công của Thành phố Hà Nội: SUY GIẢM"
    assert "(ha-noi/portal): SUY GIẢM từ 09:00 30/11/2026" in mail.text
    assert "kiểm tra http: chậm: 1,5 giây > giới hạn 1 giây" in mail.text
    assert "MẤT KẾT NỐI" not in mail.subject + mail.text
    # The person on duty listed only SMS: the warning reaches them by their e-mail address.
    (duty,) = w.sent.to(TRUC)
    assert duty.channel == "email" and duty.subject == mail.subject
    assert w.sent.to(KT_PHONE) == [] and w.sent.to(TRUC_PHONE) == []
    assert len(w.sent.to(OPS)) == 1  # operations hear of it too, by e-mail
    assert w.sent.to(CC) == []
    assert w.sent.to("kt.ha-noi") == []  # KT listed e-mail, which took it: no inbox copy


async def test_degraded_channels_can_include_sms(store: Store) -> None:
    w = World(store, pipeline_config(degraded_channels=["sms", "email", "inbox"]))
    w.event(State.UP, State.DEGRADED, SLOW_WHY)
    await w.advance(31)
    assert sorted(a for a, _ in await w.rows("sms")) == [KT_PHONE, TRUC_PHONE]
    (sms,) = w.sent.to(KT_PHONE)
    assert sms.text.startswith("NPSP: ha-noi/portal SUY GIẢM từ 09:00 30/11")
    assert len(w.sent.to(KT)) == 1  # and by e-mail, as KT lists both


async def test_an_outage_that_ends_degraded_is_resolved_and_the_degradation_told(
    store: Store,
) -> None:
    w = World(store, pipeline_config())
    w.event(State.UP, State.DOWN, DOWN_WHY)
    await w.advance(31)
    (page,) = w.sent.to(KT_PHONE)
    assert "MẤT KẾT NỐI" in page.text and "không kết nối được: bị từ chối" in page.text
    (outage,) = w.sent.to(KT)
    assert "MẤT KẾT NỐI" in outage.subject
    w.event(State.DOWN, State.DEGRADED, SLOW_WHY)
    await w.advance(301)
    # By SMS: the outage is over (the degradation itself is not worth an SMS).
    sms = w.sent.to(KT_PHONE)
    assert len(sms) == 2 and "ĐÃ KẾT NỐI LẠI" in sms[1].text and "SUY GIẢM" not in sms[1].text
    # By e-mail: connected again, and what is still wrong.
    later = [m for m in w.sent.to(KT) if m is not outage]
    text = "\n".join(m.subject + "\n" + m.text for m in later)
    assert "ĐÃ KẾT NỐI LẠI" in text or "đã kết nối lại" in text
    assert "SUY GIẢM" in text and "chậm: 1,5 giây" in text
    assert all(m.thread_key == outage.key for m in later)  # in the outage's thread
    alert = w.pipeline.alerts["ha-noi/portal"]
    assert alert.state is State.DEGRADED and alert.firing
    count = len(w.sent.messages)
    await w.advance(3 * 24 * 3600)  # no escalation past the ladder's 30 min and 1 h
    assert not [m for m in w.sent.messages[count:] if "Chưa được xử lý" in m.subject]
    assert w.sent.to(CC) == []


async def test_an_outage_ending_degraded_then_up_before_the_next_digest_is_told_once(
    store: Store,
) -> None:
    w = World(store, pipeline_config())
    w.event(State.UP, State.DOWN, DOWN_WHY)
    await w.advance(31)
    (outage,) = w.sent.to(KT)
    w.event(State.DOWN, State.DEGRADED, SLOW_WHY)
    w.now += 60
    w.event(State.DEGRADED, State.UP, Why("system.ok"))
    await w.advance(301)
    (back,) = w.sent.to(KT)[1:]
    assert back.subject == "[NPSP] 1 hệ thống của Thành phố Hà Nội đã kết nối lại"
    assert back.text.count("ĐÃ KẾT NỐI LẠI") == 1 and "SUY GIẢM" not in back.text
    assert back.thread_key == outage.key
    assert w.pipeline.alerts == {} and w.pipeline.grouper.groups == {}
    assert "ĐÃ KẾT NỐI LẠI" in w.sent.to(KT_PHONE)[-1].text


async def test_degraded_then_down_is_paged_as_an_outage(store: Store) -> None:
    w = World(store, pipeline_config())
    w.event(State.UP, State.DEGRADED, SLOW_WHY)
    await w.advance(31)
    degraded = w.pipeline.alerts["ha-noi/portal"]
    w.now += 600
    w.event(State.DEGRADED, State.DOWN, DOWN_WHY)
    await w.advance(301)
    (sms,) = w.sent.to(KT_PHONE)
    assert sms.text.startswith("NPSP: ha-noi/portal MẤT KẾT NỐI từ 09:10 30/11")
    (duty_sms,) = w.sent.to(TRUC_PHONE)
    assert "MẤT KẾT NỐI" in duty_sms.text
    outage = w.pipeline.alerts["ha-noi/portal"]
    assert outage.state is State.DOWN and outage.incident != degraded.incident
    assert outage.severity == "critical" and outage.since == MONDAY + 31 + 600
    assert "MẤT KẾT NỐI" in w.sent.to(KT)[-1].subject
    # An outage does escalate: the high-level admins after the default 30 minutes.
    await w.advance(30 * 60)
    assert any("Chưa được xử lý" in m.subject for m in w.sent.to(CC))


async def test_a_degraded_reminder_does_not_claim_a_lost_connection(store: Store) -> None:
    w = World(store, pipeline_config(repeat_interval="1h"))
    w.event(State.UP, State.DEGRADED, SLOW_WHY)
    await w.advance(3600 + 60)
    _first, reminder = w.sent.to(KT)
    assert reminder.subject.startswith("[NPSP] Nhắc lại")
    assert "mất kết nối" not in reminder.subject.lower(), reminder.subject
    assert "suy giảm" in reminder.subject.lower()
    assert "SUY GIẢM" in reminder.text and "MẤT KẾT NỐI" not in reminder.text


async def test_a_digest_of_an_outage_and_a_degradation_counts_each_for_what_it_is(
    store: Store,
) -> None:
    w = World(store, pipeline_config())
    w.event(State.UP, State.DOWN, DOWN_WHY, key="ha-noi/secure-server")
    w.event(State.UP, State.DEGRADED, SLOW_WHY)
    await w.advance(31)
    (mail,) = w.sent.to(KT)
    assert "(ha-noi/secure-server): MẤT KẾT NỐI" in mail.text
    assert "(ha-noi/portal): SUY GIẢM" in mail.text
    # Not "2 systems lost connection": one did, the other is slow.
    assert mail.subject == "[NPSP] 1 hệ thống của Thành phố Hà Nội mất kết nối, 1 suy giảm"
    (sms,) = w.sent.to(KT_PHONE)
    assert "secure-server" in sms.text and "ha-noi/portal" not in sms.text


async def test_a_restart_keeps_a_degraded_alert_without_telling_anyone_again(
    store: Store,
) -> None:
    w = World(store, pipeline_config())
    e = w.event(State.UP, State.DEGRADED, SLOW_WHY)
    await store.record([e])
    await w.advance(31)
    assert len(w.sent.to(KT)) == 1

    after = World(store, pipeline_config(), now=w.now + 600)  # a new process, same database
    after.pipeline.restore(await store.states(), await after.outbox.told())
    alert = after.pipeline.alerts["ha-noi/portal"]
    assert alert.state is State.DEGRADED and alert.why == SLOW_WHY
    await after.advance(3600)
    assert after.sent.messages == []  # already told: nobody hears it again
    after.event(State.DEGRADED, State.UP, Why("system.ok"))
    await after.advance(301)
    (back,) = after.sent.to(KT)
    assert "đã kết nối lại" in back.subject
    assert after.sent.to(KT_PHONE) == []


async def test_a_degraded_alert_lost_in_a_crash_is_sent_after_the_restart(store: Store) -> None:
    w = World(store, pipeline_config())
    await store.record([w.event(State.UP, State.DEGRADED, SLOW_WHY)])
    # The daemon dies before the digest is written.
    after = World(store, pipeline_config(), now=w.now + 5)
    after.pipeline.restore(await store.states(), await after.outbox.told())
    await after.advance(31)
    (mail,) = after.sent.to(KT)
    assert "SUY GIẢM" in mail.subject and "chậm: 1,5 giây" in mail.text
    assert await after.rows("sms") == []


async def test_maintenance_events_change_nothing_in_the_pipeline(store: Store) -> None:
    w = World(store, pipeline_config())
    window = Why("system.maintenance", {"until": MONDAY + 3600})
    w.event(State.UP, State.MAINTENANCE, window)
    await w.advance(600)
    assert w.sent.messages == [] and w.pipeline.alerts == {}
    w.event(State.MAINTENANCE, State.UP, Why("system.ok"))
    await w.advance(600)
    assert w.sent.messages == []  # nothing was announced, so nothing is resolved


# ----- incidents: the real state machine, maintenance desk and incident desk --------------------

OK = ProbeResult(True, "HTTP 200", 0.01)
FAIL = ProbeResult(False, "connect: refused", 0.001, why=why("connect", error=why("os.refused")))
SLOW = warn(why("http.slow", elapsed=1.5, limit=1.0), 1.5)


class Daemonless:
    """What the daemon wires, without its loops: events of the real state machine go to the
    store, the alert pipeline and the incident desk; the maintenance desk says which systems a
    window covers (Engine.set_maintenance) and holds alerts (the pipeline's muter)."""

    def __init__(self, store: Store, now: float) -> None:
        self.now = now
        self.store = store
        config = pipeline_config()
        self.registry = Registry.from_config(config)
        # Built in dependency order, as monitor/build.py does: outbox, notices, desks, pipeline.
        outbox = Outbox(store, config.alerting.outbox, clock=lambda: self.now, jitter=lambda: 0.5)
        settings = lambda: config.alerting  # noqa: E731
        notices = NoticeSender(outbox, RunningRouter(settings, lambda: self.registry), settings)
        self.ctx = RulesContext(
            store,
            WorkCalendar(config.calendar),
            notices,
            lambda: self.registry,
            clock=lambda: self.now,
        )
        self.maintenance = MaintenanceDesk(self.ctx)
        self.incidents = IncidentDesk(self.ctx, maintenance=self.maintenance.covering)
        self.world = World(
            store, config, now, outbox=outbox, muters=[self.maintenance], acks=self.incidents
        )
        self.world.now = now
        self.pipeline = self.world.pipeline
        self.pipeline.clock = lambda: self.now
        self.sm = StateMachine("gw", Thresholds())
        self.sm.set_systems(
            [
                SystemStatus(
                    e.agency.id,
                    e.system.id,
                    e.system.kind,
                    e.parents,
                    {c.key: CheckStatus(c.key, 1, 1) for c in e.checks},
                )
                for e in self.registry.systems.values()
            ],
            [],
        )
        self.events: list[Event] = []

    @property
    def sent(self) -> Sent:
        return self.world.sent

    def emit(self, events: list[Event]) -> None:
        self.events += events
        self.pipeline.on_events(events)
        self.incidents.on_events(events)

    async def probe(self, key: str, result: ProbeResult) -> None:
        """One result (and its recheck, if the state machine asks for one)."""
        check = f"{key}/http"
        outcome = self.sm.observe(check, result, self.now)
        self.emit(outcome.events)
        if outcome.recheck:
            self.now += 1
            self.emit(self.sm.observe(check, result, self.now).events)
        await self.round()

    async def round(self) -> None:
        await self.maintenance.tick(self.now)
        self.emit(self.sm.set_maintenance(self.maintenance.covered(self.now), self.now))
        if self.events:
            await self.store.record(self.events)
            self.events = []
        await self.incidents.tick(self.now)
        await self.pipeline.tick()
        for worker in self.world.workers:
            while await worker.run_once():
                pass

    async def at(self, moment: float) -> None:
        self.now = moment
        await self.round()

    def state(self, key: str = "ha-noi/portal") -> State:
        return self.sm.systems[key].announced

    def pages(self) -> list[str]:
        """The outage alerts sent (SMS and e-mail), as opposed to maintenance notices."""
        return [
            m.to
            for m in self.sent.messages
            if "MẤT KẾT NỐI" in m.subject or "MẤT KẾT NỐI" in m.text
        ]


async def test_degraded_opens_no_incident_and_an_outage_ending_degraded_is_resolved(
    store: Store,
) -> None:
    d = Daemonless(store, MONDAY)
    await d.incidents.restore({})
    await d.probe("ha-noi/portal", OK)
    await d.probe("ha-noi/portal", SLOW)
    assert d.state() is State.DEGRADED
    await d.at(d.now + 3600)
    assert await list_incidents(store) == []
    assert sorted(m.to for m in d.sent.messages if "SUY GIẢM" in m.subject) == [KT, OPS, TRUC]

    await d.probe("ha-noi/portal", FAIL)
    assert d.state() is State.DOWN
    (incident,) = await list_incidents(store)
    assert incident.id == d.pipeline.alerts["ha-noi/portal"].incident
    # Reachable again, only slow: the outage is over, its incident resolved.
    d.now += 600
    await d.probe("ha-noi/portal", SLOW)
    assert d.state() is State.DEGRADED
    assert await list_incidents(store) == [], "the outage's incident stays open while degraded"
    (closed,) = await list_incidents(store, open_only=False)
    assert closed.id == incident.id and closed.resolved_at == d.now


async def test_maintenance_opens_no_incident_and_its_end_on_a_dead_system_opens_one(
    store: Store,
) -> None:
    d = Daemonless(store, MONDAY)
    starts = dt.datetime(2026, 11, 30, 10, 0, tzinfo=VN)
    ends = dt.datetime(2026, 11, 30, 12, 0, tzinfo=VN)
    await schedule(
        store,
        d.ctx.calendar,
        d.registry,
        starts=starts,
        ends=ends,
        reason="Nâng cấp máy chủ",
        scope=["ha-noi/portal"],
        override_reason="sự cố phần cứng",
        author="vpcp.ops",
        now=d.now,
    )
    await d.maintenance.refresh()
    await d.incidents.restore({})
    await d.probe("ha-noi/portal", OK)
    await d.probe("ha-noi/secure-server", OK)
    await d.at(starts.timestamp())
    assert d.state() is State.MAINTENANCE
    assert d.state("ha-noi/secure-server") is State.UP  # outside the window's scope
    for _ in range(10):
        d.now += 60
        await d.probe("ha-noi/portal", FAIL)
    assert d.state() is State.MAINTENANCE and d.sm.systems["ha-noi/portal"].underlying is (
        State.DOWN
    )
    await d.at(ends.timestamp() - 1)
    assert await list_incidents(store) == []
    assert d.pages() == []  # only the window's own notices went out
    await d.at(ends.timestamp())
    assert d.state() is State.DOWN
    (incident,) = await list_incidents(store)
    assert incident.id == d.pipeline.alerts["ha-noi/portal"].incident
    assert incident.opened_at == ends.timestamp()
    await d.at(ends.timestamp() + 31)
    assert KT_PHONE in d.pages() and KT in d.pages()


async def test_the_end_of_a_window_on_a_system_that_is_up_resolves_nothing_wrongly(
    store: Store,
) -> None:
    """An outage before the window keeps its incident through it and is resolved when the
    window ends with the system back; a system up before and after opens and resolves none."""
    d = Daemonless(store, MONDAY)
    starts = dt.datetime(2026, 11, 30, 10, 0, tzinfo=VN)
    ends = dt.datetime(2026, 11, 30, 12, 0, tzinfo=VN)
    await schedule(
        store,
        d.ctx.calendar,
        d.registry,
        starts=starts,
        ends=ends,
        reason="Nâng cấp máy chủ",
        scope=["ha-noi"],
        override_reason="sự cố phần cứng",
        author="vpcp.ops",
        now=d.now,
    )
    await d.maintenance.refresh()
    await d.incidents.restore({})
    await d.probe("ha-noi/secure-server", OK)
    await d.probe("ha-noi/portal", FAIL)
    assert d.state() is State.DOWN
    await d.at(d.now + 31)
    assert KT_PHONE in d.pages()  # paged before the window
    (outage,) = await list_incidents(store)
    await d.at(starts.timestamp())
    assert d.state() is State.MAINTENANCE
    assert d.state("ha-noi/secure-server") is State.MAINTENANCE
    assert [i.id for i in await list_incidents(store)] == [outage.id]  # still its outage
    d.now += 600
    await d.probe("ha-noi/portal", OK)  # repaired inside the window
    await d.at(ends.timestamp())
    assert d.state() is State.UP and d.state("ha-noi/secure-server") is State.UP
    assert await list_incidents(store) == []
    (closed,) = await list_incidents(store, open_only=False)
    assert closed.id == outage.id and closed.resolved_at == ends.timestamp()
    await d.at(ends.timestamp() + 301)
    assert any("đã kết nối lại" in m.subject for m in d.sent.to(KT))
    assert not [e for e in await store.changes(50) if e.new in (State.DOWN, State.FLAPPING)][1:]


# ----- the store -----------------------------------------------------------------------------


async def test_a_reason_code_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await Store.open(path)
    window = Why("system.maintenance", {"until": MONDAY + 3600})
    await store.record(
        [
            Event(MONDAY, "ha-noi", "portal", State.UP, State.DEGRADED, "slow", "gw", SLOW_WHY),
            Event(
                MONDAY + 5,
                "ha-noi",
                "secure-server",
                State.UP,
                State.MAINTENANCE,
                "m",
                "gw",
                window,
            ),
        ]
    )
    await store.close()
    store = await Store.open(path)
    try:
        states = await store.states()
        assert states["ha-noi/portal"].state is State.DEGRADED
        assert states["ha-noi/portal"].why == SLOW_WHY
        assert states["ha-noi/secure-server"].state is State.MAINTENANCE
        assert states["ha-noi/secure-server"].why == window
        latest, first = await store.changes(10)
        assert (latest.new, latest.why) == (State.MAINTENANCE, window)
        assert (first.new, first.why) == (State.DEGRADED, SLOW_WHY)
        assert (
            say(first.why, "vi", first.reason) == "kiểm tra http: chậm: 1,5 giây > giới hạn 1 giây"
        )
        sm = StateMachine("gw", Thresholds())
        sm.set_systems(
            [
                SystemStatus(
                    "ha-noi",
                    "portal",
                    "one-stop",
                    (),
                    {"ha-noi/portal/http": CheckStatus("ha-noi/portal/http", 1, 1)},
                )
            ],
            [],
        )
        stored = states["ha-noi/portal"]
        sm.restore("ha-noi/portal", stored.state, stored.since, stored.reason, stored.why)
        assert sm.systems["ha-noi/portal"].why == SLOW_WHY
    finally:
        await store.close()


# ----- the whole daemon, real peers on loopback ----------------------------------------------------

needs_mosquitto = pytest.mark.skipif(not available(), reason="mosquitto is not installed")


class Peers:
    """aiosmtpd (STARTTLS and AUTH), the Twilio-API peer, Mosquitto and a subscriber to its
    status topics."""

    def __init__(self, certs: Certs, smtp: SmtpPeer, twilio: FakeTwilio, broker: Mosquitto):
        self.certs, self.smtp, self.twilio, self.broker = certs, smtp, twilio, broker
        self.status: dict[str, list[str]] = {}  # topic -> states published, in order

    async def subscribe(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1", self.broker.port, identifier="test-status-reader"
                ) as client:
                    await client.subscribe("npsp/status/#", qos=1)
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        state = json.loads(message.payload)["state"]
                        self.status.setdefault(str(message.topic), []).append(state)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)

    def mails(self, to: str, about: str = "") -> list[tuple[str, str]]:
        """(subject, plain text) of the e-mails received for ``to`` whose subject has ``about``."""
        out = []
        for m in self.smtp.received:
            if m.rcpt_tos != [to] or about not in str(m.message["Subject"]):
                continue
            body = m.message.get_body(("plain",))
            out.append((str(m.message["Subject"]), "" if body is None else body.get_content()))
        return out


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[Peers]:
    certs = Certs.make(tmp_path)
    (tmp_path / "mq").mkdir()
    async with (
        SmtpPeer(certs, mode="starttls") as smtp,
        FakeTwilio() as twilio,
        Mosquitto(tmp_path / "mq") as broker,
    ):
        found = Peers(certs, smtp, twilio, broker)
        reader = asyncio.create_task(found.subscribe())
        try:
            yield found
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


def daemon_config(tmp_path: Path, peers: Peers, systems: list[dict[str, Any]]) -> Path:
    (tmp_path / "twilio-token").write_text(AUTH_TOKEN)
    (tmp_path / "smtp-password").write_text(SMTP_PASSWORD)
    agency = hanoi_agency()
    agency["systems"] = systems
    data: dict[str, Any] = {
        "vantage": "gw-test",
        "listen": "127.0.0.1:0",
        "state_db": str(tmp_path / "state.db"),
        "defaults": {
            "interval": "500ms",
            "timeout": "400ms",
            "failure_threshold": 1,
            "success_threshold": 1,
            "recheck_delay": "10ms",
        },
        "alerting": {
            "operations": [{"name": "VPCP trực", "email": OPS, "channels": ["email"]}],
            "group_wait": "200ms",
            "group_interval": "500ms",
            "sms_min_interval": "500ms",
        },
        "channels": {
            "sms": {
                "account_sid": ACCOUNT_SID,
                "auth_token": {"file": str(tmp_path / "twilio-token")},
                "from_number": FROM_NUMBER,
                "api_base_url": peers.twilio.base_url,
            },
            "email": {
                "host": "127.0.0.1",
                "port": peers.smtp.port,
                "security": "starttls",
                "username": SMTP_USER,
                "password": {"file": str(tmp_path / "smtp-password")},
                "from_addr": "giamsat@npsp.dvc.example",
                "ca_file": str(peers.certs.ca_file),
            },
            "mqtt": {
                "host": "127.0.0.1",
                "port": peers.broker.port,
                "timeout": "2s",
                "reconnect_max": "500ms",
            },
        },
        "agencies": [agency],
    }
    path = tmp_path / "npsp.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def running(path: Path) -> AsyncIterator[Running]:
    daemon = Daemon(None, load_config(path))
    ready = asyncio.Event()
    task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        yield Running(daemon, task)
    finally:
        daemon.request_stop()
        await asyncio.wait_for(task, 15)


async def scrape(run: Running) -> str:
    status, text = await run.get("/metrics")
    assert status == 200
    return text


async def outbox_rows(run: Running) -> list[tuple[str, str, str, float]]:
    """(channel, address, subject, created_at) of every row the daemon queued."""
    engine = run.daemon.engine
    assert engine is not None
    rows = await engine.store.transact(
        lambda db: db.execute(
            "SELECT channel, address, subject, created_at FROM outbox ORDER BY id"
        ).fetchall()
    )
    return [(str(c), str(a), str(s), float(t)) for c, a, s, t in rows]


LABELS = {"agency": "ha-noi", "system": "secure-server"}


@needs_mosquitto
@pytest.mark.timeout(90)
async def test_a_dead_system_in_a_window_shows_maintenance_and_is_paged_when_it_ends(
    tmp_path: Path, peers: Peers
) -> None:
    dead = free_port()
    path = daemon_config(
        tmp_path,
        peers,
        [
            {
                "id": "secure-server",
                "kind": "secure-server",
                "name": "Máy chủ bảo mật",
                "checks": [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": dead}],
            }
        ],
    )
    config = load_config(path)
    store = await Store.open(config.state_db)
    now = time.time()
    try:
        window = await schedule(
            store,
            WorkCalendar(config.calendar),
            Registry.from_config(config),
            starts=dt.datetime.fromtimestamp(now - 1, VN),
            ends=dt.datetime.fromtimestamp(now + 8, VN),
            reason="Thay thiết bị mạng",
            scope=["ha-noi/secure-server"],
            override_reason="sự cố phần cứng",
            author="vpcp.ops",
            now=now,
        )
    finally:
        await store.close()
    topic = "npsp/status/ha-noi/secure-server"
    async with running(path) as run:
        engine = run.daemon.engine
        assert engine is not None
        status = engine.state.systems["ha-noi/secure-server"]
        await wait_until(lambda: status.underlying is State.DOWN, 5, "probes failing")
        assert time.time() < window.ends, "the window ended before the test could look"
        text = await scrape(run)
        assert metric(text, "npsp_system_state", **LABELS, state="maintenance") == 1.0
        assert metric(text, "npsp_system_state", **LABELS, state="down") is None
        assert metric(text, "npsp_system_up", **LABELS) is None  # not judged in a window
        view = await run.api("/api/v1/systems/ha-noi/secure-server")
        assert view["state"] == "maintenance"
        await wait_until(lambda: "maintenance" in peers.status.get(topic, []), 10, "MQTT")
        assert "down" not in peers.status[topic]

        # The window ends with the system still dead: now it is down, and it is paged.
        await wait_until(lambda: status.announced is State.DOWN, 15, "down after the window")
        text = await scrape(run)
        assert metric(text, "npsp_system_state", **LABELS, state="down") == 1.0
        assert metric(text, "npsp_system_up", **LABELS) == 0.0
        await wait_until(lambda: peers.status[topic][-1] == "down", 10, "MQTT down")
        await wait_until(
            lambda: any("MAT KET NOI" in m.body for m in peers.twilio.sent), 15, "the SMS"
        )
        await wait_until(lambda: bool(peers.mails(KT, "MẤT KẾT NỐI")), 15, "the e-mail")
        (page,) = [m for m in peers.twilio.sent if m.to == KT_PHONE and "MAT KET NOI" in m.body]
        assert page.body.startswith("NPSP: ha-noi/secure-server MAT KET NOI")
        # Nothing about the outage was even queued while the window lasted.
        alerts = [r for r in await outbox_rows(run) if "MẤT KẾT NỐI" in r[2]]
        assert alerts and all(created >= window.ends for *_, created in alerts)
        assert {(c, a) for c, a, *_ in alerts} >= {("sms", KT_PHONE), ("email", KT)}


@needs_mosquitto
@pytest.mark.timeout(90)
async def test_a_slow_portal_is_degraded_everywhere_and_told_by_email_not_sms(
    tmp_path: Path, peers: Peers
) -> None:
    server, _ = http_server({"/": delayed(0.25, response(200))})
    async with server:
        path = daemon_config(
            tmp_path,
            peers,
            [
                {
                    "id": "portal",
                    "kind": "public-service-portal",
                    "name": "Cổng dịch vụ công",
                    "checks": [
                        {
                            "id": "http",
                            "kind": "http",
                            "url": f"http://127.0.0.1:{server.port}/",
                            "max_latency": "100ms",
                        }
                    ],
                }
            ],
        )
        labels = {"agency": "ha-noi", "system": "portal"}
        topic = "npsp/status/ha-noi/portal"
        async with running(path) as run:
            await wait_until(
                lambda: run.state_of("ha-noi/portal") is State.DEGRADED, 15, "degraded"
            )
            text = await scrape(run)
            assert metric(text, "npsp_system_state", **labels, state="degraded") == 1.0
            assert metric(text, "npsp_system_up", **labels) == 1.0  # reachable
            view = await run.api("/api/v1/systems/ha-noi/portal")
            assert view["state"] == "degraded"
            await wait_until(lambda: "degraded" in peers.status.get(topic, []), 10, "MQTT")
            assert "down" not in peers.status[topic]

            await wait_until(
                lambda: bool(peers.mails(KT, "SUY GIẢM")) and bool(peers.mails(TRUC)),
                15,
                "the e-mails",
            )
            ((subject, text_vi),) = peers.mails(KT)
            assert subject == "[NPSP] Cổng dịch vụ công của Thành phố Hà Nội: SUY GIẢM"
            # In Vietnamese, with the measured time (0,25 s and more, rounded).
            assert re.search(r"kiểm tra http: chậm: \d,\d giây > giới hạn 100 ms", text_vi), text_vi
            ((duty, _),) = peers.mails(TRUC)  # [sms] only: by e-mail all the same
            assert duty == subject
            assert [r for r in await outbox_rows(run) if r[0] == "sms"] == []
            assert peers.twilio.sent == []
            assert run.state_of("ha-noi/portal") is State.DEGRADED  # never called down


async def test_a_degraded_alert_replaced_by_an_outage_is_not_repeated_to_anyone(
    store: Store,
) -> None:
    """The person on duty hears of the degradation by e-mail and of the outage by SMS: once the
    system is down (and later back), their e-mail must not keep saying it is only degraded."""
    w = World(store, pipeline_config(repeat_interval="1h"))
    w.event(State.UP, State.DEGRADED, SLOW_WHY)
    await w.advance(31)
    assert len(w.sent.to(TRUC)) == 1
    w.event(State.DEGRADED, State.DOWN, DOWN_WHY)
    await w.advance(301)
    assert len(w.sent.to(TRUC_PHONE)) == 1
    w.event(State.DOWN, State.UP, Why("system.ok"))
    await w.advance(301)
    assert "ĐÃ KẾT NỐI LẠI" in w.sent.to(TRUC_PHONE)[-1].text
    count = len(w.sent.messages)
    await w.advance(24 * 3600)
    late = [f"{m.to}: {m.subject}" for m in w.sent.messages[count:]]
    assert late == [], "reminders of a system that is up again"
    assert w.sent.to(TRUC)[1:] == [], [m.subject for m in w.sent.to(TRUC)]
    assert w.pipeline.grouper.groups == {}


async def test_a_degraded_system_behind_a_parent_that_fails_is_not_repeated_forever(
    store: Store,
) -> None:
    config = Config.model_validate(
        {
            "agencies": [
                {
                    **hanoi_agency(["secure-server", "portal"]),
                    "systems": [
                        {
                            "id": "secure-server",
                            "kind": "secure-server",
                            "name": "Máy chủ bảo mật",
                            "checks": [
                                {"id": "tcp", "kind": "tcp", "host": "h.example", "port": 1}
                            ],
                        },
                        {
                            "id": "portal",
                            "kind": "public-service-portal",
                            "name": "Cổng dịch vụ công",
                            "depends_on": "secure-server",
                            "checks": [
                                {"id": "http", "kind": "tcp", "host": "h.example", "port": 1}
                            ],
                        },
                    ],
                }
            ],
            "alerting": {
                "operations": [{"name": "VPCP trực", "email": OPS, "channels": ["email"]}],
                "repeat_interval": "1h",
            },
        }
    )
    w = World(store, config)
    w.event(State.UP, State.DEGRADED, SLOW_WHY)
    await w.advance(31)
    w.event(State.UP, State.DOWN, DOWN_WHY, key="ha-noi/secure-server")
    w.event(State.DEGRADED, State.UNREACHABLE, None)
    await w.advance(301)
    w.event(State.DOWN, State.UP, Why("system.ok"), key="ha-noi/secure-server")
    w.event(State.UNREACHABLE, State.UP, Why("system.ok"))
    await w.advance(301)
    count = len(w.sent.messages)
    await w.advance(24 * 3600)
    late = [f"{m.to}: {m.subject}" for m in w.sent.messages[count:]]
    assert late == [], "reminders of systems that are up again"
    assert w.pipeline.grouper.groups == {}


async def paged_then_a_window(store: Store) -> tuple[Daemonless, float, float]:
    """ha-noi/portal paged as down at 09:00 (reminders hourly), then inside a window from 10:00
    to 14:00; returned at 13:59 with what was sent inside checked: no reminder."""
    d = Daemonless(store, MONDAY)
    d.pipeline.settings = d.pipeline.grouper.settings = pipeline_config(
        repeat_interval="1h"
    ).alerting
    starts = dt.datetime(2026, 11, 30, 10, 0, tzinfo=VN)
    ends = dt.datetime(2026, 11, 30, 14, 0, tzinfo=VN)
    await schedule(
        store,
        d.ctx.calendar,
        d.registry,
        starts=starts,
        ends=ends,
        reason="Nâng cấp máy chủ",
        scope=["ha-noi/portal"],
        override_reason="sự cố phần cứng",
        author="vpcp.ops",
        now=d.now,
    )
    await d.maintenance.refresh()
    await d.incidents.restore({})
    await d.probe("ha-noi/portal", FAIL)
    await d.at(d.now + 31)
    assert d.pages().count(KT_PHONE) == 1
    await d.at(starts.timestamp())
    assert d.state() is State.MAINTENANCE
    count = len(d.sent.messages)
    moment = starts.timestamp()
    while moment < ends.timestamp() - 60:
        moment += 60
        await d.at(moment)
    inside = [f"{m.to}: {m.subject}" for m in d.sent.messages[count:] if "Nhắc lại" in m.subject]
    assert inside == [], "reminders inside the maintenance window"
    assert d.pages().count(KT_PHONE) == 1
    return d, starts.timestamp(), ends.timestamp()


async def test_an_outage_paged_before_a_window_is_not_reminded_inside_it(store: Store) -> None:
    """Alerts are muted inside a window: an outage already paged gets no 'still down' reminder
    while its system is being worked on; its recovery at the window's end is told."""
    d, _, ends = await paged_then_a_window(store)
    d.now = ends - 30
    await d.probe("ha-noi/portal", OK)
    await d.at(ends + 301)
    assert d.state() is State.UP
    assert "ĐÃ KẾT NỐI LẠI" in d.sent.to(KT_PHONE)[-1].text
    assert await list_incidents(store) == []


async def test_an_outage_paged_before_a_window_and_still_down_is_told_when_it_ends(
    store: Store,
) -> None:
    d, starts, ends = await paged_then_a_window(store)
    await d.at(ends)
    assert d.state() is State.DOWN
    await d.at(ends + 31)
    assert d.pages().count(KT_PHONE) == 2 and d.pages().count(KT) == 2
    assert "MẤT KẾT NỐI" in d.sent.to(KT_PHONE)[-1].text
    (incident,) = await list_incidents(store)  # the outage's own, open all along
    assert incident.opened_at < starts


async def queued_at(w: World, key: str) -> float:
    """When the outbox row of a message was queued (the fake channels keep no time)."""
    row = await w.store.transact(
        lambda db: db.execute("SELECT created_at FROM outbox WHERE key = ?", (key,)).fetchone()
    )
    return float(row[0])


async def test_a_silence_holds_reminders_of_an_outage_already_told_and_its_end_releases_them(
    store: Store,
) -> None:
    """The same mute for silences: two outages told, one silenced for two hours: reminders name
    only the other; when the silence ends the silenced one is told again within a minute, not
    at the next reminder."""
    w = World(store, pipeline_config(repeat_interval="1h"))
    w.event(State.UP, State.DOWN, DOWN_WHY, key="ha-noi/secure-server")
    w.event(State.UP, State.DOWN, DOWN_WHY)
    await w.advance(31)
    (first,) = w.sent.to(KT)
    assert "ha-noi/portal" in first.text and "ha-noi/secure-server" in first.text
    silenced = pipeline_config(
        repeat_interval="1h",
        silences=[
            {"agency": "ha-noi", "system": "portal", "ends": w.now + 7200, "reason": "sửa cáp"}
        ],
    ).alerting
    w.pipeline.update_registry(silenced, w.pipeline.registry)
    ends = w.now + 7200
    await w.advance(7200 - 90)
    reminders = w.sent.to(KT)[1:]
    assert len(reminders) == 1 and reminders[0].subject.startswith("[NPSP] Nhắc lại")
    assert "ha-noi/secure-server" in reminders[0].text and "ha-noi/portal" not in reminders[0].text
    # Over: told again after a minute's look and group_interval (5 min) since the last digest,
    # not at the next reminder an hour later.
    await w.advance(90 + 360)
    back = w.sent.to(KT)[-1]
    assert "ha-noi/portal" in back.text, "the silence is over: the outage is told again"
    assert ends < await queued_at(w, back.key) <= ends + 360


async def restarted(d: Daemonless) -> Daemonless:
    """A new process on the same store at ``d.now``, started as the daemon starts: the engine's
    states restored, the desks loaded, then the pipeline and the incident desk restored."""
    again = Daemonless(d.store, d.now)
    states = await d.store.states()
    for key, stored in states.items():
        again.sm.restore(key, stored.state, stored.since, stored.reason, stored.why)
    await again.maintenance.refresh()
    await again.incidents.refresh()
    again.pipeline.restore(states, await again.world.outbox.told())
    await again.incidents.restore(states)
    return again


async def test_a_restart_inside_a_window_still_owes_the_recovery_of_an_outage_paged_before(
    store: Store,
) -> None:
    """Paged as down at 09:00, in a window from 10:00, the daemon restarts at 12:00: the stored
    state says MAINTENANCE, yet those paged are still owed 'connected again' when the system
    comes back at the window's end (the restart must not forget the outage)."""
    d, _, ends = await paged_then_a_window(store)
    d = await restarted(d)
    assert d.state() is State.MAINTENANCE
    await d.at(ends - 30)
    assert d.pages() == [], "the restart must not page again inside the window"
    await d.probe("ha-noi/portal", OK)
    await d.at(ends + 301)
    assert d.state() is State.UP
    texts = [m.text for m in d.sent.to(KT_PHONE)]
    assert any("ĐÃ KẾT NỐI LẠI" in t for t in texts), texts
    assert await list_incidents(store) == []


async def test_a_restart_inside_a_window_on_a_system_still_down_tells_it_at_the_end(
    store: Store,
) -> None:
    d, starts, ends = await paged_then_a_window(store)
    d = await restarted(d)
    await d.at(ends - 30)
    await d.probe("ha-noi/portal", FAIL)
    await d.at(ends + 31)
    assert d.state() is State.DOWN
    texts = [m.text for m in d.sent.to(KT_PHONE)]
    assert len(texts) == 1 and "MẤT KẾT NỐI" in texts[0], "told again at the window's end"
    (incident,) = await list_incidents(store)  # the outage's own, open all along
    assert incident.opened_at < starts
